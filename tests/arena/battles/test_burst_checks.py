"""The checks a burst of prompts makes in one database call (``_new_rounds_allowed``) give each
socket the answer its own check would: sessions (``sessions_current`` against
``session_is_current``) and limits; and a burst over real sockets where one session was signed
out: that socket closes with 4401 and stores nothing, the others stream."""

import asyncio

import pytest
from channels.db import database_sync_to_async
from django.contrib.auth import get_user_model
from django.contrib.sessions.backends.db import SessionStore
from django.test import Client

from arena.battles import limits
from arena.battles.consumers import SignedOut, _new_rounds_allowed
from arena.core.consumers import session_is_current, sessions_current
from arena.models import Battle
from tests.factories import make_contestant, make_user
from tests.security.socket_support import contestants, signed_in_socket, until
from tests.upstream import upstream_fixture  # noqa: F401


def _session(user) -> str:
    client = Client()
    client.force_login(user)
    return client.cookies["sessionid"].value


@pytest.mark.django_db
def test_sessions_checked_together_match_each_checked_alone(settings):
    settings.SESSION_ENGINE = "django.contrib.sessions.backends.db"
    alice, bob, carol, dave = (make_user(name) for name in ("alice", "bob", "carol", "dave"))
    alive = _session(alice)
    second = _session(alice)  # two sockets of one user
    signed_out = _session(bob)
    SessionStore(signed_out).delete()
    handed = _session(carol)
    store = SessionStore(handed)
    store["_auth_user_id"] = str(dave.pk)  # the session now belongs to someone else
    store.save()
    changed = _session(dave)
    dave.set_password("a-new-password-123")
    dave.save()
    inactive_user = make_user("erin")
    inactive = _session(inactive_user)
    inactive_user.is_active = False
    inactive_user.save()
    anonymous = type("Anonymous", (), {"is_authenticated": False, "pk": None})()
    sockets = [
        (alive, alice),
        (second, alice),
        (signed_out, bob),
        (handed, carol),
        (changed, dave),
        (inactive, inactive_user),
        (None, alice),
        ("no-such-session", alice),
        (alive, bob),  # someone else's session key
        (alive, anonymous),
    ]
    each = [session_is_current(session_key=key, user=user) for key, user in sockets]
    together = sessions_current(sockets)
    assert together == each
    assert together == [True, True] + [False] * 8


@pytest.mark.django_db
def test_limits_checked_together_refuse_whom_each_check_refuses(settings):
    settings.ARENA_MAX_CONCURRENT_BATTLES = 1
    settings.ARENA_PROMPTS_PER_MINUTE = 2
    a, b = make_contestant(name="Alpha"), make_contestant(name="Beta")
    busy, tired, free, gone = (make_user(name) for name in ("busy", "tired", "free", "gone"))
    Battle.objects.create(
        contestant_a=a, contestant_b=b, user=busy, status="streaming", mode="live"
    )
    for _ in range(2):
        Battle.objects.create(
            contestant_a=a, contestant_b=b, user=tired, status="void", mode="live"
        )
    keys = {user: _session(user) for user in (busy, tired, free, gone)}
    SessionStore(keys[gone]).delete()
    results = _new_rounds_allowed([(keys[user], user) for user in (busy, tired, free, gone)])
    assert isinstance(results[0], limits.LimitExceeded)
    assert "ARENA_MAX_CONCURRENT_BATTLES" in str(results[0])
    assert isinstance(results[1], limits.LimitExceeded)
    assert "ARENA_PROMPTS_PER_MINUTE" in str(results[1])
    assert results[2] is None
    assert isinstance(results[3], SignedOut)
    for user, result in zip((busy, tired), results, strict=False):
        with pytest.raises(limits.LimitExceeded) as alone:
            limits.round_check(user_id=user.pk)
        assert str(alone.value) == str(result)


async def _closed_code(ws) -> int | None:
    while True:
        output = await ws.receive_output(timeout=10)
        if output["type"] == "websocket.close":
            return output.get("code")


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("_db_thread_closed")
async def test_a_burst_with_a_signed_out_socket_refuses_only_that_one(upstream):
    await contestants(upstream, "slow:ttft=0.3,delay=0.01", "slow:ttft=0.3,delay=0.01")
    opened = [await signed_in_socket(f"user{i}") for i in range(5)]
    sockets = [ws for ws, _ in opened]
    await database_sync_to_async(opened[2][1].post)("/accounts/logout/")
    try:
        await asyncio.gather(
            *[
                ws.send_json_to({"type": "prompt", "text": f"hello {i}"})
                for i, ws in enumerate(sockets)
            ]
        )
        code = await _closed_code(sockets[2])
        readies = [await until(ws, "ready") for i, ws in enumerate(sockets) if i != 2]
    finally:
        for ws in sockets:
            await ws.disconnect()
    assert code == 4401
    assert all(messages[-1]["can_vote"] for messages in readies)
    users = await database_sync_to_async(list)(
        Battle.objects.values_list("user__username", flat=True)
    )
    assert sorted(users) == ["user0", "user1", "user3", "user4"]
    prompts = [r.body["messages"][-1]["content"] for r in upstream.requests]
    assert "hello 2" not in prompts and len(prompts) == 8
    assert await database_sync_to_async(get_user_model().objects.count)() == 5
