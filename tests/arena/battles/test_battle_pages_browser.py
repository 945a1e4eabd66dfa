"""The battle page's details in Chromium: line breaks, empty answers, the reveal, the category
of each round, a lost connection; and the demo's recorded-only picker."""

import re
import subprocess
import sys
import time

import httpx
import pytest

from tests.support import ROOT, daphne_process, manage, server_env
from tests.upstream import fixed_spec, upstream_fixture  # noqa: F401

pytestmark = pytest.mark.browser

MODELS = """
[[model]]
name = "Kestrel Ultra"
organisation = "Kestrel Labs"
kind = "openai"
base_url = "{url}"
model_id = "kestrel-ultra-0612"

[[model]]
name = "Badger Base"
organisation = "Badger Labs"
kind = "openai"
base_url = "{url}"
model_id = "badger-base-0612"
"""

HAIKU = "Pods drift like leaves\nYAML rivers carve the hills\nthe cluster is calm"
CATEGORIES = """
from arena.models import Category
Category.objects.get_or_create(slug="poetry", defaults={"name": "Poetry"})
"""
LAST_BATTLES = """
from arena.models import Battle
print([list(b.categories.values_list("slug", flat=True)) for b in Battle.objects.order_by("id")])
"""


def _sign_in(page, base, password, next_path="/battle/"):
    page.goto(f"{base}/accounts/login/?next={next_path}")
    page.get_by_label("Username").fill("admin")
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(base + next_path)


def _both_done(page):
    """Both answers are in and the round's ``ready`` (its notice, the vote buttons) arrived."""
    page.wait_for_function(
        "document.getElementById('prompt-form').dataset.round === 'ready'"
        " && ['status-a', 'status-b'].every((id) =>"
        " document.getElementById(id).textContent.startsWith('done'))",
        timeout=30_000,
    )


def _daphne_on(port: int, env, log_path):
    """Daphne again on a port that was in use a moment ago (a server restart)."""
    log = open(log_path, "ab")  # noqa: SIM115 (closed with the process)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "daphne",
            "-b",
            "127.0.0.1",
            "-p",
            str(port),
            "arena.asgi:application",
        ],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 30
    while True:
        try:
            httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
            return proc, log
        except httpx.TransportError:
            assert time.monotonic() < deadline, "daphne did not come back"
            time.sleep(0.1)


