"""Races between the messages that change a battle, with real concurrency (threads with their
own database connections, released together by a barrier), on SQLite and on PostgreSQL.

Attempts:
- follow-up vs vote: ``battle_follow_up`` and ``vote_record`` on the same READY battle at once,
  100 tries: never both (a vote on a battle that then streams another round).
- regenerate vs vote: the same with ``battle_regenerate``, 50 tries.
- vote vs vote: 4 votes with different outcomes on one battle at once, 50 tries: exactly one
  stored, the others refused (never counted twice).
- many voters: 20 users vote on their own battles at once: all 20 stored (none dropped).
- votes per day: one user casts 2x ARENA_VOTES_PER_DAY votes at once: exactly the limit stored.
- the socket race the QA found: a follow-up ``prompt`` over the socket while a vote on the same
  battle lands (through the eval-set vote page, which takes any battle of the user's) between
  the follow-up's read and its write: the battle is voted or streams, never both.
"""

import asyncio
import json
import threading
from contextlib import suppress

import pytest
from channels.db import database_sync_to_async
from django.contrib.auth import get_user_model
from django.db import connections
from django.utils import timezone

from arena.battles import consumers, services
from arena.battles.services import battle_follow_up, battle_regenerate, vote_record
from arena.core.errors import ArenaError
from arena.models import Battle, Contestant, PromptSet, Turn, Vote
from tests.factories import make_contestant, make_user
from tests.security.socket_support import Tally, contestants, signed_in_socket, until
from tests.upstream import upstream_fixture  # noqa: F401

pytestmark = [pytest.mark.django_db(transaction=True)]
TALLY = Tally()


def _concurrently(*calls):
    """Run the calls in threads released at once; each call's result or exception."""
    barrier = threading.Barrier(len(calls))
    results: list = [None] * len(calls)

    def run(i, call):
        try:
            barrier.wait(5)
            results[i] = call()
        except Exception as exc:
            results[i] = exc
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    return results


@pytest.fixture
def pair(db):
    a = make_contestant(name="Model One", kind=Contestant.Kind.OPENAI)
    b = make_contestant(name="Model Two", kind=Contestant.Kind.OPENAI)
    return a, b


def _ready_battle(user, pair, *, with_round=True) -> Battle:
    battle = Battle.objects.create(
        contestant_a=pair[0],
        contestant_b=pair[1],
        user=user,
        status=Battle.Status.READY,
        ready_at=timezone.now(),
    )
    if with_round:
        for side in "ab":
            Turn.objects.create(battle=battle, index=0, side=side, prompt="hi", text="hello")
    return battle


def test_a_follow_up_and_a_vote_at_once_never_both_succeed(pair, settings):
    settings.ARENA_PROMPTS_PER_MINUTE = 10_000
    alice = make_user("alice")
    tries, breaches, votes_won = 100, 0, 0
    for _ in range(tries):
        battle = _ready_battle(alice, pair)
        follow, vote = _concurrently(
            lambda b=battle: battle_follow_up(battle_id=b.pk, user=alice),
            lambda b=battle: vote_record(battle_id=b.pk, user=alice, outcome="a"),
        )
        followed, voted = not isinstance(follow, Exception), not isinstance(vote, Exception)
        for result in (follow, vote):
            assert not isinstance(result, Exception) or isinstance(result, ArenaError), result
        battle.refresh_from_db()
        stored = Vote.objects.filter(battle=battle).count()
        consistent = (
            voted and not followed and battle.status == Battle.Status.VOTED and stored == 1
        ) or (followed and not voted and battle.status == Battle.Status.STREAMING and not stored)
        breaches += not consistent
        votes_won += voted
        battle.status = Battle.Status.VOID  # out of the user's streaming count
        battle.save(update_fields=["status"])
    TALLY.add("follow-up vs vote (threads)", attempts=tries, failures=breaches)
    assert breaches == 0


def test_a_regenerate_and_a_vote_at_once_never_both_succeed(pair, settings):
    settings.ARENA_PROMPTS_PER_MINUTE = 10_000
    alice = make_user("alice")
    tries, breaches = 50, 0
    for _ in range(tries):
        battle = _ready_battle(alice, pair)
        regen, vote = _concurrently(
            lambda b=battle: battle_regenerate(battle_id=b.pk, user=alice),
            lambda b=battle: vote_record(battle_id=b.pk, user=alice, outcome="b"),
        )
        regenerated = not isinstance(regen, Exception)
        voted = not isinstance(vote, Exception)
        battle.refresh_from_db()
        superseded = Turn.objects.filter(battle=battle, superseded=True).count()
        consistent = (voted and not regenerated and not superseded) or (
            regenerated and not voted and battle.status == Battle.Status.STREAMING
        )
        breaches += not consistent
        battle.status = Battle.Status.VOID
        battle.save(update_fields=["status"])
    TALLY.add("regenerate vs vote (threads)", attempts=tries, failures=breaches)
    assert breaches == 0


