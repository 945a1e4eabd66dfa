"""All outbound LLM HTTP: stream one chat answer from a contestant's endpoint.

Three kinds of endpoint:

- ``openai``: POST ``{base_url}/chat/completions`` with ``stream: true`` and
  ``stream_options.include_usage`` (OpenAI, vLLM, Ollama's /v1, llama.cpp, LM Studio, TGI,
  LiteLLM, OpenRouter...). ``Authorization: Bearer $API_KEY_ENV`` when a variable is named.
- ``anthropic``: POST ``{base_url}/messages`` with ``x-api-key`` and ``anthropic-version``;
  the system prompt is the top-level ``system`` field; ``max_tokens`` defaults to 1024.
- ``recorded``: replays the contestant's stored ``Answer`` to the eval-set prompt whose text is
  the first user message; streamed in word-sized chunks so the page fills visibly.

``stream_chat`` yields ``Delta`` chunks then exactly one ``Finished``, or raises
``ProviderError``, the one exception type for every upstream failure. Its message is a short
reason fit for users; it never holds a traceback, a URL or a key.

Timeouts: connecting is bounded by httpx; the first token and the whole answer by asyncio
deadlines checked around every read, so a silent upstream cannot hold a battle open. Retries
(connect errors, 5xx, 429, a connection dropped before any token) happen only before the first
token, at most twice, with jittered backoff, and never past the first-token deadline.

Usage comes from the provider when it reports it; otherwise it is estimated without a
tokenizer as ceil(characters / 4) and ``usage_estimated`` is set. Cost is
tokens x price per million tokens when both prices are known, else None.

Close the stream when you stop reading early, so the upstream connection is closed at once::

    async with contextlib.aclosing(stream_chat(endpoint, messages)) as stream:
        async for item in stream:
            ...

Cancelling the task that iterates closes the upstream connection too.
"""

import asyncio
import contextlib
import functools
import json
import logging
import os
import random
import re
import time
import weakref
from collections.abc import AsyncIterator
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

import httpcore
import httpx
from channels.db import database_sync_to_async
from django.conf import settings

from ratings import estimate_tokens as ratings_estimate_tokens

__all__ = [
    "ANTHROPIC_VERSION",
    "Delta",
    "Endpoint",
    "Finished",
    "ProviderError",
    "Timeouts",
    "aclose_client",
    "complete_chat",
    "estimate_tokens",
    "stream_chat",
]

logger = logging.getLogger(__name__)

ANTHROPIC_VERSION = "2023-06-01"
ANTHROPIC_DEFAULT_MAX_TOKENS = 1024
MAX_RETRIES = 2
RETRY_BACKOFF = 0.25  # seconds before the first retry; doubled for the next, with jitter
RECORDED_CHUNK_DELAY_MS = 10  # default for settings.ARENA_RECORDED_CHUNK_DELAY_MS
_DRAIN_SECONDS = 0.5  # after the end event, read on briefly so the connection can be reused
_COST_QUANTUM = Decimal("0.00000001")  # Turn.cost has 8 decimal places
_MILLION = Decimal(1_000_000)


class ProviderError(Exception):
    """One exception type for every upstream failure.

    ``str(exc)`` is a short reason fit for users ("timed out before the first token",
    "answered HTTP 500"); ``detail`` may hold more for logs (the upstream's error body, with the
    key removed) and is never meant for the page.
    """

    def __init__(self, message: str, *, retryable: bool = False, detail: str = ""):
        super().__init__(message)
        self.retryable = retryable
        self.detail = detail

    def for_side(self, side: str) -> str:
        """``"Model B's endpoint timed out before the first token."``"""
        return f"Model {side.upper()}'s endpoint {self}."


@dataclass(frozen=True)
class Timeouts:
    """Seconds. ``connect`` per connection attempt, ``first_token`` and ``total`` from the start
    of the call (retries included)."""

    connect: float = 5.0
    first_token: float = 30.0
    total: float = 300.0

    @classmethod
    def from_settings(cls) -> "Timeouts":
        return cls(
            connect=float(getattr(settings, "ARENA_TIMEOUT_CONNECT", cls.connect)),
            first_token=float(getattr(settings, "ARENA_TIMEOUT_FIRST_TOKEN", cls.first_token)),
            total=float(getattr(settings, "ARENA_TIMEOUT_TOTAL", cls.total)),
        )


