import csv
import io
import threading

import numpy as np
import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.utils import timezone

import ratings
from arena.battles.services import turn_record
from arena.leaderboards.refresh import leaderboard_refresh
from arena.leaderboards.schedule import REFRESH_QUEUED, refresh_due
from arena.leaderboards.snapshots import latest_snapshot
from arena.leaderboards.tasks import leaderboard_refresh_task
from arena.models import (
    Battle,
    BattleCategory,
    Category,
    Contestant,
    Judge,
    Judgement,
    LeaderboardSnapshot,
    Vote,
)
from tests.factories import make_contestant

pytestmark = pytest.mark.django_db

STRENGTH = {"Alpha": 1.5, "Beta": 0.5, "Gamma": 0.0, "Delta": -1.0}
CODES = {"a": ratings.A_WINS, "b": ratings.B_WINS, "tie": ratings.TIE, "both_bad": ratings.BOTH_BAD}


def _vote(a, b, outcome, *, category=None, void="", status=Battle.Status.VOTED):
    battle = Battle.objects.create(
        contestant_a=a, contestant_b=b, mode=Battle.Mode.IMPORTED, status=status
    )
    if category is not None:
        BattleCategory.objects.create(battle=battle, category=category)
    return Vote.objects.create(battle=battle, outcome=outcome, void_reason=void)


@pytest.fixture
def arena_votes(settings):
    """400 simulated votes among four models; a quarter of them in the 'coding' category."""
    settings.ARENA_MIN_VOTES = 10
    settings.ARENA_LEADERBOARD_ROUNDS = 200
    rng = np.random.default_rng(4)
    models = {n: make_contestant(name=n, kind="recorded") for n in STRENGTH}
    coding = Category.objects.create(slug="coding", name="Coding")
    names = list(STRENGTH)
    for k in range(400):
        i, j = rng.choice(4, size=2, replace=False)
        p = 1 / (1 + np.exp(STRENGTH[names[j]] - STRENGTH[names[i]]))
        u = rng.random()
        outcome = "tie" if u < 0.2 else ("a" if u < 0.2 + 0.8 * p else "b")
        _vote(models[names[i]], models[names[j]], outcome, category=coding if k % 4 == 0 else None)
    # Never counted: a void vote and an errored battle.
    _vote(models["Delta"], models["Alpha"], "a", void="identity leaked")
    _vote(models["Delta"], models["Alpha"], "a", status=Battle.Status.ERRORED)
    return models


def _expected(category=None, cutoff=None):
    """Independent path: read the votes row by row and fit with the ratings engine."""
    votes = Vote.objects.counted().exclude(battle__status=Battle.Status.ERRORED)
    if category is not None:
        votes = votes.filter(battle__battlecategory__category=category)
    if cutoff is not None:
        votes = votes.filter(id__lte=cutoff)
    ids = sorted(Contestant.objects.values_list("id", flat=True))
    rows = [
        (ids.index(v.battle.contestant_a_id), ids.index(v.battle.contestant_b_id), CODES[v.outcome])
        for v in votes.select_related("battle")
    ]
    a, b, o = (np.array(c) for c in zip(*rows, strict=True))
    board = ratings.leaderboard(len(ids), a, b, o, ci="none")
    names = dict(Contestant.objects.values_list("id", "name"))
    return {names[ids[m]]: r for m, r in zip(board.model, board.rating, strict=True)}


def test_a_refresh_stores_the_maximum_likelihood_ratings_of_the_counted_votes(arena_votes):
    made = leaderboard_refresh()
    assert {(s.category.slug if s.category else None, s.style_control) for s in made} == {
        (None, False),
        ("coding", False),
    }  # no answer texts here, so no style-controlled boards
    overall = latest_snapshot()
    rows = {r["model"]: r for r in overall.results["rows"]}
    for name, rating in _expected().items():
        assert rows[name]["rating"] == pytest.approx(rating, abs=0.01)
        assert rows[name]["lower"] < rows[name]["rating"] < rows[name]["upper"]
    assert overall.results["n_battles"] == 400
    assert sum(r["votes"] for r in rows.values()) == 800
    assert [r["model"] for r in overall.results["rows"]] == ["Alpha", "Beta", "Gamma", "Delta"]
    coding = latest_snapshot(category=Category.objects.get(slug="coding"))
    assert coding.results["n_battles"] == 100
    for board in (overall, coding):  # votes over time: every counted vote, on its day
        over_time = board.results["votes_over_time"]
        assert over_time[-1]["cumulative"] == board.results["n_battles"]
        assert over_time[-1]["day"] == str(timezone.localdate())
    for name, rating in _expected(category=Category.objects.get(slug="coding")).items():
        row = next(r for r in coding.results["rows"] if r["model"] == name)
        assert row["rating"] == pytest.approx(rating, abs=0.01)
    last_counted = Vote.objects.counted().exclude(battle__status=Battle.Status.ERRORED)
    assert overall.cutoff_vote_id == last_counted.order_by("-id").first().id
    assert overall.status == LeaderboardSnapshot.Status.COMPLETE
    assert overall.code_version


