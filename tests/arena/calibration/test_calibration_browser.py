"""The calibration page in Debian's Chromium, against Daphne, on the LLMFAO demo data."""

import re
import secrets

import httpx
import pytest
from django.urls import NoReverseMatch, reverse

from tests.support import daphne_server, manage, server_env

pytestmark = pytest.mark.browser


def _env(tmp_path):
    """The server's environment. Until arena/urls.py includes arena.calibration_views, a
    throwaway settings module adds the calibration routes to the arena's."""
    env = server_env(tmp_path)
    try:
        reverse("calibration", urlconf="arena.urls")
    except NoReverseMatch:
        (tmp_path / "calibration_urls.py").write_text(
            "from django.urls import include, path\n"
            'urlpatterns = [path("", include("arena.urls")), '
            'path("", include("arena.calibration.urls"))]\n'
        )
        (tmp_path / "calibration_settings.py").write_text(
            'from arena.settings import *  # noqa: F403\nROOT_URLCONF = "calibration_urls"\n'
        )
        env.update(DJANGO_SETTINGS_MODULE="calibration_settings", PYTHONPATH=str(tmp_path))
    return env


def test_a_person_reads_the_calibration_of_the_llmfao_judges(tmp_path, page, artifacts_dir):
    # `serve --prepare-only` would also fit every leaderboard (a minute and more); the page
    # needs only the demo data and an account.
    env = _env(tmp_path)
    manage(env, "migrate", "--verbosity", "0")
    manage(env, "load_demo")
    password = secrets.token_urlsafe(12)
    manage(
        env,
        "shell",
        "-c",
        "from django.contrib.auth.models import User; "
        f"User.objects.create_user('alice', password='{password}')",
    )
    with daphne_server(env, tmp_path / "daphne.log") as base:
        assert httpx.get(base + "/api/calibration/", timeout=10).status_code == 401
        page.goto(base + "/accounts/login/?next=/calibration/%3Fjudge%3DGPT-4%2B%28LLMFAO%29")
        page.get_by_label("Username").fill("alice")
        page.get_by_label("Password").fill(password)
        page.get_by_role("button", name="Sign in").click()
        # The first view queues the report and reloads itself (Refresh header) until it is in.
        assert "Computing the calibration report" in page.content()
        page.wait_for_selector(".cal-judge", timeout=60_000)

        verdict = page.locator(".cal-judge .verdict").inner_text()
        assert re.fullmatch(
            r"GPT-4 \(LLMFAO\) agrees with the human majority on 38\.7% of pairs "
            r"\(95% CI \d+\.\d–\d+\.\d%\); people agree with each other on 57\.5%\.",
            verdict,
        ), verdict
        assert "not measured: single order" in page.locator(".cal-missing").inner_text()
        confusion = page.locator(".cal-confusion td.diagonal").all_inner_texts()
        assert confusion == ["392", "386", "50"]
        categories = page.locator("h3:has-text('Per category') + table tbody tr")
        assert categories.count() == 4
        board = page.locator(".cal-board tbody tr").all_inner_texts()
        assert board[0].startswith("Spearman correlation with the human board")
        # Nothing wider than the window: every table fits.
        overflow = page.evaluate(
            "Math.max(...[...document.querySelectorAll('main table')]"
            ".map(t => t.getBoundingClientRect().right)) - window.innerWidth"
        )
        assert overflow <= 0, overflow
        page.screenshot(path=str(artifacts_dir / "calibration-gpt4.png"), full_page=True)

        page.get_by_role("link", name="Every judge").click()
        try:
            page.locator(".cal-judge").nth(2).wait_for(timeout=60_000)  # across the reloads
        except Exception:
            (artifacts_dir / "calibration-every.html").write_text(page.content())
            raise
        names = page.locator(".cal-judge h2").all_inner_texts()
        assert names == ["GPT-3 (LLMFAO)", "GPT-4 (LLMFAO)", "GPT-4 replay (LLMFAO)"]
        page.set_viewport_size({"width": 420, "height": 900})
        page.screenshot(path=str(artifacts_dir / "calibration-narrow.png"), full_page=False)
