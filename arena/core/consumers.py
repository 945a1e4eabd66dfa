"""What every WebSocket shares: the same-origin check, the session check, and the wiring check
(``/ws/ping/``, a token echoed through the channel layer in use)."""

import json
import uuid
from collections.abc import Awaitable, Callable, MutableMapping
from importlib import import_module
from typing import Any
from urllib.parse import urlsplit

from channels.generic.websocket import AsyncWebsocketConsumer
from channels.security.websocket import WebsocketDenier
from django.conf import settings
from django.contrib.auth import HASH_SESSION_KEY, SESSION_KEY, get_user_model
from django.http.request import split_domain_port, validate_host
from django.utils import timezone
from django.utils.crypto import constant_time_compare

Scope = MutableMapping[str, Any]
ASGIApp = Callable[[Scope, Any, Any], Awaitable[None]]

CLOSE_SIGNED_OUT = 4401  # the socket's session ended (or never was): sign in again
_DEFAULT_PORTS = {"http": 80, "https": 443}


# --- origins -------------------------------------------------------------------------------


def _origin_triple(origin: str) -> tuple[str, str, int] | None:
    """(scheme, host, port) of an http(s) origin, the port filled in; None if malformed."""
    try:
        parts = urlsplit(origin.strip().lower())
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in _DEFAULT_PORTS or not parts.hostname:
        return None
    if parts.path or parts.query or parts.fragment or parts.username or parts.password:
        return None  # an Origin is scheme://host[:port] and nothing else
    return parts.scheme, parts.hostname, port or _DEFAULT_PORTS[parts.scheme]


def _header(scope: Scope, name: bytes) -> str | None:
    values = [value for key, value in scope.get("headers", []) if key.lower() == name]
    if len(values) != 1:
        return None  # missing, or sent twice: refuse rather than guess
    try:
        return bytes(values[0]).decode("ascii")
    except UnicodeDecodeError:
        return None


def site_origins(scope: Scope) -> set[tuple[str, str, int]]:
    """The origins a socket may come from: the site as this request reached it (its own Host,
    if allowed, with the scheme of the connection), and ARENA_CSRF_TRUSTED_ORIGINS."""
    origins = set()
    for trusted in settings.CSRF_TRUSTED_ORIGINS:
        triple = _origin_triple(trusted)
        if triple is not None:
            origins.add(triple)
    host = _header(scope, b"host")
    if host is not None:
        domain, _ = split_domain_port(host.lower())
        if domain and validate_host(domain, settings.ALLOWED_HOSTS):
            scheme = "https" if scope.get("scheme") == "wss" else "http"
            own = _origin_triple(f"{scheme}://{host}")
            if own is not None:
                origins.add(own)
    return origins


def origin_allowed(scope: Scope) -> bool:
    origin = _header(scope, b"origin")
    triple = None if origin is None else _origin_triple(origin)
    return triple is not None and triple in site_origins(scope)


class SameOriginValidator:
    """Refuse a WebSocket whose ``Origin`` is not the site's own, scheme, host and port
    alike (``site_origins``): a page on another port or scheme of the same host is another
    site. Refused sockets are closed before the application sees them."""

    def __init__(self, application: ASGIApp) -> None:
        self.application = application

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] == "websocket" and not origin_allowed(scope):
            denier = WebsocketDenier()
            await denier(scope, receive, send)
            return
        await self.application(scope, receive, send)


# --- sessions ------------------------------------------------------------------------------


def session_key_of(scope: Scope) -> str | None:
    session = scope.get("session")
    return None if session is None else session.session_key


def session_is_current(*, session_key: str | None, user: Any) -> bool:
    """Whether the session a socket was opened with still exists and still belongs to
    ``user`` (not signed out, not expired, password unchanged, account active). Reads the
    session store (not the copy loaded at connect): call it in a database thread."""
    return sessions_current([(session_key, user)])[0]


def sessions_current(sockets: list[tuple[str | None, Any]]) -> list[bool]:
    """``session_is_current`` for several sockets, ``[(session_key, user), ...]``: with the
    database session engine two queries for all of them (a burst of prompts checks at once)."""
    signed_in = [
        bool(key) and user is not None and getattr(user, "is_authenticated", False)
        for key, user in sockets
    ]
    engine = import_module(settings.SESSION_ENGINE)
    keys = {key for (key, _), ok in zip(sockets, signed_in, strict=True) if ok}
    if settings.SESSION_ENGINE == "django.contrib.sessions.backends.db":
        model = engine.SessionStore.get_model_class()
        rows = model.objects.filter(session_key__in=keys, expire_date__gt=timezone.now())
        store = engine.SessionStore()
        sessions = {key: store.decode(data) for key, data in rows.values_list("pk", "session_data")}
    else:
        sessions = {key: engine.SessionStore(key).load() for key in keys}  # {} when gone
    owners = {key: data.get(SESSION_KEY) for key, data in sessions.items() if data.get(SESSION_KEY)}
    users = get_user_model()._default_manager.filter(
        pk__in={user.pk for (key, user), ok in zip(sockets, signed_in, strict=True) if ok},
        is_active=True,
    )
    fresh = {str(user.pk): user for user in users}
    current = []
    for (key, user), ok in zip(sockets, signed_in, strict=True):
        owner = owners.get(key) if ok else None
        if owner is None or str(owner) != str(user.pk) or str(user.pk) not in fresh:
            current.append(False)
            continue
        session_hash = sessions[key].get(HASH_SESSION_KEY)
        current.append(
            isinstance(session_hash, str)
            and constant_time_compare(session_hash, fresh[str(user.pk)].get_session_auth_hash())
        )
    return current


# --- the wiring check ----------------------------------------------------------------------


class PingConsumer(AsyncWebsocketConsumer):
    """Echo a token back through the channel layer: a wiring check for the layer in use.

    The reply travels consumer -> channel layer group -> consumer -> client, so it only
    arrives when the configured layer (in-memory or Redis) really works. Signed-in users only.
    """

    async def connect(self) -> None:
        self.group = f"ping-{uuid.uuid4().hex}"
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=CLOSE_SIGNED_OUT)
            return
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()

    async def disconnect(self, code: int) -> None:
        await self.channel_layer.group_discard(self.group, self.channel_name)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        try:
            message = json.loads(text_data or "")
        except (json.JSONDecodeError, RecursionError):
            await self._error("Message is not valid JSON.")
            return
        if not isinstance(message, dict) or message.get("type") != "ping":
            await self._error('Expected {"type": "ping", "token": "..."}.')
            return
        token = message.get("token")
        if not isinstance(token, str) or len(token) > 200:
            await self._error("token must be a string of at most 200 characters.")
            return
        await self.channel_layer.group_send(self.group, {"type": "pong.relay", "token": token})

    async def pong_relay(self, event: dict[str, Any]) -> None:
        await self.send(json.dumps({"type": "pong", "token": event["token"]}))

    async def _error(self, message: str) -> None:
        await self.send(json.dumps({"type": "error", "message": message}))
