"""A whole battle in Debian's Chromium, against Daphne and the local OpenAI-protocol server."""

import re

import pytest

from tests.support import daphne_server, manage, server_env
from tests.upstream import upstream_fixture  # noqa: F401

pytestmark = pytest.mark.browser

MODELS = """
[[model]]
name = "Kestrel Ultra"
organisation = "Kestrel Labs"
kind = "openai"
base_url = "{url}"
model_id = "kestrel-ultra-0612"
price_input_per_mtok = 1.0
price_output_per_mtok = 2.0

[[model]]
name = "Badger Base"
organisation = "Badger Labs"
kind = "openai"
base_url = "{url}"
model_id = "badger-base-0612"
"""

PROMPT = 'Show **bold** and `code` <img src=x onerror="window.__xss = 1">'


def test_a_person_plays_a_whole_battle(tmp_path, upstream, page, artifacts_dir):
    upstream.set_behaviour("kestrel-ultra-0612", "slow:delay=0.02")
    upstream.set_behaviour("badger-base-0612", "echo")
    env = server_env(tmp_path)
    out = manage(env, "serve", "--prepare-only", "--no-demo").stdout
    password = re.search(r"password (\S+) \(also kept in", out).group(1)
    (tmp_path / "models.toml").write_text(MODELS.format(url=upstream.url))
    manage(env, "models", "sync", str(tmp_path / "models.toml"))

    with daphne_server(env, tmp_path / "daphne.log") as base:
        page.goto(base + "/accounts/login/?next=/battle/")
        page.get_by_label("Username").fill("admin")
        page.get_by_label("Password").fill(password)
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url(base + "/battle/")
        html = page.content()
        for secret in ("Kestrel", "Badger", "kestrel-ultra", upstream.url):
            assert secret not in html

        votes = page.locator(".votes button")
        assert all(votes.nth(i).is_disabled() for i in range(4))
        page.locator("#prompt").fill(PROMPT)
        page.get_by_role("button", name="Send").click()
        page.wait_for_function(
            "document.getElementById('status-a').textContent.startsWith('done')"
            " && document.getElementById('status-b').textContent.startsWith('done')",
            timeout=15_000,
        )
        page.wait_for_function("!document.querySelector('.votes button').disabled")
        # Both panes filled; the echoed Markdown is rendered and the injected handler is not.
        panes = page.locator(".msg.assistant")
        assert "fake model" in (panes.nth(0).inner_text() + panes.nth(1).inner_text())
        assert page.locator(".msg.assistant strong", has_text="bold").count() == 1
        assert page.locator(".msg.assistant code", has_text="code").count() == 1
        assert page.locator(".msg.assistant img").count() == 0
        assert page.evaluate("window.__xss") is None
        html = page.content()
        for secret in ("Kestrel", "Badger", "kestrel-ultra"):
            assert secret not in html
        page.screenshot(path=str(artifacts_dir / "battle-before-vote.png"), full_page=True)

        page.keyboard.press("1")  # keyboard shortcut: A is better
        page.wait_for_selector("#reveal:not([hidden])")
        headers = page.locator(".pane h2").all_inner_texts()
        assert {h.split(": ", 1)[1] for h in headers} == {"Kestrel Ultra", "Badger Base"}
        assert "your vote counts" in page.locator("#reveal").inner_text()
        page.screenshot(path=str(artifacts_dir / "battle-revealed.png"), full_page=True)

        page.get_by_role("button", name="New round").click()
        page.wait_for_function("document.querySelector('.pane h2').textContent === 'Model A'")
        assert page.locator(".msg").count() == 0

        page.set_viewport_size({"width": 390, "height": 844})
        page.screenshot(path=str(artifacts_dir / "battle-phone.png"), full_page=True)
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 390
