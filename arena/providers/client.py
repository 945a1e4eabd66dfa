"""The one HTTP client (httpx) and the call loop: retries before the first token, deadlines,
the SSE body handed to the endpoint kind's protocol."""

import asyncio
import contextlib
import functools
import logging
import ssl
import time
import weakref
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Protocol

import httpcore
import httpx

from arena.core.retry import backoff
from arena.providers.anthropic import AnthropicProtocol
from arena.providers.call import Call, End
from arena.providers.endpoint import Delta, Endpoint, Finished, Timeouts
from arena.providers.errors import ProviderError
from arena.providers.openai import OpenAIProtocol
from arena.providers.recorded import recorded_stream
from arena.providers.sse import sse_events

logger = logging.getLogger(__name__)


class ChatProtocol(Protocol):
    """What an endpoint kind's protocol class (``OpenAIProtocol``, ``AnthropicProtocol``)
    provides: the request to send and the parser of each server-sent event."""

    @property
    def path(self) -> str: ...

    @property
    def end_optional(self) -> bool: ...

    def headers(self, key: str | None, /) -> dict[str, str]: ...

    def body(self, endpoint: Endpoint, messages: list[dict], /) -> dict: ...

    def parse(self, event: str, data: str, call: Call, /) -> str | End: ...


MAX_RETRIES = 2


RETRY_BACKOFF = 0.25  # seconds before the first retry (core.retry.backoff)


_DRAIN_SECONDS = 0.5  # after the end event, read on briefly so the connection can be reused


async def stream_chat(
    endpoint: Endpoint, messages: list[dict], *, timeouts: Timeouts | None = None
) -> AsyncGenerator[Delta | Finished, None]:
    """Stream one answer: ``Delta`` chunks, then exactly one ``Finished``; or ``ProviderError``.

    ``messages`` is this side's own history, ``[{"role": "user"|"assistant", "content": str}]``;
    the system prompt comes from the endpoint. Timeouts default to the settings.
    """
    call = Call(endpoint, messages, timeouts or Timeouts.from_settings())
    if endpoint.kind == "recorded":
        source = recorded_stream(call)
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


# One client per event loop: connections (and TLS sessions) are reused across calls, which keeps
# the added time to first token low; a client cannot be shared across loops.
_clients: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, httpx.AsyncClient]" = (
    weakref.WeakKeyDictionary()
)


@functools.cache
def _ssl_context() -> ssl.SSLContext:
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


async def _with_retries(call: Call, protocol: ChatProtocol) -> AsyncGenerator[str, None]:
    attempt = 0
    while True:
        try:
            async for text in _http_attempt(call, protocol):
                yield text
            return
        except ProviderError as exc:
            delay = backoff(attempt, RETRY_BACKOFF)
            if (
                call.first_token_at is not None
                or not exc.retryable
                or attempt >= MAX_RETRIES
                or call.loop.time() + delay >= call.first_token_deadline
            ):
                raise
            attempt += 1
            logger.info("Retrying %s (attempt %d) after: %s", call.endpoint.name, attempt, exc)
        call.reset_attempt()
        await asyncio.sleep(delay)


async def _http_attempt(call: Call, protocol: ChatProtocol) -> AsyncGenerator[str, None]:
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
        async with contextlib.aclosing(sse_events(response.aiter_bytes())) as events:
            async for event, data, complete in events:
                try:
                    result = protocol.parse(event, data, call)
                except ProviderError:
                    if complete:
                        raise
                    break  # a torn last event: the stream was cut, reported below
                if isinstance(result, End):  # END, the one End
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


async def _drain(events: AsyncIterator[tuple[str, str, bool]]) -> None:
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


_PROTOCOLS: dict[str, ChatProtocol] = {"openai": OpenAIProtocol, "anthropic": AnthropicProtocol}