@dataclass(frozen=True)
class Endpoint:
    """Everything needed to call one contestant; holds the *name* of the key's variable only."""

    name: str
    kind: str
    base_url: str = ""
    model_id: str = ""
    api_key_env: str = ""
    system_prompt: str = ""
    temperature: float | None = None
    top_p: float | None = None
    max_tokens: int | None = None
    price_input_per_mtok: Decimal | None = None
    price_output_per_mtok: Decimal | None = None
    contestant_id: int | None = None

    @classmethod
    def from_contestant(cls, contestant) -> "Endpoint":
        return cls(
            name=contestant.name,
            kind=str(contestant.kind),
            base_url=contestant.base_url,
            model_id=contestant.model_id,
            api_key_env=contestant.api_key_env,
            system_prompt=contestant.system_prompt,
            temperature=contestant.temperature,
            top_p=contestant.top_p,
            max_tokens=contestant.max_tokens,
            price_input_per_mtok=contestant.price_input_per_mtok,
            price_output_per_mtok=contestant.price_output_per_mtok,
            contestant_id=contestant.pk,
        )


@dataclass(frozen=True)
class Delta:
    text: str


@dataclass(frozen=True)
class Finished:
    finish_reason: str  # "stop", "length", ... as reported ("" when the provider said nothing)
    tokens_in: int
    tokens_out: int
    usage_estimated: bool
    ttft_ms: int | None  # None when no text came at all
    total_ms: int
    cost: Decimal | None
    text: str = ""  # the whole answer, as the deltas reassemble it


def estimate_tokens(text: str) -> int:
    """Tokenizer-free estimate, the ratings engine's one: words and punctuation marks."""
    return ratings_estimate_tokens(text)


async def stream_chat(
    endpoint: Endpoint, messages: list[dict], *, timeouts: Timeouts | None = None
) -> AsyncIterator[Delta | Finished]:
    """Stream one answer: ``Delta`` chunks, then exactly one ``Finished``; or ``ProviderError``.

    ``messages`` is this side's own history, ``[{"role": "user"|"assistant", "content": str}]``;
    the system prompt comes from the endpoint. Timeouts default to the settings.
    """
    call = _Call(endpoint, messages, timeouts or Timeouts.from_settings())
    if endpoint.kind == "recorded":
        source = _recorded(call)
    elif endpoint.kind in _PROTOCOLS:
        source = _with_retries(call, _PROTOCOLS[endpoint.kind])
    else:
        raise ProviderError(f"is misconfigured (unknown kind {endpoint.kind[:20]!r})")
    try:
        while True:
            deadline = call.deadline()
            try:
                async with asyncio.timeout_at(deadline) as window:
                    text = await anext(source)
            except StopAsyncIteration:
                break
            except TimeoutError:
                if window.expired():
                    raise call.timeout_error() from None
                raise
            call.received(text)
            yield Delta(text)
    finally:
        await source.aclose()
    yield call.finished()


async def complete_chat(
    endpoint: Endpoint, messages: list[dict], *, timeouts: Timeouts | None = None
) -> Finished:
    """The whole answer at once (``Finished.text``), for callers that do not stream."""
    async with contextlib.aclosing(stream_chat(endpoint, messages, timeouts=timeouts)) as stream:
        async for item in stream:
            if isinstance(item, Finished):
                return item
    raise AssertionError("stream_chat ended without Finished")  # pragma: no cover


# -- one call's state ------------------------------------------------------------------------


class _Call:
    def __init__(self, endpoint: Endpoint, messages: list[dict], timeouts: Timeouts):
        self.endpoint = endpoint
        self.messages = messages
        self.timeouts = timeouts
        self.loop = asyncio.get_running_loop()
        self.started = self.loop.time()
        self.first_token_deadline = self.started + timeouts.first_token
        self.total_deadline = self.started + timeouts.total
        self.first_token_at: float | None = None
        self.parts: list[str] = []
        self.reset_attempt()

    def reset_attempt(self) -> None:
        self.tokens_in: int | None = None
        self.tokens_out: int | None = None
        self.finish_reason = ""

    def deadline(self) -> float:
        if self.first_token_at is None:
            return min(self.first_token_deadline, self.total_deadline)
        return self.total_deadline

    def timeout_error(self) -> ProviderError:
        # Retryable means "worth calling again": a live battle never waits for that, a batch
        # (generation, judging) may; this call itself is over.
        if self.first_token_at is None:
            return ProviderError("timed out before the first token", retryable=True)
        return ProviderError("timed out before finishing its answer", retryable=True)

    def received(self, text: str) -> None:
        if self.first_token_at is None:
            self.first_token_at = self.loop.time()
        self.parts.append(text)

    def api_key(self) -> str | None:
        name = self.endpoint.api_key_env
        if not name:
            return None
        value = os.environ.get(name, "").strip()
        if not value:
            raise ProviderError(f"needs the environment variable {name}, which is not set")
        return value

    def finished(self) -> Finished:
        end = self.loop.time()
        text = "".join(self.parts)
        estimated = False
        tokens_in, tokens_out = self.tokens_in, self.tokens_out
        if tokens_in is None:
            prompt = [self.endpoint.system_prompt] + [str(m["content"]) for m in self.messages]
            tokens_in, estimated = sum(estimate_tokens(p) for p in prompt), True
        if tokens_out is None:
            tokens_out, estimated = estimate_tokens(text), True
        return Finished(
            finish_reason=self.finish_reason,
            tokens_in=tokens_in,
            tokens_out=tokens_out,
            usage_estimated=estimated,
            ttft_ms=None if self.first_token_at is None else _ms(self.first_token_at, self.started),
            total_ms=_ms(end, self.started),
            cost=_cost(self.endpoint, tokens_in, tokens_out),
            text=text,
        )


