"""The leaderboard pages' views: table order, columns, status while a board is computed, the
A-vs-B defaults."""

import re

import pytest
from django.core.cache import cache

from arena.leaderboards.refresh import leaderboard_refresh
from arena.leaderboards.schedule import REFRESH_QUEUED, REFRESH_RUNNING
from arena.leaderboards.snapshots import latest_snapshot
from arena.models import Category, LeaderboardSnapshot
from tests.arena.leaderboards import test_leaderboards

pytestmark = pytest.mark.django_db

# The simulated votes and the signed-in client of the leaderboard tests.
arena_votes = test_leaderboards.arena_votes
signed_in = test_leaderboards.signed_in


@pytest.fixture(autouse=True)
def _empty_cache():
    cache.clear()
    yield
    cache.clear()


def _board_ranks(html: str) -> list[int]:
    body = html.split('id="board"', 1)[1].split("</tbody>", 1)[0]
    return [
        int(n)
        for n in re.findall(r'<td class="num" data-value="\d+" title="[^"]*">(\d+)</td>', body)
    ]


def test_the_table_follows_the_rank_it_shows_and_explains_every_column(arena_votes, signed_in):
    leaderboard_refresh()
    snapshot = latest_snapshot()
    # Make the ranks disagree with the rating order, as wide intervals do.
    rows = snapshot.results["rows"]
    rows[0]["rank_ub"], rows[1]["rank_ub"] = 2, 1
    snapshot.save(update_fields=["results"])
    html = signed_in.get("/leaderboard/").content.decode()
    ranks = _board_ranks(html)
    assert ranks == sorted(ranks)
    assert html.index(">Beta<") < html.index(">Alpha<")
    assert "1 + the number of models that are" in html and "significantly better" in html
    legend = html.split('id="legend"', 1)[1].split("</dl>", 1)[0]
    for term in ("Rank", "Rating", "95% interval", "Votes", "Win rate", "Method: bt"):
        assert f"<dt>{term}</dt>" in legend, term
    assert "ties" in legend and "both bad" in legend
    # No row has a first-token time or a cost: those columns are not shown at all.
    assert "Median first token" not in html and "Cost / 1,000" not in html
    assert f"from {snapshot.results['n_battles']} votes" in html


def test_while_a_refresh_runs_the_page_says_computing_and_the_status_follows(
    arena_votes, signed_in
):
    cache.set(REFRESH_QUEUED, 1)
    html = signed_in.get("/leaderboard/").content.decode()
    assert 'id="computing"' in html and "Computing this leaderboard" in html
    assert "No leaderboard for this choice yet" not in html
    assert signed_in.get("/leaderboard/status.json").json()["refresh"] == "queued"
    cache.delete(REFRESH_QUEUED)
    cache.set(REFRESH_RUNNING, 1)
    assert signed_in.get("/leaderboard/status.json").json() == {
        "snapshot": None,
        "completed_at": None,
        "n_votes": None,
        "refresh": "running",
    }
    leaderboard_refresh()
    cache.delete(REFRESH_RUNNING)
    status = signed_in.get("/leaderboard/status.json?category=coding").json()
    coding = Category.objects.get(slug="coding")
    assert status["snapshot"] == latest_snapshot(category=coding).pk
    assert status["refresh"] == "" and status["n_votes"] == 100
    assert signed_in.get("/leaderboard/status.json?scope=robots").status_code == 400


def test_votes_without_any_board_yet_are_the_first_refresh_on_its_way(arena_votes, signed_in):
    """serve computes the first boards beside the server when there are votes but no board."""
    assert not LeaderboardSnapshot.objects.exists()
    assert signed_in.get("/leaderboard/status.json").json()["refresh"] == "first"
    assert "Computing this leaderboard" in signed_in.get("/leaderboard/").content.decode()
    leaderboard_refresh()
    # Once boards exist, a choice with none (no style control without answer texts) is empty.
    html = signed_in.get("/leaderboard/?style=1").content.decode()
    assert "No leaderboard for this choice yet" in html


def test_unranked_models_are_explained(arena_votes, signed_in, settings):
    settings.ARENA_MIN_VOTES = 150
    leaderboard_refresh()
    html = signed_in.get("/leaderboard/?category=coding").content.decode()
    assert "fewer than 150 votes" in html and "ARENA_MIN_VOTES" in html


def test_compare_opened_from_the_leaderboard_compares_the_two_best(arena_votes, signed_in):
    leaderboard_refresh()
    html = signed_in.get("/leaderboard/compare/").content.decode()
    assert 'id="pair-predicted"' in html
    assert "Pick two different models" not in html
    same = signed_in.get("/leaderboard/compare/?a=Alpha&b=Alpha").content.decode()
    assert "Pick two different models" in same and 'id="pair-predicted"' not in same
    unknown = signed_in.get("/leaderboard/compare/?a=Nobody&b=Alpha").content.decode()
    assert "is not on this leaderboard" in unknown
