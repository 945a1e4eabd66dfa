"""The Content-Security-Policy: only the arena's own static files run, and every page still
works under it in Chromium (no violation reported, the battle's WebSocket connects, charts draw,
progress bars follow their runs)."""

import re

import pytest

from tests.security.browser import Watch, first_password, sign_in, wait_js
from tests.support import ROOT, daphne_server, manage, server_env

EXPECTED_POLICY = {
    "default-src": "'none'",
    "script-src": "'self'",
    "style-src": "'self'",
    "img-src": "'self'",
    "font-src": "'self'",
    "connect-src": "'self'",
    "form-action": "'self'",
    "base-uri": "'none'",
    "frame-ancestors": "'none'",
}


def _policy(header: str) -> dict[str, str]:
    parts = [p.strip() for p in header.split(";") if p.strip()]
    return {p.split(" ", 1)[0]: p.split(" ", 1)[1] if " " in p else "" for p in parts}


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/", "/accounts/login/", "/healthz"])
def test_every_response_carries_the_policy(client, path):
    response = client.get(path)
    assert _policy(response["Content-Security-Policy"]) == EXPECTED_POLICY


TEMPLATES = sorted((ROOT / "templates").rglob("*.html"))


@pytest.mark.parametrize("template", TEMPLATES, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_template_has_inline_script_handler_or_style(template):
    """What the policy would block must not be in the pages at all."""
    html = template.read_text()
    inline_scripts = [tag for tag in re.findall(r"<script\b[^>]*>", html) if "src=" not in tag]
    assert inline_scripts == []
    assert re.findall(r"\son[a-z]+\s*=", html) == []
    assert re.findall(r"\sstyle\s*=", html) == []
    assert "<style" not in html
    assert "javascript:" not in html


def test_no_static_file_points_at_a_source_map():
    """Maps are not shipped; a sourceMappingURL would send the browser (and the manifest
    storage of collectstatic) looking for them."""
    static = ROOT / "static"
    assert list(static.rglob("*.map")) == []
    assets = [p for p in static.rglob("*") if p.suffix in (".js", ".css")]
    pointing = [str(p.relative_to(ROOT)) for p in assets if b"sourceMappingURL" in p.read_bytes()]
    assert pointing == []


def test_collectstatic_with_the_manifest_storage(tmp_path):
    env = server_env(tmp_path, ARENA_DEBUG="0", ARENA_SECRET_KEY="s" * 60)
    result = manage(env, "collectstatic", "--noinput", check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    collected = tmp_path / "staticfiles"
    assert list(collected.rglob("*.map")) == []
    assert list(collected.glob("vendor/marked/marked.umd.*.js"))


RUNS = """
from arena.models import Judge, Run
judge = Judge.objects.order_by("name").first()
battles = sorted(set(judge.judgements.values_list("battle_id", flat=True)))[:10]
params = {"judge": judge.name, "source": "ten pairs", "judge_id": judge.pk, "battle_ids": battles}
judging = Run.objects.create(kind="judge", status="running", total=10, done=2, params=params)
generating = Run.objects.create(kind="generate", status="running", total=4, done=1,
    params={"prompt_set_name": "Answers for the CSP test"})
print(judging.pk, generating.pk)
"""


def _finish(env, run_id: int, done: int) -> None:
    manage(
        env,
        "shell",
        "-c",
        "from arena.models import Run; "
        f"Run.objects.filter(pk={run_id}).update(status='done', done={done}, message='all done')",
    )


@pytest.mark.browser
def test_every_page_works_under_the_policy(tmp_path, chromium_browser):
    # A context of its own, never one that bypasses the page's policy.
    context = chromium_browser.new_context(viewport={"width": 1280, "height": 800})
    try:
        _sweep(tmp_path, context.new_page())
    finally:
        context.close()


def _sweep(tmp_path, page):
    env = server_env(tmp_path, ARENA_LEADERBOARD_ROUNDS="20")
    password = first_password(manage(env, "serve", "--prepare-only").stdout)
    ids = manage(env, "shell", "-c", RUNS).stdout.strip().splitlines()[-1]
    judge_run, generate_run = map(int, ids.split())
    watch = Watch(page)
    policies = {}

    def visit(path: str):
        watch.collect()
        response = page.goto(base + path)
        assert response.ok, (path, response.status)
        policies[path] = _policy(response.headers.get("content-security-policy", ""))
        return response

    with daphne_server(env, tmp_path / "daphne.log") as base:
        sign_in(page, base, password)
        visit("/")

        # The battle: the WebSocket ('self' in connect-src) carries a whole round.
        visit("/battle/")
        page.locator(".suggestion").first.click()
        page.get_by_role("button", name="Send").click()
        wait_js(
            page,
            "document.getElementById('prompt-form').dataset.round === 'ready'"
            " && ['status-a', 'status-b'].every("
            "(id) => document.getElementById(id).textContent.startsWith('done'))",
            timeout=30,
        )
        assert page.locator(".msg.assistant").count() == 2
        wait_js(page, "!document.querySelector('.votes button').disabled")
        page.keyboard.press("1")
        page.wait_for_selector("#reveal:not([hidden])")
        assert page.locator(".pane h2").first.inner_text().startswith("A: ")

        # Eval sets: the generation run's bar follows it (progress.js), then a vote and the
        # revealed transcript (render scripts, transcript.js).
        visit("/evalsets/")
        block = page.locator(f'.run-progress[data-run-url="/runs/{generate_run}.json"]')
        assert block.locator('[data-run-field="status"]').inner_text() == "Running"
        _finish(env, generate_run, 4)
        wait_js(
            page,
            f"document.querySelector('.run-progress[data-run-url=\"/runs/{generate_run}.json\"]')"
            ".dataset.status === 'done'",
            timeout=15,
        )
        assert block.locator('[data-run-field="counts"]').inner_text() == "4 of 4 done"
        vote_url = page.locator("a.button", has_text="Vote").first.get_attribute("href")
        visit(vote_url)
        # Rendered by the page's scripts (nothing would show if the policy blocked them); an
        # eval-set pair may hold one empty answer, so one non-empty pane is the sign.
        wait_js(
            page,
            "document.querySelectorAll('.pane .markdown').length === 2 && Array.from("
            "document.querySelectorAll('.pane .markdown')).some((el) => el.textContent.trim())",
        )
        watch.collect()
        page.keyboard.press("1")
        page.wait_for_url(re.compile(r".*/battles/\d+/$"))
        battle_result = page.url.removeprefix(base)
        visit(battle_result)  # again, to read the policy of a GET
        wait_js(page, "document.querySelectorAll('.msg.assistant').length >= 2")

        # The leaderboard's charts (Chart.js styles its canvases through the CSSOM), and the
        # choices that apply on change (toggles.js, no inline onchange).
        visit("/leaderboard/")
        for chart in ("chart-ratings", "chart-winprob", "chart-battles", "chart-time"):
            wait_js(page, f"Chart.getChart('{chart}') !== undefined")
        watch.collect()
        page.select_option("select[name=category]", "knowledge")
        page.wait_for_url(re.compile(r".*category=knowledge.*"))
        wait_js(page, "Chart.getChart('chart-ratings') !== undefined")
        visit("/leaderboard/compare/")
        watch.collect()
        page.select_option("select[name=style]", "1")
        page.wait_for_url(re.compile(r".*style=1.*"))

        visit("/calibration/")
        page.wait_for_selector(".cal-judge")

        # Judge pages: the run page's figures follow the run through progress.js.
        visit("/judge/")
        visit(f"/judge/runs/{judge_run}/")
        assert page.locator("#run-status").inner_text() == "running"
        _finish(env, judge_run, 10)
        wait_js(page, "document.getElementById('run-status').textContent === 'done'", timeout=15)
        assert page.locator("#run-done").inner_text() == "10"
        assert page.locator("#run-message").inner_text() == "all done"
        assert page.locator("#judge-run-bar").evaluate("(bar) => bar.value") == 10

        visit("/admin/")
        visit("/admin/arena/contestant/")
        watch.collect()

    assert watch.violations == []
    assert watch.console == []
    assert watch.errors == []
    assert {path: policy == EXPECTED_POLICY for path, policy in policies.items()} == {
        path: True for path in policies
    }
    assert battle_result in policies
