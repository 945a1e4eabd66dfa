"""Who may open and use a socket: same-origin only, signed in only, and only while signed in.

Attempts:
- origins refused on /ws/battle/ and /ws/ping/ (Host ``localhost`` or ``127.0.0.1:8000``):
  another port of the same host (``http://127.0.0.1:9999``), another scheme
  (``https://localhost`` on a plain connection), the default port spelled differently
  (``http://localhost:8000`` for Host ``localhost``), a foreign host, a suffix host
  (``http://localhost.evil.example``), ``null``, no Origin, two Origin headers, an origin with a
  path, a Host outside ALLOWED_HOSTS with its own matching Origin, and no Host.
- origins accepted: the site's own (``http://localhost``, ``http://127.0.0.1:8000``, ``https``
  for a ``wss`` connection), an ARENA_CSRF_TRUSTED_ORIGINS entry behind a proxy.
- /ws/ping/ without a session.
- a socket opened before logout, then: vote, prompt, regenerate, new_round; a session handed
  to another user; a password change: each closes the socket with 4401 and stores nothing.
"""

import json

import pytest
from channels.db import database_sync_to_async
from django.contrib.auth import get_user_model
from django.contrib.sessions.backends.db import SessionStore

from arena.models import Battle, Vote
from tests.security.socket_support import (
    Tally,
    communicator,
    contestants,
    session_cookie,
    signed_in_socket,
    until,
)
from tests.upstream import upstream_fixture  # noqa: F401

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("_db_thread_closed")]
TALLY = Tally()

REFUSED = [
    # (Origin header(s), Host header, scope scheme)
    ([b"http://127.0.0.1:9999"], b"127.0.0.1:8000", "ws"),
    ([b"http://127.0.0.1:9999"], b"127.0.0.1", "ws"),
    ([b"https://localhost"], b"localhost", "ws"),
    ([b"http://localhost"], b"localhost", "wss"),
    ([b"http://localhost:8000"], b"localhost", "ws"),
    ([b"http://evil.example"], b"localhost", "ws"),
    ([b"http://localhost.evil.example"], b"localhost", "ws"),
    ([b"null"], b"localhost", "ws"),
    ([], b"localhost", "ws"),
    ([b"http://localhost", b"http://localhost"], b"localhost", "ws"),
    ([b"http://localhost/battle/"], b"localhost", "ws"),
    ([b"http://evil.example"], b"evil.example", "ws"),
    ([b"http://localhost"], None, "ws"),
]
ACCEPTED = [
    ([b"http://localhost"], b"localhost", "ws"),
    ([b"http://127.0.0.1:8000"], b"127.0.0.1:8000", "ws"),
    ([b"https://localhost"], b"localhost", "wss"),
    ([b"http://[::1]:8000"], b"[::1]:8000", "ws"),
]


def _headers(origins, host, cookie):
    headers = [(b"origin", origin) for origin in origins]
    if host is not None:
        headers.append((b"host", host))
    headers.append((b"cookie", f"sessionid={cookie}".encode()))
    return headers


async def _connects(path, origins, host, scheme, cookie) -> bool:
    ws = communicator(path, headers=_headers(origins, host, cookie))
    ws.scope["scheme"] = scheme
    connected, _ = await ws.connect()
    await ws.disconnect()
    return connected


@pytest.mark.parametrize("path", ["/ws/battle/", "/ws/ping/"])
async def test_only_the_sites_own_origin_may_open_a_socket(path):
    cookie, _ = await database_sync_to_async(session_cookie)("alice")
    breaches = 0
    for origins, host, scheme in REFUSED:
        breaches += await _connects(path, origins, host, scheme, cookie)
    missed = 0
    for origins, host, scheme in ACCEPTED:
        missed += not await _connects(path, origins, host, scheme, cookie)
    TALLY.add(f"foreign origin on {path}", attempts=len(REFUSED), failures=breaches)
    assert breaches == 0
    assert missed == 0


async def test_a_trusted_origin_behind_a_proxy_is_accepted(settings):
    settings.ALLOWED_HOSTS = ["arena.example.com"]
    settings.CSRF_TRUSTED_ORIGINS = ["https://arena.example.com"]
    cookie, _ = await database_sync_to_async(session_cookie)("alice")
    # TLS ends at the proxy: the socket reaches Daphne as plain ws.
    ok = [b"https://arena.example.com"]
    assert await _connects("/ws/battle/", ok, b"arena.example.com", "ws", cookie)
    bad = [b"https://arena.example.com:8443"]
    breach = await _connects("/ws/battle/", bad, b"arena.example.com", "ws", cookie)
    TALLY.add("untrusted port beside a trusted origin", failures=int(breach))
    assert not breach


async def test_ping_needs_a_signed_in_session():
    ws = communicator("/ws/ping/")
    connected, code = await ws.connect()
    await ws.disconnect()
    TALLY.add("ping without a session", failures=int(connected))
    assert not connected and code == 4401


async def _closed_with(ws) -> int | None:
    while True:
        output = await ws.receive_output(timeout=5)
        if output["type"] == "websocket.close":
            return output.get("code")


@database_sync_to_async
def _sign_out(client):
    client.post("/accounts/logout/")


@database_sync_to_async
def _hand_session_to(client, username):
    other = get_user_model().objects.create(username=username)
    store = SessionStore(client.cookies["sessionid"].value)
    store["_auth_user_id"] = str(other.pk)
    store.save()


@database_sync_to_async
def _change_password(username):
    user = get_user_model().objects.get(username=username)
    user.set_password("a-new-password-123")
    user.save()


AFTER_SIGN_OUT = [
    ("logout then vote", _sign_out, {"type": "vote", "outcome": "a"}),
    ("logout then prompt", _sign_out, {"type": "prompt", "text": "again"}),
    ("logout then regenerate", _sign_out, {"type": "regenerate"}),
    ("logout then new_round", _sign_out, {"type": "new_round"}),
    ("session handed to another user", lambda c: _hand_session_to(c, "mallory"), None),
    ("password changed", lambda c: _change_password("alice"), None),
]


@pytest.mark.parametrize(("attack", "change", "message"), AFTER_SIGN_OUT)
async def test_a_socket_stops_working_once_its_session_is_gone(upstream, attack, change, message):
    await contestants(upstream, "normal", "normal")
    ws, client = await signed_in_socket("alice")
    try:
        await ws.send_json_to({"type": "prompt", "text": "hello"})
        await until(ws, "ready")
        await change(client)
        await ws.send_json_to(message or {"type": "vote", "outcome": "a"})
        code = await _closed_with(ws)
    finally:
        await ws.disconnect()
    votes = await database_sync_to_async(Vote.objects.count)()
    battles = await database_sync_to_async(list)(Battle.objects.values_list("status", flat=True))
    breach = code != 4401 or votes or len(battles) != 1
    TALLY.add(attack, failures=int(bool(breach)))
    assert code == 4401
    assert votes == 0 and len(battles) == 1


async def test_a_signed_in_socket_keeps_working(upstream):
    await contestants(upstream, "normal", "normal")
    ws, _ = await signed_in_socket("alice")
    try:
        await ws.send_json_to({"type": "prompt", "text": "hello"})
        await until(ws, "ready")
        await ws.send_json_to({"type": "vote", "outcome": "a"})
        revealed = (await until(ws, "revealed"))[-1]
    finally:
        await ws.disconnect()
    assert revealed["counted"] is True
    assert json.dumps(revealed)


def test_zz_summary(capsys):
    with capsys.disabled():
        print("\n" + TALLY.report())
    assert TALLY.rows
