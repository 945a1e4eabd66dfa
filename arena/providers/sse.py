"""Server-sent events parsed from a body's bytes (lines end only at CR, LF or CR LF)."""

import json
from collections.abc import AsyncGenerator, AsyncIterator

from arena.providers.errors import ProviderError


async def sse_events(chunks: AsyncIterator[bytes]) -> AsyncGenerator[tuple[str, str, bool], None]:
    """Server-sent events as ``(event, data, complete)``; ``complete`` is False only for a last
    event that the stream ended in the middle of (no blank line after it).

    Parsed from the body's bytes as they arrive: lines end with CR LF, LF or CR (and nothing
    else, so a U+2028 inside an event's JSON stays in it); every line is UTF-8, and UTF-8 never
    puts those two bytes inside a character, so a line is decoded once it is whole.
    """
    event = ""
    data: list[str] = []
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


def event_json(data: str) -> dict:
    try:
        value = json.loads(data)
    except ValueError:
        raise ProviderError("sent a malformed event") from None
    if not isinstance(value, dict):
        raise ProviderError("sent a malformed event")
    return value


def int_or_none(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None
