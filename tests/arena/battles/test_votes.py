import threading

import pytest
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

import ratings
from arena.battles.services import AlreadyVoted, VoteRejected, vote_record
from arena.models import Battle, Contestant, Vote
from tests.factories import make_contestant

pytestmark = pytest.mark.django_db


@pytest.fixture
def battle(alice):
    a = make_contestant(name="Model One", kind=Contestant.Kind.RECORDED)
    b = make_contestant(name="Model Two", kind=Contestant.Kind.RECORDED)
    return Battle.objects.create(
        contestant_a=a,
        contestant_b=b,
        user=alice,
        status=Battle.Status.READY,
        ready_at=timezone.now(),
        pair_probability=0.5,
    )


def test_it_records_a_vote_and_marks_the_battle_voted(battle, alice):
    vote = vote_record(battle_id=battle.pk, user=alice, outcome="a")
    battle.refresh_from_db()
    assert vote.outcome == "a" and vote.counted
    assert battle.status == Battle.Status.VOTED
    assert vote.seconds_to_vote is not None and vote.seconds_to_vote >= 0
    assert list(Vote.objects.counted()) == [vote]


def test_it_rejects_a_second_vote(battle, alice):
    vote_record(battle_id=battle.pk, user=alice, outcome="tie")
    with pytest.raises(AlreadyVoted, match="already voted"):
        vote_record(battle_id=battle.pk, user=alice, outcome="b")
    assert Vote.objects.get().outcome == "tie"


def test_it_rejects_a_vote_by_someone_else(battle, bob):
    with pytest.raises(VoteRejected, match="Only the person who started"):
        vote_record(battle_id=battle.pk, user=bob, outcome="a")
    assert not Vote.objects.exists()


@pytest.mark.parametrize("status", [Battle.Status.STREAMING, Battle.Status.ERRORED])
def test_it_rejects_a_vote_before_both_sides_finish_cleanly(battle, alice, status):
    battle.status = status
    battle.save()
    with pytest.raises(VoteRejected, match="finish without error"):
        vote_record(battle_id=battle.pk, user=alice, outcome="a")
    assert not Vote.objects.exists()


def test_it_rejects_an_unknown_outcome(battle, alice):
    with pytest.raises(VoteRejected, match="Unknown outcome"):
        vote_record(battle_id=battle.pk, user=alice, outcome="left")


def test_the_database_refuses_a_second_vote_row(battle, alice):
    Vote.objects.create(battle=battle, voter=alice, outcome="a")
    with pytest.raises(IntegrityError), transaction.atomic():
        Vote.objects.create(battle=battle, voter=alice, outcome="b")


def test_the_database_refuses_a_battle_against_itself(battle):
    with pytest.raises(IntegrityError), transaction.atomic():
        Battle.objects.create(contestant_a=battle.contestant_a, contestant_b=battle.contestant_a)


@pytest.mark.django_db(transaction=True)
def test_concurrent_votes_count_exactly_once(battle, alice):
    outcomes, errors = [], []
    barrier = threading.Barrier(4)

    def attempt(outcome):
        try:
            barrier.wait()
            outcomes.append(vote_record(battle_id=battle.pk, user=alice, outcome=outcome).outcome)
        except AlreadyVoted as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=attempt, args=(o,)) for o in ["a", "b", "tie", "both_bad"]]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert len(outcomes) == 1 and len(errors) == 3
    assert Vote.objects.count() == 1
    assert Vote.objects.get().outcome == outcomes[0]


def test_the_vote_outcomes_are_the_ratings_engines_outcomes():
    assert Vote.Outcome.values == list(ratings.OUTCOMES)
    codes = [o.code for o in Vote.Outcome]
    assert codes == [ratings.A_WINS, ratings.B_WINS, ratings.TIE, ratings.BOTH_BAD]
