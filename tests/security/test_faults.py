"""Faults the arena must survive: a dead Redis, a crash mid-battle, an upstream that sends
characters PostgreSQL cannot store.

Attempts:
- REDIS_URL / the channel layer pointing at a closed port (redis://127.0.0.1:1/0): a whole
  battle over the socket (prompt, stream, vote, reveal) still plays.
- battles left ``streaming`` by a crash: new ones and reopened ones (follow-up/regenerate)
  past the sweep age are voided by ``battle_sweep_stale``, ``manage.py battles sweep`` and the
  ``arena.battles_sweep`` task; live ones (new, or reopened recently on an old battle) are not;
  a swept battle cannot be voted on.
- NUL bytes in an upstream's answer (``a\\x00b``, a NUL alone, NULs around a word): the round
  completes on SQLite and PostgreSQL with U+FFFD in their place, on the page and stored.
"""

from datetime import timedelta
from io import StringIO

import pytest
from channels.db import database_sync_to_async
from django.core.management import call_command
from django.utils import timezone

from arena.battles.services import VoteRejected, battle_sweep_age, battle_sweep_stale, vote_record
from arena.battles.tasks import battles_sweep
from arena.models import Battle, Contestant, Turn, Vote
from tests.factories import make_contestant, make_user
from tests.security.socket_support import Tally, contestants, signed_in_socket, until
from tests.upstream import fixed_spec, upstream_fixture  # noqa: F401

TALLY = Tally()
DEAD_REDIS = "redis://127.0.0.1:1/0"


@pytest.mark.django_db(transaction=True)
async def test_a_battle_plays_with_redis_down(upstream, settings, _db_thread_closed):
    settings.REDIS_URL = DEAD_REDIS
    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": [DEAD_REDIS]},
        }
    }
    await contestants(upstream, "normal", "normal")
    ws, _ = await signed_in_socket()
    try:
        await ws.send_json_to({"type": "prompt", "text": "hello"})
        ready = (await until(ws, "ready"))[-1]
        await ws.send_json_to({"type": "vote", "outcome": "tie"})
        revealed = (await until(ws, "revealed"))[-1]
    finally:
        await ws.disconnect()
    ok = ready["can_vote"] and revealed["counted"]
    TALLY.add("battle with Redis down", failures=int(not ok))
    assert ok


def _streaming(user, pair, *, created_ago: float, reopened_ago: float | None = None) -> Battle:
    battle = Battle.objects.create(
        contestant_a=pair[0], contestant_b=pair[1], user=user, status=Battle.Status.STREAMING
    )
    now = timezone.now()
    Battle.objects.filter(pk=battle.pk).update(
        created_at=now - timedelta(seconds=created_ago),
        ready_at=None if reopened_ago is None else now - timedelta(seconds=reopened_ago),
    )
    return battle


@pytest.fixture
def pair(db):
    return (
        make_contestant(name="Model One", kind=Contestant.Kind.OPENAI),
        make_contestant(name="Model Two", kind=Contestant.Kind.OPENAI),
    )


@pytest.mark.django_db
@pytest.mark.parametrize("how", ["service", "command", "task"])
def test_battles_left_streaming_are_swept_and_live_ones_are_not(pair, how):
    alice = make_user("alice")
    age = battle_sweep_age().total_seconds()
    stale = [
        _streaming(alice, pair, created_ago=age + 60),
        _streaming(alice, pair, created_ago=age * 3, reopened_ago=age + 60),
    ]
    live = [
        _streaming(alice, pair, created_ago=5),
        _streaming(alice, pair, created_ago=age * 3, reopened_ago=5),  # an old battle's follow-up
    ]
    if how == "service":
        swept = battle_sweep_stale(older_than=battle_sweep_age())
    elif how == "command":
        out = StringIO()
        call_command("battles", "sweep", stdout=out)
        assert "Voided 2 battle(s)" in out.getvalue()
        swept = 2
    else:
        swept = battles_sweep.delay().get(timeout=10)
    statuses = {b.pk: s for b, s in ((b, _status(b)) for b in stale + live)}
    missed = sum(statuses[b.pk] != Battle.Status.VOID for b in stale)
    wrong = sum(statuses[b.pk] != Battle.Status.STREAMING for b in live)
    TALLY.add(f"crash leftovers ({how})", attempts=4, failures=missed + wrong)
    assert swept == 2 and missed == 0 and wrong == 0
    Battle.objects.filter(pk=stale[0].pk).update(status=Battle.Status.VOID)
    with pytest.raises(VoteRejected):
        vote_record(battle_id=stale[0].pk, user=alice, outcome="a")
    assert not Vote.objects.exists()


def _status(battle: Battle) -> str:
    battle.refresh_from_db()
    return battle.status


@pytest.mark.django_db
def test_the_sweep_command_takes_an_age():
    out = StringIO()
    call_command("battles", "sweep", "--older-than", "30", stdout=out)
    assert "Voided 0 battle(s)" in out.getvalue()


ANSWERS = ["a\x00b", "\x00", "\x00word\x00 and more"]


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("answer", ANSWERS)
async def test_an_answer_with_nul_completes_the_round(upstream, answer, _db_thread_closed):
    await contestants(upstream, "normal", fixed_spec(answer))
    ws, _ = await signed_in_socket()
    try:
        await ws.send_json_to({"type": "prompt", "text": "hello"})
        messages = await until(ws, "ready")
    finally:
        await ws.disconnect()
    expected = answer.replace("\x00", "\ufffd")
    shown = {
        side: "".join(m["text"] for m in messages if m["type"] == "chunk" and m["side"] == side)
        for side in "ab"
    }
    stored = await database_sync_to_async(list)(Turn.objects.values_list("text", flat=True))
    ok = messages[-1]["can_vote"] and expected in shown.values() and expected in stored
    TALLY.add("NUL in an upstream answer", failures=int(not ok))
    assert ok, (messages[-1], stored)


def test_zz_summary(capsys):
    with capsys.disabled():
        print("\n" + TALLY.report())
    assert TALLY.rows