def test_models_under_the_minimum_are_listed_but_not_ranked(arena_votes, settings):
    settings.ARENA_MIN_VOTES = 1000
    leaderboard_refresh()
    rows = latest_snapshot().results["rows"]
    assert all(r["rank"] is None and r["rank_ub"] is None for r in rows)
    assert len(rows) == 4


def test_the_same_cutoff_settings_and_seed_give_identical_numbers(arena_votes):
    cutoff = Vote.objects.order_by("id").values_list("id", flat=True)[300]
    first = leaderboard_refresh(cutoff_id=cutoff, seed=7)
    Vote.objects.filter(id__gt=cutoff).delete()  # later votes must not matter
    second = leaderboard_refresh(cutoff_id=cutoff, seed=7)
    assert first[0].results == second[0].results
    third = leaderboard_refresh(cutoff_id=cutoff, seed=8)
    assert third[0].results["rows"][0]["lower"] != first[0].results["rows"][0]["lower"]
    for name, rating in _expected(cutoff=cutoff).items():
        row = next(r for r in first[0].results["rows"] if r["model"] == name)
        assert row["rating"] == pytest.approx(rating, abs=0.01)


@pytest.mark.django_db(transaction=True)
def test_two_refreshes_at_once_each_store_a_consistent_snapshot(arena_votes):
    models = arena_votes
    done = []

    def refresh():
        try:
            done.append(leaderboard_refresh(n_resamples=50))
        finally:
            connection.close()

    threads = [threading.Thread(target=refresh) for _ in range(2)]
    threads[0].start()
    for _ in range(30):  # votes arrive while the first refresh runs
        _vote(models["Gamma"], models["Delta"], "a")
    threads[1].start()
    for thread in threads:
        thread.join(120)
    assert len(done) == 2
    for snapshot in LeaderboardSnapshot.objects.filter(category=None):
        counted = Vote.objects.counted().exclude(battle__status=Battle.Status.ERRORED)
        assert (
            snapshot.results["n_battles"] == counted.filter(id__lte=snapshot.cutoff_vote_id).count()
        )
        total = sum(r["votes"] for r in snapshot.results["rows"])
        assert total == 2 * snapshot.results["n_battles"]


def test_a_judge_board_uses_the_combined_verdicts(arena_votes):
    judge = Judge.objects.create(name="Grader")
    battles = list(Battle.objects.filter(status=Battle.Status.VOTED)[:60])
    for battle in battles:
        Judgement.objects.create(judge=judge, battle=battle, order="ab", verdict="A>B")
        Judgement.objects.create(judge=judge, battle=battle, order="ba", verdict="A>B")
    made = leaderboard_refresh(judge=judge)
    snapshot = latest_snapshot(judge=judge)
    assert made and snapshot.scope == "judge"
    # Always "the first shown wins": every pair is inconsistent, so every verdict is a tie.
    rows = snapshot.results["rows"]
    assert sum(r["ties"] for r in rows) == 2 * len(battles)
    assert latest_snapshot() is None  # the human board is not touched


def test_a_refresh_is_due_after_enough_new_votes(arena_votes, settings):
    settings.ARENA_REFRESH_EVERY_VOTES = 3
    settings.ARENA_REFRESH_MINUTES = 60
    assert refresh_due()  # no snapshot yet
    leaderboard_refresh()
    assert not refresh_due()
    models = arena_votes
    _vote(models["Alpha"], models["Beta"], "a")
    _vote(models["Alpha"], models["Beta"], "b")
    assert not refresh_due()
    _vote(models["Alpha"], models["Beta"], "tie")
    assert refresh_due()
    settings.ARENA_REFRESH_MINUTES = 0
    leaderboard_refresh()
    _vote(models["Alpha"], models["Beta"], "a")
    assert refresh_due()  # T minutes (here 0) have passed since the last one