def _ms(end: float, start: float) -> int:
    return max(0, round((end - start) * 1000))


def _cost(endpoint: Endpoint, tokens_in: int, tokens_out: int) -> Decimal | None:
    price_in, price_out = endpoint.price_input_per_mtok, endpoint.price_output_per_mtok
    if price_in is None or price_out is None:
        return None
    total = Decimal(tokens_in) * Decimal(price_in) + Decimal(tokens_out) * Decimal(price_out)
    return (total / _MILLION).quantize(_COST_QUANTUM, rounding=ROUND_HALF_UP)


# -- HTTP ------------------------------------------------------------------------------------

# One client per event loop: connections (and TLS sessions) are reused across calls, which keeps
# the added time to first token low; a client cannot be shared across loops.
_clients: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, httpx.AsyncClient]" = (
    weakref.WeakKeyDictionary()
)


@functools.cache
def _ssl_context():
    """Built once: loading the CA bundle blocks, and must not stall the event loop per battle."""
    return httpx.create_ssl_context()


# Idle connections kept for reuse: a burst of battles then sends its requests at once instead of
# connecting first (each new connection costs the event loop about a millisecond, and a
# round trip or a TLS handshake when the endpoint is remote).
_KEEPALIVE_CONNECTIONS = 200


class _Pool(httpcore.AsyncConnectionPool):
    """httpcore's pool with a linear-time ``_assign_requests_to_connections``.

    The stock method (httpcore 1.0) runs on every request start and response close. It asks
    every connection whether it has expired (for an idle one: a poll of its socket), counts the
    idle connections once per idle connection, and may hand one idle connection to several
    queued requests, the losers retrying until one is free (encode/httpcore#1035). With a
    hundred idle connections kept, a burst of a hundred streams waited there up to a second
    (and with few kept, most streams must connect first). Here: one pass over the
    connections, the expiry poll only for the idle connection about to be reused (and for all
    of them at most once a second), and a connection goes to one waiting request only.
    """

    _SWEEP_SECONDS = 1.0
    _swept_at = 0.0

    def _assign_requests_to_connections(self) -> list:
        closing = []
        now = time.monotonic()
        sweep = now - self._swept_at >= self._SWEEP_SECONDS
        if sweep:
            self._swept_at = now
        kept, idle = [], 0
        for connection in self._connections:
            if connection.is_closed():
                continue
            if connection.is_idle():
                if idle >= self._max_keepalive_connections or (sweep and connection.has_expired()):
                    closing.append(connection)
                    continue
                idle += 1
            kept.append(connection)
        self._connections = kept

        taken = {id(r.connection) for r in self._requests if r.connection is not None}
        for pool_request in self._requests:
            if not pool_request.is_queued():
                continue
            origin = pool_request.request.url.origin
            chosen = None
            for connection in list(self._connections):
                if id(connection) in taken or not (
                    connection.can_handle_request(origin) and connection.is_available()
                ):
                    continue
                if connection.is_idle() and connection.has_expired():
                    self._connections.remove(connection)
                    closing.append(connection)
                    continue
                chosen = connection
                break
            if chosen is None:
                if len(self._connections) >= self._max_connections:
                    idle_ones = [c for c in self._connections if c.is_idle() and id(c) not in taken]
                    if not idle_ones:
                        continue  # stays queued until a response closes
                    self._connections.remove(idle_ones[0])
                    closing.append(idle_ones[0])
                chosen = self.create_connection(origin)
                self._connections.append(chosen)
            taken.add(id(chosen))
            pool_request.assign_to_connection(chosen)
        return closing


