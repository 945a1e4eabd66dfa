"""Vote counts (arena.battles.counts): kept in step with every kind of change, equal to a
rebuild from the votes, and read by a refresh with the same numbers as the votes give."""

import threading
import time

import pytest
from django.core.management import call_command
from django.db import connection, transaction

import ratings
from arena.battles.counts import counts_add, counts_rebuild
from arena.battles.services import vote_record
from arena.exchange.service import battles_import
from arena.leaderboards.data import human_battles
from arena.leaderboards.refresh import leaderboard_refresh
from arena.models import (
    Battle,
    BattleCategory,
    Category,
    DayCount,
    PairCount,
    Vote,
    VoteReview,
)
from tests.arena.exchange.test_exchange import DATA
from tests.factories import make_battle, make_contestant

pytestmark = pytest.mark.django_db


def _stored() -> dict:
    pairs = {
        (k, a, b, o): n
        for k, a, b, o, n in PairCount.objects.filter(n__gt=0).values_list(
            "category_key", "contestant_a_id", "contestant_b_id", "outcome", "n"
        )
    }
    days = {
        (k, d): n
        for k, d, n in DayCount.objects.filter(n__gt=0).values_list("category_key", "day", "n")
    }
    assert not PairCount.objects.filter(n__lt=0).exists()
    assert not DayCount.objects.filter(n__lt=0).exists()
    return {"pairs": pairs, "days": days}


def _assert_equal_to_rebuild() -> dict:
    kept = _stored()
    counts_rebuild()
    assert kept == _stored()
    return kept


def _brute_force() -> dict:
    """The counts straight from the rows, in Python."""
    pairs: dict = {}
    for vote in Vote.objects.select_related("battle"):
        battle = vote.battle
        if vote.void_reason or battle.status in (Battle.Status.ERRORED, Battle.Status.VOID):
            continue
        if VoteReview.objects.filter(vote=vote, status=VoteReview.Status.EXCLUDED).exists():
            continue
        keys = [
            0,
            *BattleCategory.objects.filter(battle=battle).values_list("category_id", flat=True),
        ]
        for k in keys:
            key = (k, battle.contestant_a_id, battle.contestant_b_id, vote.outcome)
            pairs[key] = pairs.get(key, 0) + 1
    return pairs


@pytest.fixture
def votes(alice):
    """Votes through the vote service, in two categories."""
    models = [make_contestant(name=n, kind="recorded") for n in ("Alpha", "Beta", "Gamma")]
    coding = Category.objects.create(slug="coding", name="Coding")
    math = Category.objects.create(slug="math", name="Math")
    made = []
    for k, outcome in enumerate(["a", "b", "tie", "both_bad", "a", "a", "b", "tie"]):
        battle = make_battle(models[k % 3], models[(k + 1) % 3], user=alice)
        for category in [coding, math][: k % 3]:
            BattleCategory.objects.create(battle=battle, category=category)
        made.append(vote_record(battle_id=battle.pk, user=alice, outcome=outcome))
    return {"models": models, "coding": coding, "math": math, "votes": made}


def test_a_recorded_vote_is_counted_in_its_own_transaction(votes):
    kept = _assert_equal_to_rebuild()
    assert kept["pairs"] == _brute_force()
    assert sum(n for (k, *_), n in kept["pairs"].items() if k == 0) == 8
    assert sum(n for (k, _), n in kept["days"].items() if k == votes["coding"].pk) == 5


def test_void_reinstate_and_a_battle_voided_keep_the_counts_equal_to_a_rebuild(votes):
    vote = votes["votes"][1]
    vote.void_reason = "flagged voter"
    vote.save()
    assert _assert_equal_to_rebuild()["pairs"] == _brute_force()
    vote.void_reason = ""
    vote.save(update_fields=["void_reason"])
    assert _assert_equal_to_rebuild()["pairs"] == _brute_force()
    battle = votes["votes"][2].battle
    battle.status = Battle.Status.VOID
    battle.save(update_fields=["status"])
    kept = _assert_equal_to_rebuild()
    assert kept["pairs"] == _brute_force()
    assert sum(n for (k, *_), n in kept["pairs"].items() if k == 0) == 7
    battle.status = Battle.Status.VOTED
    battle.save()
    assert sum(n for (k, *_), n in _assert_equal_to_rebuild()["pairs"].items() if k == 0) == 8


def test_vote_quality_exclusions_and_reinstatements_move_the_counts(votes, alice, bob):
    from arena.quality.flags import review_set, standing_set

    def overall() -> int:
        kept = _assert_equal_to_rebuild()
        assert kept["pairs"] == _brute_force()
        return sum(n for (k, *_), n in kept["pairs"].items() if k == 0)

    review = VoteReview.objects.create(vote=votes["votes"][0], status=VoteReview.Status.OK)
    assert overall() == 8  # an ok review changes nothing
    review_set(review_id=review.pk, status=VoteReview.Status.EXCLUDED, by=bob)
    assert overall() == 7
    review_set(review_id=review.pk, status=VoteReview.Status.REINSTATED, by=bob)
    assert overall() == 8
    VoteReview.objects.create(vote=votes["votes"][3], status=VoteReview.Status.EXCLUDED)
    assert overall() == 7
    VoteReview.objects.filter(vote=votes["votes"][3]).get().delete()
    assert overall() == 8
    standing_set(voter_id=alice.pk, status="excluded", by=bob)  # every vote of the voter
    assert overall() == 0
    standing_set(voter_id=alice.pk, status="trusted", by=bob)  # a bulk update of reviews
    assert overall() == 8