def test_a_counted_vote_queues_one_debounced_refresh(
    arena_votes, settings, monkeypatch, django_capture_on_commit_callbacks, alice
):
    from django.core.cache import cache

    from arena.battles.services import vote_record

    settings.ARENA_REFRESH_AFTER_VOTES = True
    settings.CELERY_TASK_ALWAYS_EAGER = False
    queued = []
    monkeypatch.setattr(leaderboard_refresh_task, "delay", lambda: queued.append(1))
    cache.delete(REFRESH_QUEUED)
    models = arena_votes
    for _ in range(2):
        battle = Battle.objects.create(
            contestant_a=models["Alpha"],
            contestant_b=models["Beta"],
            user=alice,
            status=Battle.Status.READY,
        )
        with django_capture_on_commit_callbacks(execute=True):
            vote_record(battle_id=battle.pk, user=alice, outcome="a")
    assert queued == [1]  # the second vote found a refresh already queued
    cache.delete(REFRESH_QUEUED)


@pytest.fixture
def signed_in(client):
    client.force_login(get_user_model().objects.create_user("viewer"))
    return client


def test_the_api_serves_the_latest_complete_snapshot(arena_votes, signed_in, client):
    assert signed_in.get("/api/leaderboards/").status_code == 404
    leaderboard_refresh()
    body = signed_in.get("/api/leaderboards/?scope=human&category=coding&style=0").json()
    assert body["snapshot"]["category"] == "coding"
    assert body["results"]["rows"][0]["model"] == "Alpha"
    assert signed_in.get("/api/leaderboards/?style=1").status_code == 404
    assert signed_in.get("/api/leaderboards/?scope=robots").json()["error"].startswith("scope")
    assert signed_in.get("/api/leaderboards/?category=nope").status_code == 400
    listing = signed_in.get("/api/leaderboards/snapshots/").json()["snapshots"]
    assert len(listing) == 2
    client.logout()
    assert client.get("/api/leaderboards/").status_code == 401


def test_the_page_shows_the_snapshots_numbers_and_downloads(arena_votes, signed_in):
    leaderboard_refresh()
    snapshot = latest_snapshot()
    html = signed_in.get("/leaderboard/").content.decode()
    top = snapshot.results["rows"][0]
    assert f"{top['rating']:.0f}" in html and "Alpha" in html
    assert f"up to #{snapshot.cutoff_vote_id}" in html
    download = signed_in.get(snapshot.results and f"/leaderboard/snapshots/{snapshot.pk}.csv")
    rows = list(csv.DictReader(io.StringIO(download.content.decode())))
    assert [r["model"] for r in rows] == ["Alpha", "Beta", "Gamma", "Delta"]
    assert float(rows[0]["rating"]) == top["rating"]
    empty = signed_in.get("/leaderboard/?category=coding&style=1").content.decode()
    assert "No leaderboard for this choice yet" in empty


def test_the_a_vs_b_view_reads_prediction_and_significance_from_the_snapshot(
    arena_votes, signed_in
):
    leaderboard_refresh()
    snapshot = latest_snapshot(with_pictures=True)
    results, pictures = snapshot.results, snapshot.pictures
    html = signed_in.get("/leaderboard/compare/?a=Alpha&b=Delta").content.decode()
    i, j = results["models"].index("Alpha"), results["models"].index("Delta")
    prob = pictures["pairwise"]["prob"][i][j]
    assert f"{100 * prob:.1f}%" in html
    assert "differ significantly" in html
    assert pictures["battles"][i][j] > 0


@pytest.mark.parametrize(
    ("query", "reason"),
    [
        ("scope=x", "scope must be human or judge."),
        ("category=nope", "Unknown category 'nope'."),
        ("style=2", "style must be 0 or 1."),
        ("scope=judge&judge=nobody", "Unknown judge 'nobody'."),
    ],
)
def test_a_bad_choice_on_the_page_is_explained_with_a_400(arena_votes, signed_in, query, reason):
    for path in ("/leaderboard/", "/leaderboard/compare/"):
        response = signed_in.get(f"{path}?{query}")
        assert response.status_code == 400
        html = response.content.decode()
        assert reason.replace("'", "&#x27;") in html
        assert 'id="toggles"' in html  # the choices are there to pick a valid one