def _client() -> httpx.AsyncClient:
    loop = asyncio.get_running_loop()
    client = _clients.get(loop)
    if client is None or client.is_closed:
        for old in [old for old in _clients if old.is_closed()]:
            del _clients[old]
        limits = httpx.Limits(
            max_connections=None, max_keepalive_connections=_KEEPALIVE_CONNECTIONS
        )
        client = httpx.AsyncClient(limits=limits, follow_redirects=False, verify=_ssl_context())
        transport = client._transport  # the one for URLs that no (environment) proxy takes
        if isinstance(transport, httpx.AsyncHTTPTransport) and type(transport._pool) is (
            httpcore.AsyncConnectionPool
        ):
            transport._pool = _Pool(
                ssl_context=_ssl_context(),
                max_connections=limits.max_connections,
                max_keepalive_connections=limits.max_keepalive_connections,
                keepalive_expiry=limits.keepalive_expiry,
            )
        _clients[loop] = client
    return client


async def aclose_client() -> None:
    """Close this event loop's shared client (tests, and processes that shut down cleanly)."""
    client = _clients.pop(asyncio.get_running_loop(), None)
    if client is not None:
        await client.aclose()


class _End:
    """Marker returned by a protocol parser when the answer is complete."""


_END = _End()


async def _with_retries(call: _Call, protocol) -> AsyncIterator[str]:
    attempt = 0
    while True:
        try:
            async for text in _http_attempt(call, protocol):
                yield text
            return
        except ProviderError as exc:
            backoff = RETRY_BACKOFF * 2**attempt * random.uniform(0.8, 1.2)
            if (
                call.first_token_at is not None
                or not exc.retryable
                or attempt >= MAX_RETRIES
                or call.loop.time() + backoff >= call.first_token_deadline
            ):
                raise
            attempt += 1
            logger.info("Retrying %s (attempt %d) after: %s", call.endpoint.name, attempt, exc)
        call.reset_attempt()
        await asyncio.sleep(backoff)


async def _http_attempt(call: _Call, protocol) -> AsyncIterator[str]:
    endpoint = call.endpoint
    key = call.api_key()
    client = _client()
    timeout = httpx.Timeout(call.timeouts.total, connect=call.timeouts.connect)
    try:
        request = client.build_request(
            "POST",
            endpoint.base_url.rstrip("/") + protocol.path,
            json=protocol.body(endpoint, call.messages),
            headers=protocol.headers(key),
            timeout=timeout,
        )
        response = await client.send(request, stream=True)
    except (httpx.InvalidURL, httpx.UnsupportedProtocol):
        raise ProviderError("is misconfigured (invalid base URL)") from None
    except httpx.ConnectTimeout:
        raise ProviderError("timed out connecting", retryable=True) from None
    except httpx.ConnectError:
        raise ProviderError("could not be reached", retryable=True) from None
    except httpx.TimeoutException:
        raise ProviderError("timed out before the first token", retryable=True) from None
    except httpx.TransportError:
        raise ProviderError("closed the connection before answering", retryable=True) from None
    try:
        if response.status_code >= 400:
            raise await _status_error(response, key)
        content_type = response.headers.get("content-type", "")
        if content_type.startswith("application/json"):
            raise ProviderError("answered without streaming")
        async with contextlib.aclosing(_sse_events(response.aiter_bytes())) as events:
            async for event, data, complete in events:
                try:
                    result = protocol.parse(event, data, call)
                except ProviderError:
                    if complete:
                        raise
                    break  # a torn last event: the stream was cut, reported below
                if result is _END:
                    await _drain(events)
                    return
                if result:
                    yield result
        if call.finish_reason and protocol.end_optional:
            return  # some OpenAI-compatible servers omit [DONE]; a finish_reason is enough
        raise ProviderError("closed the stream early", retryable=True)
    except httpx.TimeoutException:
        raise ProviderError("stopped sending before finishing its answer", retryable=True) from None
    except httpx.TransportError:
        raise ProviderError("closed the stream early", retryable=True) from None
    finally:
        await response.aclose()


async def _drain(events) -> None:
    """Read to the end of the body (briefly) so the connection goes back to the pool."""
    with contextlib.suppress(TimeoutError, httpx.HTTPError, ProviderError):
        async with asyncio.timeout(_DRAIN_SECONDS):
            async for _ in events:
                pass


