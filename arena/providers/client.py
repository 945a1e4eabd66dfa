"""The one HTTP client (httpx) and the call loop: retries before the first token, deadlines,
the SSE body handed to the endpoint kind's protocol."""

import asyncio
import contextlib
import functools
import http.cookiejar
import logging
import ssl
import weakref
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Protocol

import aiohttp
import httpx
from httpx_aiohttp import AiohttpTransport

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
# connecting first (each new connection costs a round trip, and a TLS handshake when remote).
_KEEPALIVE_SECONDS = 60.0


class _NoCookies(http.cookiejar.CookieJar):
    """Cookies an upstream sets are never sent back (no state shared between calls), so they
    are not parsed either: that parse was a fifth of the client's CPU per request."""

    def extract_cookies(self, response: object, request: object) -> None:
        pass


@functools.lru_cache(maxsize=256)
def _url(base_url: str, path: str) -> httpx.URL:
    """An endpoint's URL, parsed once (raises httpx.InvalidURL, not cached)."""
    return httpx.URL(base_url.rstrip("/") + path)


def _session() -> aiohttp.ClientSession:
    """aiohttp underneath httpx (the httpx-aiohttp transport, as the OpenAI SDK ships it):
    starting a request costs the event loop a fraction of httpx's own pool. No connection
    limit here: each caller bounds its own concurrency (``providers.slots``, one per battle)."""
    connector = aiohttp.TCPConnector(
        limit=0, ssl=_ssl_context(), keepalive_timeout=_KEEPALIVE_SECONDS
    )
    return aiohttp.ClientSession(connector=connector, auto_decompress=False)


def _client() -> httpx.AsyncClient:
    loop = asyncio.get_running_loop()
    client = _clients.get(loop)
    if client is None or client.is_closed:
        for old in [old for old in _clients if old.is_closed()]:
            del _clients[old]
        # verify: the transport builds an SSL context of its own otherwise (unused, as slow).
        transport = AiohttpTransport(client=_session(), verify=_ssl_context())
        client = httpx.AsyncClient(
            transport=transport, follow_redirects=False, cookies=_NoCookies()
        )
        _clients[loop] = client
    return client


def warm_client() -> None:
    """Build this event loop's client now (the CA bundle is read once per process, ~0.1 s of
    blocked loop), so the first burst of battles does not wait for it. In a coroutine."""
    _client()


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
            _url(endpoint.base_url, protocol.path),
            json=protocol.body(endpoint, call.messages),
            headers=protocol.headers(key),
            timeout=timeout,
        )
        response = await client.send(request, stream=True)
    except (httpx.InvalidURL, httpx.UnsupportedProtocol):
        raise ProviderError("is misconfigured (invalid base URL)") from None
    except httpx.TransportError as exc:
        raise _before_answer(exc) from None
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


def _before_answer(exc: httpx.TransportError) -> ProviderError:
    """What went wrong before the response started. httpx-aiohttp maps every aiohttp
    connection error to ConnectTimeout, so the aiohttp error it wraps decides where it can."""
    cause = exc.__cause__
    if isinstance(cause, aiohttp.ClientConnectorError) or isinstance(exc, httpx.ConnectError):
        return ProviderError("could not be reached", retryable=True)
    if isinstance(cause, aiohttp.ConnectionTimeoutError) or (
        cause is None and isinstance(exc, httpx.ConnectTimeout)
    ):
        return ProviderError("timed out connecting", retryable=True)
    if isinstance(exc, httpx.TimeoutException) and not isinstance(
        cause, aiohttp.ClientConnectionError
    ):
        return ProviderError("timed out before the first token", retryable=True)
    return ProviderError("closed the connection before answering", retryable=True)


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
