"""The leaderboard pages on the LLMFAO demo in Chromium: the table's order and sorting, the
legend, the phone layout, a judge board with few ranked models, the status while a board is
computed, A vs B opened from the board, the favicon."""

import re

import pytest

from tests.support import daphne_server, manage, server_env

pytestmark = pytest.mark.browser

JUDGE = "GPT-3 (LLMFAO)"
FORGET_JUDGE = f"""
from arena.models import LeaderboardSnapshot
LeaderboardSnapshot.objects.filter(judge__name={JUDGE!r}).delete()
"""


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """The demo with its boards, served by Daphne: (base URL, password, env)."""
    data = tmp_path_factory.mktemp("demo")
    env = server_env(data, ARENA_LEADERBOARD_ROUNDS="50")
    out = manage(env, "serve", "--prepare-only").stdout
    password = re.search(r"password (\S+) \(also kept in", out).group(1)
    with daphne_server(env, data / "daphne.log") as base:
        yield base, password, env


def _sign_in(page, base, password, next_path):
    page.goto(f"{base}/accounts/login/?next={next_path}")
    page.get_by_label("Username").fill("admin")
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(base + next_path)


def _column(page, table: str, n: int) -> list[str]:
    return page.locator(f"{table} tbody tr td:nth-child({n})").all_inner_texts()


def test_the_board_reads_in_rank_order_sorts_and_fits(demo, page, artifacts_dir):
    base, password, _env = demo
    failed = []
    page.on("response", lambda r: failed.append(r.url) if r.status >= 400 else None)
    page.set_viewport_size({"width": 1366, "height": 900})
    _sign_in(page, base, password, "/leaderboard/")
    ranks = [int(r) for r in _column(page, "#board", 1)]
    assert ranks == sorted(ranks)
    assert "1 + the number of models that are significantly better" in page.locator(
        "#rank-note"
    ).inner_text().replace("\n", " ")
    assert re.search(r"Computed .* ago from \d+ votes", page.locator("#board-status").inner_text())
    headers = page.locator("#board thead th").all_inner_texts()
    # The demo has no first-token times or prices: those columns are not there.
    assert not any("first token" in h or "Cost" in h for h in headers)
    assert all(
        page.locator("#board thead th").nth(i).get_attribute("title") for i in range(len(headers))
    )
    assert "Method: bt" in page.locator("#legend").inner_text()
    assert page.evaluate("document.documentElement.scrollWidth") <= 1366
    assert page.locator("#board").bounding_box()["width"] <= 1366
    page.wait_for_function("Chart.getChart('chart-ratings') !== undefined")
    labels = page.evaluate("Chart.getChart('chart-ratings').data.labels")
    assert [label.split(". ", 1)[1] for label in labels] == _column(page, "#board", 2)
    page.screenshot(path=str(artifacts_dir / "leaderboard-desktop.png"), full_page=True)

    # Sorting by a column, client side: by votes (most first), again (fewest first), by rank.
    page.locator("#board thead th", has_text="Votes").get_by_role("button").click()
    votes = [int(v) for v in _column(page, "#board", headers.index("Votes") + 1)]
    assert votes == sorted(votes, reverse=True)
    page.locator("#board thead th", has_text="Votes").get_by_role("button").click()
    votes = [int(v) for v in _column(page, "#board", headers.index("Votes") + 1)]
    assert votes == sorted(votes)
    page.locator("#board thead th", has_text="Model").get_by_role("button").click()
    names = _column(page, "#board", 2)
    assert names == sorted(names, key=str.lower) or names == sorted(names)
    page.locator("#board thead th", has_text="Rank").get_by_role("button").click()
    assert [int(r) for r in _column(page, "#board", 1)] == ranks

    # A phone: the model column stays put while the rest scrolls.
    page.set_viewport_size({"width": 390, "height": 844})
    page.reload()
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    wrap = page.locator("#board").locator("xpath=..")
    cell = page.locator("#board tbody tr td.model").first
    wrap.evaluate("(el) => { el.scrollLeft = 400; }")
    assert wrap.evaluate("(el) => el.scrollLeft") > 0
    assert abs(cell.bounding_box()["x"] - wrap.bounding_box()["x"]) < 2  # stuck to the left
    page.screenshot(path=str(artifacts_dir / "leaderboard-phone.png"), full_page=True)
    page.wait_for_function("Chart.getChart('chart-winprob') !== undefined")
    figure = page.locator("#chart-winprob").locator("xpath=../..")
    figure.screenshot(path=str(artifacts_dir / "leaderboard-winprob-phone.png"))
    assert page.locator("#scale-winprob").is_visible()
    assert (
        page.locator("#scale-battles [data-field=max]")
        .inner_text()
        .endswith("battles (square-root scale)")
    )
    assert not [u for u in failed if "favicon" in u], failed


def test_a_judge_board_with_few_ranked_models_says_why(demo, page, artifacts_dir):
    base, password, _env = demo
    page.set_viewport_size({"width": 1366, "height": 900})
    _sign_in(page, base, password, "/leaderboard/")
    page.goto(f"{base}/leaderboard/?scope=judge&judge=GPT-4+(LLMFAO)&category=knowledge")
    assert page.locator("#unranked tbody tr").count() > 0
    why = page.locator("#unranked-why").inner_text()
    assert "ARENA_MIN_VOTES" in why and "at least 30 verdicts" in why
    page.wait_for_function("Chart.getChart('chart-ratings') !== undefined")
    labels = page.evaluate("Chart.getChart('chart-ratings').data.labels")
    assert [label.split(". ", 1)[1] for label in labels] == _column(page, "#board", 2)
    page.screenshot(path=str(artifacts_dir / "leaderboard-judge-knowledge.png"), full_page=True)

    # "Compare two models" opens on the two best, compared, with no complaint.
    page.get_by_role("link", name="Compare two models").click()
    page.wait_for_url(re.compile(r".*/leaderboard/compare/.*"))
    assert page.locator("#pair-predicted").inner_text().endswith("%")
    assert page.locator("#pair-error").count() == 0
    assert (
        page.locator("select[name=a]").input_value() != page.locator("select[name=b]").input_value()
    )
    page.screenshot(path=str(artifacts_dir / "leaderboard-compare-default.png"), full_page=True)


def test_a_board_on_its_way_says_computing_and_appears_by_itself(demo, page, artifacts_dir):
    base, password, env = demo
    manage(env, "shell", "-c", FORGET_JUDGE)
    _sign_in(page, base, password, "/leaderboard/")
    page.goto(f"{base}/leaderboard/?scope=judge&judge=GPT-3+(LLMFAO)")
    assert page.locator("#computing").is_visible()
    assert "Computing this leaderboard" in page.locator("#computing").inner_text()
    assert page.locator("#no-snapshot").count() == 0
    page.wait_for_function(
        "document.querySelector('#computing [data-field=elapsed]').textContent !== '0 s'"
    )
    page.screenshot(path=str(artifacts_dir / "leaderboard-computing.png"), full_page=True)
    manage(env, "leaderboard", "refresh", "--judge", JUDGE, "--n-resamples", "20")
    page.wait_for_selector("#board", timeout=15_000)  # the page reloaded itself
    assert page.locator("#computing").count() == 0
    assert re.search(r"from \d+ judged pairs", page.locator("#board-status").inner_text())
