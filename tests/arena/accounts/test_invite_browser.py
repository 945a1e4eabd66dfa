"""An invite's round trip in Chromium, and a public board read without an account."""

import re

import pytest

from tests.support import daphne_server, manage, server_env

pytestmark = pytest.mark.browser


def test_staff_invite_someone_who_then_votes_and_strangers_only_read_the_board(
    tmp_path, page, chromium_browser, artifacts_dir
):
    env = server_env(tmp_path, ARENA_LEADERBOARD_ROUNDS="100", ARENA_PUBLIC_LEADERBOARDS="1")
    out = manage(env, "serve", "--prepare-only").stdout
    password = re.search(r"password (\S+) \(also kept in", out).group(1)
    with daphne_server(env, tmp_path / "daphne.log") as base:
        page.goto(base + "/accounts/login/?next=/accounts/invites/")
        page.get_by_label("Username").fill("admin")
        page.get_by_label("Password").fill(password)
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url(base + "/accounts/invites/")
        page.get_by_label("Note").fill("Design team")
        page.get_by_label("Max uses").fill("3")
        page.get_by_role("button", name="Create invite link").click()
        page.wait_for_url(base + "/accounts/invites/")
        link = page.get_by_label("Invite link").first.input_value()
        assert link.startswith(base + "/accounts/invite/")
        assert "0 / 3" in page.locator("#invites").inner_text()
        page.screenshot(path=str(artifacts_dir / "accounts-invites.png"), full_page=True)

        guest = chromium_browser.new_context(viewport={"width": 390, "height": 844})
        try:
            tab = guest.new_page()
            tab.goto(link)
            tab.get_by_label("Username").fill("dora")
            tab.get_by_label("Password", exact=True).fill("correct-horse-battery-9")
            tab.get_by_label("Password confirmation").fill("correct-horse-battery-9")
            tab.screenshot(path=str(artifacts_dir / "accounts-invite-phone.png"), full_page=True)
            tab.get_by_role("button", name="Create account").click()
            tab.wait_for_url(base + "/")
            assert tab.locator(".who").inner_text() == "dora"
            assert "Welcome, dora." in tab.locator(".messages").inner_text()
            tab.screenshot(path=str(artifacts_dir / "accounts-invited-landing.png"), full_page=True)
            tab.goto(base + "/battle/")
            assert tab.url == base + "/battle/"  # signed in: the battle page, not the sign-in
            tab.goto(base + "/accounts/invites/")
            assert "Only staff can invite people" in tab.content()
        finally:
            guest.close()

        page.reload()
        assert "1 / 3" in page.locator("#invites").inner_text()

        stranger = chromium_browser.new_context(viewport={"width": 1366, "height": 800})
        try:
            tab = stranger.new_page()
            tab.goto(base + "/leaderboard/")
            assert tab.url == base + "/leaderboard/"
            assert tab.locator("#board tbody tr").count() > 0
            assert tab.get_by_role("link", name="Sign in").count() == 1
            tab.screenshot(path=str(artifacts_dir / "accounts-public-board.png"), full_page=True)
            tab.goto(base + "/battle/")
            assert tab.url.startswith(base + "/accounts/login/")
        finally:
            stranger.close()