async def _status_error(response: httpx.Response, key: str | None) -> ProviderError:
    status = response.status_code
    body = b""
    with contextlib.suppress(httpx.HTTPError):
        async for chunk in response.aiter_bytes():
            body += chunk
            if len(body) > 2000:
                break
    detail = body[:2000].decode("utf-8", "replace")
    if key:
        detail = detail.replace(key, "[key]")
    hint = {
        401: " (check its API key)",
        403: " (check its API key)",
        404: " (check its base URL and model id)",
        429: " (rate limited)",
    }.get(status, "")
    retryable = status >= 500 or status in (408, 429)
    logger.warning("Upstream answered HTTP %s: %s", status, detail[:500])
    return ProviderError(f"answered HTTP {status}{hint}", retryable=retryable, detail=detail)


async def _sse_events(chunks: AsyncIterator[bytes]) -> AsyncIterator[tuple[str, str, bool]]:
    """Server-sent events as ``(event, data, complete)``; ``complete`` is False only for a last
    event that the stream ended in the middle of (no blank line after it).

    Parsed from the body's bytes as they arrive: lines end with CR LF, LF or CR (and nothing
    else, so a U+2028 inside an event's JSON stays in it); every line is UTF-8, and UTF-8 never
    puts those two bytes inside a character, so a line is decoded once it is whole.
    """
    event, data = "", []
    pending = b""
    async for chunk in chunks:
        pending += chunk
        if b"\r" in pending:
            # A CR at the very end may be the first half of a CR LF: keep it for the next read.
            held = pending[-1:] == b"\r"
            body = pending[:-1] if held else pending
            pending = body.replace(b"\r\n", b"\n").replace(b"\r", b"\n") + (b"\r" if held else b"")
        if b"\n" not in pending:
            continue
        lines = pending.split(b"\n")
        pending = lines.pop()
        for raw in lines:
            if not raw:
                if data:
                    yield event or "message", "\n".join(data), True
                event, data = "", []
                continue
            event = _sse_field(raw.decode("utf-8", "replace"), event, data)
    if pending.rstrip(b"\r"):  # a last line without its line end
        event = _sse_field(pending.rstrip(b"\r").decode("utf-8", "replace"), event, data)
    if data:
        yield event or "message", "\n".join(data), False


def _sse_field(line: str, event: str, data: list[str]) -> str:
    """One field line of an event: ``data`` is appended to, the event name returned."""
    if line[0] == ":":  # a comment
        return event
    name, _, value = line.partition(":")
    if value[:1] == " ":
        value = value[1:]
    if name == "data":
        data.append(value)
    elif name == "event":
        return value
    return event


def _json(data: str) -> dict:
    try:
        value = json.loads(data)
    except ValueError:
        raise ProviderError("sent a malformed event") from None
    if not isinstance(value, dict):
        raise ProviderError("sent a malformed event")
    return value


def _int_or_none(value) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


_ERROR_TYPE = re.compile(r"^[a-z_]{1,40}$")


def _error_type(error) -> str:
    kind = error.get("type") if isinstance(error, dict) else None
    return kind if isinstance(kind, str) and _ERROR_TYPE.match(kind) else "unknown"


