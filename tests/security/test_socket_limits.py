"""Per-user limits over the battle socket: a clear error naming the limit, nothing stored.

Attempts:
- concurrent battles: with ARENA_MAX_CONCURRENT_BATTLES=2, a third socket's prompt while two
  stream; a battle streaming in "another process" (a row in the database) counting against it;
  five sockets of one user sending their prompts in the same instant.
- prompts per minute: with ARENA_PROMPTS_PER_MINUTE=3, a 4th round (new battle, follow-up and
  regenerate count alike), then a 5th from another socket.
- votes per day: with ARENA_VOTES_PER_DAY=1, a second vote over the socket (the eval-set page
  uses the same vote_record, see test_vote_races.py).
"""

import asyncio
import json

import pytest
from channels.db import database_sync_to_async
from django.contrib.auth import get_user_model

from arena.models import Battle, Vote
from tests.security.socket_support import Tally, contestants, signed_in_socket, until
from tests.upstream import upstream_fixture  # noqa: F401

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("_db_thread_closed")]
TALLY = Tally()
SLOW = "slow:ttft=0.5,delay=0.05"


async def _count(model=Battle, **filters) -> int:
    return await database_sync_to_async(model.objects.filter(**filters).count)()


async def test_a_user_cannot_stream_more_battles_at_once_than_the_limit(upstream, settings):
    settings.ARENA_MAX_CONCURRENT_BATTLES = 2
    await contestants(upstream, SLOW, SLOW)
    sockets = [(await signed_in_socket("alice"))[0] for _ in range(3)]
    try:
        for ws in sockets[:2]:
            await ws.send_json_to({"type": "prompt", "text": "hello"})
            await until(ws, "start")
        for _ in range(100):  # both sides' requests of both battles have reached the upstream
            if len(upstream.requests) == 4:
                break
            await asyncio.sleep(0.02)
        requests = len(upstream.requests)
        await sockets[2].send_json_to({"type": "prompt", "text": "one more"})
        error = (await until(sockets[2], "error"))[-1]
        breach = "ARENA_MAX_CONCURRENT_BATTLES" not in error["message"]
        breach |= await _count() != 2 or len(upstream.requests) != requests
        for ws in sockets[:2]:
            await until(ws, "ready")
        await sockets[2].send_json_to({"type": "prompt", "text": "now?"})
        assert (await until(sockets[2], "ready"))[-1]["can_vote"] is True
    finally:
        for ws in sockets:
            await ws.disconnect()
    TALLY.add("third battle while two stream", failures=int(breach))
    assert not breach, error


async def test_a_battle_streaming_elsewhere_counts_against_the_limit(upstream, settings):
    settings.ARENA_MAX_CONCURRENT_BATTLES = 1
    made = await contestants(upstream, "normal", "normal")
    ws, _ = await signed_in_socket("alice")
    alice = await database_sync_to_async(get_user_model().objects.get)(username="alice")
    await database_sync_to_async(Battle.objects.create)(
        contestant_a=made[0], contestant_b=made[1], user=alice, status=Battle.Status.STREAMING
    )
    try:
        await ws.send_json_to({"type": "prompt", "text": "hello"})
        error = (await until(ws, "error"))[-1]
    finally:
        await ws.disconnect()
    breach = "ARENA_MAX_CONCURRENT_BATTLES" not in error["message"] or await _count() != 1
    TALLY.add("battle streaming in another process", failures=int(breach))
    assert not breach and upstream.requests == []


async def test_prompts_sent_at_once_from_many_sockets_stay_within_the_limit(upstream, settings):
    settings.ARENA_MAX_CONCURRENT_BATTLES = 2
    await contestants(upstream, SLOW, SLOW)
    sockets = [(await signed_in_socket("alice"))[0] for _ in range(5)]
    try:
        await asyncio.gather(
            *[ws.send_json_to({"type": "prompt", "text": "hello"}) for ws in sockets]
        )
        firsts = await asyncio.gather(*[_first(ws, ("start", "error")) for ws in sockets])
        started = sum(m["type"] == "start" for m in firsts)
        streaming_max = await _count()
    finally:
        for ws in sockets:
            await ws.disconnect()
    refused = [m for m in firsts if m["type"] == "error"]
    breach = started > 2 or streaming_max > 2
    breach |= not all("ARENA_MAX_CONCURRENT_BATTLES" in m["message"] for m in refused)
    TALLY.add("five prompts at once, limit 2", attempts=5, failures=max(0, started - 2))
    assert not breach, firsts


async def _first(ws, kinds):
    while True:
        message = json.loads(await ws.receive_from(timeout=10))
        if message["type"] in kinds:
            return message


async def test_prompts_per_minute_are_limited_and_the_refused_one_stores_nothing(
    upstream, settings
):
    settings.ARENA_PROMPTS_PER_MINUTE = 3
    await contestants(upstream, "normal", "normal")
    ws, _ = await signed_in_socket("alice")
    other, _ = await signed_in_socket("alice")
    try:
        await ws.send_json_to({"type": "prompt", "text": "one"})
        await until(ws, "ready")
        await ws.send_json_to({"type": "prompt", "text": "two"})
        await until(ws, "ready")
        await ws.send_json_to({"type": "regenerate"})
        await until(ws, "ready")
        requests = len(upstream.requests)
        await ws.send_json_to({"type": "prompt", "text": "four"})
        error = (await until(ws, "error"))[-1]
        await other.send_json_to({"type": "prompt", "text": "five"})
        error_other = (await until(other, "error"))[-1]
        battle = await database_sync_to_async(Battle.objects.get)()
    finally:
        await ws.disconnect()
        await other.disconnect()
    breaches = sum("ARENA_PROMPTS_PER_MINUTE" not in e["message"] for e in (error, error_other))
    breaches += len(upstream.requests) != requests
    TALLY.add("prompts past the per-minute limit", attempts=2, failures=breaches)
    assert breaches == 0
    assert battle.status == Battle.Status.READY  # the refused follow-up changed nothing
    assert await _count() == 1


async def test_votes_per_day_are_limited_and_the_refused_one_stores_nothing(upstream, settings):
    settings.ARENA_VOTES_PER_DAY = 1
    await contestants(upstream, "normal", "normal")
    ws, _ = await signed_in_socket("alice")
    try:
        await ws.send_json_to({"type": "prompt", "text": "one"})
        await until(ws, "ready")
        await ws.send_json_to({"type": "vote", "outcome": "a"})
        await until(ws, "revealed")
        await ws.send_json_to({"type": "new_round"})
        await until(ws, "new_round")
        await ws.send_json_to({"type": "prompt", "text": "two"})
        second = (await until(ws, "ready"))[-1]["battle"]
        await ws.send_json_to({"type": "vote", "outcome": "b"})
        error = (await until(ws, "error"))[-1]
    finally:
        await ws.disconnect()
    breach = "ARENA_VOTES_PER_DAY" not in error["message"] or await _count(Vote) != 1
    breach |= await _count(pk=second, status=Battle.Status.READY) != 1
    TALLY.add("vote past the daily limit", failures=int(breach))
    assert not breach, error


def test_zz_summary(capsys):
    with capsys.disabled():
        print("\n" + TALLY.report())
    assert TALLY.rows