def test_deletes_and_category_changes_keep_the_counts_equal_to_a_rebuild(votes):
    battle = votes["votes"][2].battle  # in coding and math
    battle.delete()
    assert _assert_equal_to_rebuild()["pairs"] == _brute_force()
    votes["votes"][4].delete()  # the vote alone; its battle stays in its category
    assert _assert_equal_to_rebuild()["pairs"] == _brute_force()
    link = BattleCategory.objects.filter(category=votes["math"]).first()
    link.delete()
    assert _assert_equal_to_rebuild()["pairs"] == _brute_force()
    other = BattleCategory.objects.filter(category=votes["coding"]).first()
    other.category = votes["math"]  # moved to another category
    other.save()
    assert _assert_equal_to_rebuild()["pairs"] == _brute_force()
    BattleCategory.objects.create(battle=votes["votes"][0].battle, category=votes["math"])
    assert _assert_equal_to_rebuild()["pairs"] == _brute_force()
    votes["coding"].delete()
    kept = _assert_equal_to_rebuild()
    assert kept["pairs"] == _brute_force()
    assert not any(k == votes["coding"].pk or k is None for (k, *_) in kept["pairs"])
    # Contestants with battles cannot be deleted (PROTECT); one without battles changes nothing.
    make_contestant(name="Unused").delete()
    assert _assert_equal_to_rebuild()["pairs"] == _brute_force()


def test_an_import_adds_its_counts_in_bulk(votes):
    result = battles_import(path=DATA / "fastchat_clean_battle.json", fmt="fastchat")
    assert result.battles > 0
    kept = _assert_equal_to_rebuild()
    assert kept["pairs"] == _brute_force()
    assert (
        sum(n for (k, *_), n in kept["pairs"].items() if k == 0)
        == 8 + Vote.objects.filter(battle__mode=Battle.Mode.IMPORTED, void_reason="").count()
    )


def test_the_rebuild_command_restores_lost_counts(votes, capsys):
    kept = _stored()
    PairCount.objects.all().delete()
    DayCount.objects.update(n=0)
    call_command("leaderboard", "rebuild-counts")
    assert "vote counts rebuilt" in capsys.readouterr().out
    assert _stored() == kept


def test_a_refresh_from_counts_gives_the_numbers_of_a_refresh_from_votes(votes, settings):
    settings.ARENA_MIN_VOTES = 1
    settings.ARENA_LEADERBOARD_ROUNDS = 50
    from_counts = leaderboard_refresh(seed=3)
    last = max(v.pk for v in votes["votes"])
    from_votes = leaderboard_refresh(seed=3, cutoff_id=last)  # a cutoff reads the votes
    assert len(from_counts) == len(from_votes) == 3  # overall, coding, math; no answer texts
    for c, v in zip(from_counts, from_votes, strict=True):
        assert c.category_id == v.category_id
        assert c.results == v.results
        assert c.pictures == v.pictures
        assert c.cutoff_vote_id == v.cutoff_vote_id == last
    # And the ratings are those of the engine's own per-category fit on the raw battles.
    data = human_battles()
    engine = ratings.leaderboards_by_category(
        data.n_models,
        data.a,
        data.b,
        data.outcome,
        data.membership,
        category_names=[c.slug for c in data.categories],
        rng=3,
        method="bt",
        ci="bootstrap",
        n_resamples=50,
        confidence_level=0.95,
        min_votes=1,
        both_bad="tie",
    )
    boards = {None: engine.overall, **{c.pk: engine.categories[c.slug] for c in data.categories}}
    for snapshot in from_counts:
        expected = boards[snapshot.category_id].to_dict()["rows"]
        got = snapshot.results["rows"]
        assert [r["rating"] for r in got] == [round(r["rating"], 2) for r in expected]
        assert [r["lower"] for r in got] == [round(r["lower"], 2) for r in expected]
    sizes = {None: data.battle_ids.size}
    sizes.update({c.pk: int(data.membership[:, k].sum()) for k, c in enumerate(data.categories)})
    assert {s.category_id: s.results["n_battles"] for s in from_counts} == sizes


@pytest.mark.django_db(transaction=True)
def test_concurrent_votes_lose_no_increment(alice):
    """Two transactions count the same pair at once; on PostgreSQL the second waits for the
    first's row lock and adds to what it committed (SQLite serializes writers)."""
    if connection.vendor != "postgresql":
        pytest.skip("concurrent writers need PostgreSQL")
    a, b = make_contestant(name="Alpha"), make_contestant(name="Beta")
    battles = [make_battle(a, b, status=Battle.Status.VOTED) for _ in range(2)]
    Vote.objects.bulk_create([Vote(battle=x, outcome="a") for x in battles])  # no signals
    barrier = threading.Barrier(2)
    errors = []

    def count(k):
        # The first holds the row lock until it commits; the second upserts meanwhile.
        try:
            with transaction.atomic():
                if k == 0:
                    counts_add(battle_ids=[battles[0].pk])
                    barrier.wait(timeout=10)
                    time.sleep(0.5)
                else:
                    barrier.wait(timeout=10)
                    counts_add(battle_ids=[battles[1].pk])
        except Exception as exc:  # reported in the test's thread
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=count, args=(k,)) for k in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    row = PairCount.objects.get(category_key=0, contestant_a_id=a.pk, contestant_b_id=b.pk)
    assert row.n == len(battles)
    assert _assert_equal_to_rebuild()["pairs"] == _brute_force()