class _OpenAIProtocol:
    path = "/chat/completions"
    end_optional = True

    @staticmethod
    def headers(key: str | None) -> dict[str, str]:
        headers = {"Accept": "text/event-stream"}
        if key:
            headers["Authorization"] = f"Bearer {key}"
        return headers

    @staticmethod
    def body(endpoint: Endpoint, messages: list[dict]) -> dict:
        system = [{"role": "system", "content": endpoint.system_prompt}]
        body = {
            "model": endpoint.model_id,
            "messages": (system if endpoint.system_prompt else []) + list(messages),
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        for name in ("temperature", "top_p", "max_tokens"):
            value = getattr(endpoint, name)
            if value is not None:
                body[name] = value
        return body

    @staticmethod
    def parse(event: str, data: str, call: _Call) -> str | _End:
        if data.strip() == "[DONE]":
            return _END
        chunk = _json(data)
        if chunk.get("error"):
            kind = _error_type(chunk["error"])
            raise ProviderError(f"reported an error ({kind})", detail=data[:2000])
        usage = chunk.get("usage")
        if isinstance(usage, dict):
            call.tokens_in = _int_or_none(usage.get("prompt_tokens"))
            call.tokens_out = _int_or_none(usage.get("completion_tokens"))
        choices = chunk.get("choices") or []
        if not isinstance(choices, list):
            raise ProviderError("sent a malformed event")
        text = ""
        for choice in choices:
            if not isinstance(choice, dict) or not isinstance(choice.get("delta") or {}, dict):
                raise ProviderError("sent a malformed event")
            if choice.get("index", 0) != 0:
                continue
            content = (choice.get("delta") or {}).get("content")
            if isinstance(content, str):
                text += content
            elif content is not None:
                raise ProviderError("sent a malformed event")
            if choice.get("finish_reason"):
                call.finish_reason = str(choice["finish_reason"])[:40]
        return text


class _AnthropicProtocol:
    path = "/messages"
    end_optional = False
    _FINISH = {"end_turn": "stop", "stop_sequence": "stop", "max_tokens": "length"}

    @staticmethod
    def headers(key: str | None) -> dict[str, str]:
        headers = {"Accept": "text/event-stream", "anthropic-version": ANTHROPIC_VERSION}
        if key:
            headers["x-api-key"] = key
        return headers

    @staticmethod
    def body(endpoint: Endpoint, messages: list[dict]) -> dict:
        body = {
            "model": endpoint.model_id,
            "messages": list(messages),
            "max_tokens": endpoint.max_tokens or ANTHROPIC_DEFAULT_MAX_TOKENS,
            "stream": True,
        }
        if endpoint.system_prompt:
            body["system"] = endpoint.system_prompt
        for name in ("temperature", "top_p"):
            value = getattr(endpoint, name)
            if value is not None:
                body[name] = value
        return body

    @classmethod
    def parse(cls, event: str, data: str, call: _Call) -> str | _End:
        payload = _json(data)
        kind = payload.get("type") or event
        if kind == "content_block_delta":
            delta = payload.get("delta")
            if not isinstance(delta, dict):
                raise ProviderError("sent a malformed event")
            if delta.get("type") != "text_delta":
                return ""  # thinking, tool input...: not part of the visible answer
            if not isinstance(delta.get("text"), str):
                raise ProviderError("sent a malformed event")
            return delta["text"]
        if kind == "message_start":
            message = payload.get("message")
            usage = message.get("usage") if isinstance(message, dict) else None
            if isinstance(usage, dict):
                call.tokens_in = _int_or_none(usage.get("input_tokens"))
        elif kind == "message_delta":
            delta, usage = payload.get("delta"), payload.get("usage")
            if isinstance(delta, dict) and delta.get("stop_reason"):
                reason = str(delta["stop_reason"])[:40]
                call.finish_reason = cls._FINISH.get(reason, reason)
            if isinstance(usage, dict):
                call.tokens_out = _int_or_none(usage.get("output_tokens"))
                if _int_or_none(usage.get("input_tokens")) is not None:
                    call.tokens_in = usage["input_tokens"]
        elif kind == "message_stop":
            return _END
        elif kind == "error":
            error_type = _error_type(payload.get("error"))
            retryable = error_type in ("overloaded_error", "api_error")
            raise ProviderError(
                f"reported an error ({error_type})", retryable=retryable, detail=data[:2000]
            )
        return ""


_PROTOCOLS = {"openai": _OpenAIProtocol, "anthropic": _AnthropicProtocol}


# -- recorded answers ------------------------------------------------------------------------

_CHUNK = re.compile(r"\s*\S+\s*|\s+")


@database_sync_to_async
def _recorded_answer(contestant_id: int | None, prompt: str):
    from arena.services import recorded_answer_for  # the one matching rule, also for drawing

    if contestant_id is None:
        return None
    return recorded_answer_for(contestant_ids=[contestant_id], prompt=prompt).get(contestant_id)


async def _recorded(call: _Call) -> AsyncIterator[str]:
    users = [m for m in call.messages if m.get("role") == "user"]
    if len(call.messages) != 1 or len(users) != 1:
        raise ProviderError("has no recorded answer for follow-up messages")
    answer = await _recorded_answer(call.endpoint.contestant_id, str(users[0]["content"]).strip())
    if answer is None:
        raise ProviderError("has no recorded answer for this prompt")
    delay = getattr(settings, "ARENA_RECORDED_CHUNK_DELAY_MS", RECORDED_CHUNK_DELAY_MS) / 1000
    for i, chunk in enumerate(_CHUNK.findall(answer.text)):
        if i and delay:
            await asyncio.sleep(delay)
        yield chunk
    call.finish_reason = "stop"
    call.tokens_out = answer.tokens_out  # stored count when there is one, else estimated
