"""Helpers for the socket attack tests: a signed-in socket on the real ASGI app, contestants
on the real local upstream, and a tally of attempts and breaches per attack class."""

import json

from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.test import Client

from arena.asgi import application
from tests.factories import make_contestant, make_user

NAMES = ("Kestrel Ultra", "Badger Base")
SITE = (b"host", b"localhost")
ORIGIN = (b"origin", b"http://localhost")


def session_cookie(username: str) -> tuple[str, Client]:
    """A signed-in session for ``username`` (created if needed): its id and the client."""
    from django.contrib.auth import get_user_model

    user = get_user_model().objects.filter(username=username).first() or make_user(username)
    client = Client()
    client.force_login(user)
    return client.cookies["sessionid"].value, client


@database_sync_to_async
def contestants(upstream, spec_a: str, spec_b: str, kind: str = "openai"):
    made = []
    for name, spec in zip(NAMES, (spec_a, spec_b), strict=True):
        model_id = name.lower().replace(" ", "-") + "-0612"
        upstream.set_behaviour(model_id, spec)
        made.append(
            make_contestant(
                name=name,
                organisation=f"{name} Labs",
                kind=kind,
                base_url=upstream.url,
                model_id=model_id,
            )
        )
    return made


def communicator(path: str = "/ws/battle/", *, cookie: str | None = None, headers=None):
    base = [ORIGIN, SITE] if headers is None else list(headers)
    if cookie is not None:
        base.append((b"cookie", f"sessionid={cookie}".encode()))
    return WebsocketCommunicator(application, path, headers=base)


async def signed_in_socket(username: str = "alice"):
    """(connected communicator, the Django test client holding the same session)."""
    cookie, client = await database_sync_to_async(session_cookie)(username)
    ws = communicator(cookie=cookie)
    connected, code = await ws.connect()
    assert connected, code
    return ws, client


async def until(ws, kind: str, timeout: float = 10) -> list[dict]:
    """Every message up to and including the first of type ``kind``."""
    seen = []
    while True:
        message = json.loads(await ws.receive_from(timeout=timeout))
        seen.append(message)
        if message["type"] == kind:
            return seen


class Tally:
    """Attempts and breaches per attack class, printed by the module's last test."""

    def __init__(self):
        self.rows: dict[str, list[int]] = {}

    def add(self, attack: str, *, attempts: int = 1, failures: int = 0) -> None:
        row = self.rows.setdefault(attack, [0, 0])
        row[0] += attempts
        row[1] += failures

    def report(self) -> str:
        lines = [f"{'attack class':40} attempts failures"]
        lines += [f"{name:40} {a:8} {f:8}" for name, (a, f) in self.rows.items()]
        total = [sum(r[0] for r in self.rows.values()), sum(r[1] for r in self.rows.values())]
        lines.append(f"{'total':40} {total[0]:8} {total[1]:8}")
        return "\n".join(lines)