def test_contestant_stats_use_stored_tokens_and_estimate_the_rest():
    from arena.leaderboards.data import contestant_stats
    from arena.models import Answer, PromptItem, PromptSet, Turn

    a = make_contestant(name="Live A")
    b = make_contestant(name="Live B")
    battle = Battle.objects.create(contestant_a=a, contestant_b=b)
    Turn.objects.create(
        battle=battle,
        index=0,
        side="a",
        prompt="q",
        text="x",
        tokens_out=40,
        ttft_ms=100,
        cost="0.002",
    )
    Turn.objects.create(
        battle=battle,
        index=1,
        side="a",
        prompt="q",
        text="y",
        tokens_out=60,
        ttft_ms=300,
        cost="0.004",
    )
    Turn.objects.create(battle=battle, index=0, side="b", prompt="q", text="one two three.")
    Turn.objects.create(battle=battle, index=1, side="b", prompt="q", text="", error="boom")
    item = PromptItem.objects.create(prompt_set=PromptSet.objects.create(name="S"), text="p")
    Answer.objects.create(item=item, contestant=b, text="four five six seven eight.")
    stats = contestant_stats()
    assert stats[a.pk] == {"median_ttft_ms": 200.0, "median_tokens": 50.0, "cost_per_1000": 3.0}
    expected = np.median(
        [
            ratings.estimate_tokens("one two three."),
            ratings.estimate_tokens("four five six seven eight."),
        ]
    )
    assert stats[b.pk] == {"median_ttft_ms": None, "median_tokens": expected, "cost_per_1000": None}


def test_style_features_are_stored_once_and_add_up_over_a_sides_rounds():
    from arena.battles.style import battle_style
    from arena.models import Answer, PromptItem, PromptSet, Turn

    a = make_contestant(name="A", kind="recorded")
    b = make_contestant(name="B", kind="recorded")
    live = Battle.objects.create(contestant_a=a, contestant_b=b, status=Battle.Status.VOTED)
    rounds = {
        "a": ["# Plan\n- one\n- two", "**Bold** answer, then:\n```\n# not a header\n```"],
        "b": ["Plain words only.", "1. first\n2. second\n__strong__"],
    }
    for side, texts in rounds.items():
        for index, text in enumerate(texts):
            turn_record(battle_id=live.pk, index=index, side=side, attempt=0, prompt="q", text=text)
    turn_record(  # a failed round does not count
        battle_id=live.pk, index=2, side="a", attempt=0, prompt="q", text="- x", error="cut"
    )
    item = PromptItem.objects.create(prompt_set=PromptSet.objects.create(name="s"), text="q")
    answer_a = Answer.objects.create(item=item, contestant=a, text="## Title\n* item")
    answer_b = Answer.objects.create(item=item, contestant=b, text="Short.")
    stored = Battle.objects.create(
        contestant_a=a, contestant_b=b, answer_a=answer_a, answer_b=answer_b
    )
    no_texts = Battle.objects.create(contestant_a=a, contestant_b=b)

    ids = np.array([no_texts.pk, live.pk, stored.pk])
    mask, style_a, style_b = battle_style(ids)
    assert mask.tolist() == [False, True, True]
    # Each round on its own, added up: the same as the features of the joined text here.
    for side, got in (("a", style_a[0]), ("b", style_b[0])):
        expected = ratings.answer_features(rounds[side]).sum(axis=0)
        np.testing.assert_array_equal(got, expected)
        np.testing.assert_array_equal(got, ratings.answer_features(["\n\n".join(rounds[side])])[0])
    np.testing.assert_array_equal(style_a[1], ratings.answer_features([answer_a.text])[0])
    assert style_a[0].tolist() != [0, 0, 0, 0] and style_a[0][1] == 1  # one header, not two

    # Stored with the rows: a later refresh reads the numbers, not the texts.
    assert Turn.objects.filter(style__isnull=True).count() == 0
    answer_a.refresh_from_db()
    assert answer_a.style == ratings.answer_features([answer_a.text])[0].tolist()
    Answer.objects.filter(pk=answer_a.pk).update(style=[7, 0, 0, 0])
    Turn.objects.filter(battle=live, side="b").update(style=[1, 1, 1, 1])
    mask, style_a, style_b = battle_style(ids)
    assert style_a[1].tolist() == [7, 0, 0, 0] and style_b[0].tolist() == [2, 2, 2, 2]