def test_answers_keep_their_lines_empty_ones_are_confirmed_and_the_reveal_says_all(
    tmp_path, upstream, page, artifacts_dir
):
    upstream.set_behaviour("kestrel-ultra-0612", fixed_spec(HAIKU))
    upstream.set_behaviour("badger-base-0612", fixed_spec(""))
    env = server_env(tmp_path)
    out = manage(env, "serve", "--prepare-only", "--no-demo").stdout
    password = re.search(r"password (\S+) \(also kept in", out).group(1)
    (tmp_path / "models.toml").write_text(MODELS.format(url=upstream.url))
    manage(env, "models", "sync", str(tmp_path / "models.toml"))
    manage(env, "shell", "-c", CATEGORIES)

    with daphne_process(env, tmp_path / "daphne.log") as (base, proc):
        _sign_in(page, base, password)
        page.wait_for_function("!document.getElementById('send').disabled")
        page.select_option("#category", "poetry")
        page.locator("#prompt").fill("A haiku about Kubernetes, please")
        page.locator("#send").click()
        _both_done(page)
        page.wait_for_function("!document.querySelector('.votes button').disabled")
        # The category labels the battle's first prompt only: it cannot change mid-battle.
        assert page.locator("#category").is_disabled()

        # The haiku keeps its three lines (marked's breaks: true); the empty side says so.
        haiku = page.locator(".msg.assistant", has_text="Pods drift")
        assert haiku.locator("br").count() == 2
        assert len(haiku.inner_text().strip().splitlines()) == 3
        empty_side = "b" if "Pods" in page.locator("#conv-a").inner_text() else "a"
        assert "empty answer" in page.locator(f"#status-{empty_side}").inner_text()
        assert page.locator(f"#pane-{empty_side}[data-empty]").count() == 1
        assert page.locator(f"#conv-{empty_side} .msg.assistant[data-empty]").count() == 1
        assert "is empty" in page.locator("#notice").inner_text()
        page.screenshot(path=str(artifacts_dir / "battle-empty-answer.png"), full_page=True)

        # A vote with an empty answer is asked about once more; Cancel sends nothing.
        page.keyboard.press("3")
        assert page.locator("#confirm-empty").is_visible()
        assert "anyway" in page.locator("#confirm-empty-text").inner_text()
        page.locator("#confirm-empty-no").click()
        assert page.locator("#confirm-empty").is_hidden()
        assert page.locator("#reveal").is_hidden()
        page.get_by_role("button", name="Tie").click()
        page.locator("#confirm-empty-yes").click()
        page.wait_for_selector("#reveal:not([hidden])")

        reveal = page.locator("#reveal").inner_text()
        assert reveal.startswith("Thanks, your vote counts.")
        assert "You voted: Tie." in reveal
        assert "Kestrel Ultra (Kestrel Labs)" in reveal and "Badger Base (Badger Labs)" in reveal
        assert re.search(r"\b\d+ tokens?\b", reveal)
        assert "1 tokens" not in reveal and "0 token " not in reveal
        statuses = page.locator(".pane .status").all_inner_texts()
        assert {s.split(" · ")[0] for s in statuses} == {"Kestrel Labs", "Badger Labs"}
        assert page.locator("#reveal a", has_text="Leaderboard").get_attribute("href") == (
            "/leaderboard/"
        )
        page.screenshot(path=str(artifacts_dir / "battle-revealed-details.png"), full_page=True)

        # The next battle starts with no category: it is chosen afresh each round.
        page.locator("#reveal").get_by_role("button", name="Next battle").click()
        page.wait_for_function("document.querySelector('.pane h2').textContent === 'Model A'")
        assert page.locator("#category").input_value() == ""
        assert page.locator("#category").is_enabled()
        upstream.set_behaviour("badger-base-0612", fixed_spec("Yes"))
        page.locator("#prompt").fill("Second battle, no category")
        page.locator("#send").click()
        _both_done(page)
        statuses = page.locator(".pane .status").all_inner_texts()
        assert any(" 1 token" in s and "1 tokens" not in s for s in statuses), statuses
        assert page.locator("#notice").inner_text() == "Both answers are in. Which is better?"

        # The server goes away mid-answer: the panes stop answering, the controls stop, and
        # the page offers to reconnect; once the server is back, Reconnect starts over.
        page.get_by_role("button", name="New round").click()
        page.wait_for_function("document.querySelectorAll('.msg').length === 0")
        upstream.set_behaviour("kestrel-ultra-0612", "stall:after=1")
        upstream.set_behaviour("badger-base-0612", "stall:after=1")
        page.locator("#prompt").fill("This one will be cut off")
        page.locator("#send").click()
        page.wait_for_function("document.getElementById('status-a').textContent === 'answering…'")
        port = int(base.rsplit(":", 1)[1])
        proc.terminate()
        proc.wait(10)
        page.wait_for_selector("#connection:not([hidden])", timeout=10_000)
        for side in "ab":
            assert "answering" not in page.locator(f"#status-{side}").inner_text()
            assert "connection lost" in page.locator(f"#status-{side}").inner_text()
        for button in ("#send", "#regenerate", "#new-round"):
            assert page.locator(button).is_disabled(), button
        assert page.locator(".votes button:enabled").count() == 0
        page.set_viewport_size({"width": 390, "height": 844})
        page.screenshot(
            path=str(artifacts_dir / "battle-connection-lost-phone.png"), full_page=True
        )
        page.set_viewport_size({"width": 1366, "height": 900})

        upstream.set_behaviour("kestrel-ultra-0612", fixed_spec(HAIKU))
        upstream.set_behaviour("badger-base-0612", "echo")
        again, log = _daphne_on(port, env, tmp_path / "daphne-again.log")
        try:
            page.locator("#reconnect").click()
            page.wait_for_selector("#connection[hidden]", state="attached", timeout=10_000)
            assert "Reconnected" in page.locator("#notice").inner_text()
            assert page.locator(".msg").count() == 0
            page.locator("#prompt").fill("After the reconnect")
            page.locator("#send").click()
            _both_done(page)
        finally:
            again.terminate()
            again.wait(10)
            log.close()

    battles = manage(env, "shell", "-c", LAST_BATTLES).stdout.strip().splitlines()[-1]
    assert battles.startswith("[['poetry'], [], ")


def test_recorded_models_offer_their_prompts_as_a_picker(tmp_path, page, artifacts_dir):
    env = server_env(tmp_path, ARENA_LEADERBOARD_ROUNDS="20")
    out = manage(env, "serve", "--prepare-only").stdout
    password = re.search(r"password (\S+) \(also kept in", out).group(1)
    with daphne_process(env, tmp_path / "daphne.log") as (base, _proc):
        _sign_in(page, base, password)
        assert page.locator("#prompt").get_attribute("readonly") is not None
        # Word for word, line breaks included: anything else the recorded models cannot answer.
        options = page.locator("#prompt-pick option").evaluate_all("(os) => os.map((o) => o.value)")
        suggestions = page.locator(".suggestion").evaluate_all(
            "(bs) => bs.map((b) => b.textContent)"
        )
        assert options[1:] == suggestions and len(suggestions) > 5
        assert any("\n" in s for s in suggestions)
        page.screenshot(path=str(artifacts_dir / "battle-recorded-picker.png"), full_page=True)

        page.locator("#send").click()  # nothing chosen yet
        assert "Choose a prompt first" in page.locator("#notice").inner_text()
        page.select_option("#prompt-pick", index=1)
        assert page.locator("#prompt").input_value() == suggestions[0]
        page.locator("#send").click()
        _both_done(page)
        # No follow-up, no regenerate: the recorded models cannot answer them; the page says why.
        assert page.locator("#send").is_disabled()
        assert page.locator("#regenerate").is_disabled()
        assert page.locator("#prompt-pick").is_disabled()
        assert "first prompt" in page.locator("#followup-note").inner_text()
        assert "first prompt" in page.locator("#regenerate").get_attribute("title")
        page.keyboard.press("1")
        page.wait_for_selector("#reveal:not([hidden])")
        page.locator("#reveal").get_by_role("button", name="Next battle").click()
        page.wait_for_function("!document.getElementById('prompt-pick').disabled")
        assert page.locator("#prompt-pick").input_value() == ""

        page.set_viewport_size({"width": 390, "height": 844})
        page.reload()
        assert page.locator("#suggestions").evaluate("(d) => d.open") is False
        page.screenshot(
            path=str(artifacts_dir / "battle-recorded-picker-phone.png"), full_page=True
        )
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