def test_concurrent_votes_on_one_battle_store_exactly_one(pair):
    alice = make_user("alice")
    tries, breaches = 50, 0
    for _ in range(tries):
        battle = _ready_battle(alice, pair, with_round=False)
        results = _concurrently(
            *[
                lambda o=outcome, b=battle: vote_record(battle_id=b.pk, user=alice, outcome=o)
                for outcome in ("a", "b", "tie", "both_bad")
            ]
        )
        won = [r for r in results if isinstance(r, Vote)]
        refused = [r for r in results if isinstance(r, ArenaError)]
        stored = list(Vote.objects.filter(battle=battle))
        ok = len(won) == 1 and len(refused) == 3 and len(stored) == 1
        breaches += not (ok and stored[0].outcome == won[0].outcome)
    TALLY.add("vote vs vote on one battle", attempts=tries, failures=breaches)
    assert breaches == 0


def test_concurrent_votes_of_many_users_are_all_stored(pair):
    users = [get_user_model().objects.create(username=f"voter{i}") for i in range(20)]
    battles = [_ready_battle(user, pair, with_round=False) for user in users]
    results = _concurrently(
        *[
            lambda u=user, b=battle: vote_record(battle_id=b.pk, user=u, outcome="a")
            for user, battle in zip(users, battles, strict=True)
        ]
    )
    dropped = sum(not isinstance(r, Vote) for r in results)
    dropped += 20 - Vote.objects.count()
    TALLY.add("many voters at once (dropped votes)", attempts=20, failures=dropped)
    assert dropped == 0
    assert Battle.objects.filter(status=Battle.Status.VOTED).count() == 20


def test_votes_past_the_daily_limit_at_once_store_exactly_the_limit(pair, settings):
    settings.ARENA_VOTES_PER_DAY = 5
    alice = make_user("alice")
    battles = [_ready_battle(alice, pair, with_round=False) for _ in range(10)]
    results = _concurrently(
        *[lambda b=b: vote_record(battle_id=b.pk, user=alice, outcome="tie") for b in battles]
    )
    stored = Vote.objects.filter(voter=alice).count()
    refused = [r for r in results if isinstance(r, ArenaError)]
    TALLY.add("votes per day, all at once", attempts=10, failures=abs(stored - 5))
    assert stored == 5 and len(refused) == 5
    assert all("ARENA_VOTES_PER_DAY" in str(r) for r in refused)


async def test_a_vote_landing_inside_a_socket_follow_up_never_lets_both_happen(
    upstream, monkeypatch, _db_thread_closed
):
    """The QA's race, made deterministic: while the socket's follow-up is between reading the
    battle and reopening it, the eval-set vote page takes a vote on the same battle (or waits
    for the follow-up's lock). Before the fix the vote was stored and the round streamed."""
    await contestants(upstream, "normal", "normal")
    prompt_set = await database_sync_to_async(PromptSet.objects.create)(name="Any set")
    ws, client = await signed_in_socket("alice")
    tries, breaches = 10, 0
    vote_url = f"/evalsets/{prompt_set.pk}/vote/"
    original = services.battle_rounds
    try:
        for _ in range(tries):
            await ws.send_json_to({"type": "prompt", "text": "first"})
            battle_id = (await until(ws, "ready"))[-1]["battle"]

            voters: list[threading.Thread] = []

            def vote_meanwhile(*, battle, b=battle_id, voters=voters):
                voter = threading.Thread(
                    target=lambda: (
                        client.post(vote_url, {"battle": b, "outcome": "a"}),
                        connections.close_all(),
                    )
                )
                voters.append(voter)
                voter.start()
                voter.join(0.3)  # done, or waiting for the follow-up's lock
                return original(battle=battle)

            monkeypatch.setattr(services, "battle_rounds", vote_meanwhile)
            monkeypatch.setattr(consumers, "battle_rounds", vote_meanwhile, raising=False)
            await ws.send_json_to({"type": "prompt", "text": "second"})
            first = await _first_of(ws, ("start", "error"))
            streamed = first["type"] == "start"
            if streamed:
                await until(ws, "ready")
            monkeypatch.setattr(services, "battle_rounds", original)
            monkeypatch.setattr(consumers, "battle_rounds", original, raising=False)
            for voter in voters:  # the vote that waited for the lock has its answer
                await asyncio.to_thread(voter.join, 10)
            breaches += await database_sync_to_async(_streamed_after_its_vote)(battle_id)
            await ws.send_json_to({"type": "new_round"})
            await until(ws, "new_round")
    finally:
        await ws.disconnect()
    TALLY.add("follow-up prompt vs vote page (socket)", attempts=tries, failures=breaches)
    assert breaches == 0


def _streamed_after_its_vote(battle_id: int) -> bool:
    """Answers stored after the battle's vote: a round streamed into a voted battle (a vote
    cast after the follow-up's round was ready is fine)."""
    vote = Vote.objects.filter(battle_id=battle_id).first()
    later = Turn.objects.filter(battle_id=battle_id, index=1)
    return vote is not None and later.filter(created_at__gt=vote.created_at).exists()


async def _first_of(ws, kinds) -> dict:
    while True:
        message = json.loads(await ws.receive_from(timeout=5))
        if message["type"] in kinds:
            return message


def test_zz_summary(capsys):
    with suppress(Exception), capsys.disabled():
        print("\n" + TALLY.report())
    assert TALLY.rows, "the attack tests above ran"
