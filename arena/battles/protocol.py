"""The battle WebSocket protocol: every message is a TypedDict, validated on receipt.

Client to server: prompt, vote, regenerate, new_round.
Server to client: start, chunk, side_done, ready, error, revealed, new_round.
Before the vote nothing identifies a model: chunks and stats are tagged only "a" or "b", a
side's finish reason is one of ``FINISH_REASONS`` and its error one of the fixed sentences of
``side_error`` (the stored Turn keeps what the upstream really said).
"""

import json
import re
from typing import Literal, NotRequired, TypedDict

from django.conf import settings

from arena.models import Vote


class ProtocolError(ValueError):
    """A client message that cannot be accepted; the message is shown to the user."""


class PromptMessage(TypedDict):
    type: Literal["prompt"]
    text: str
    category: NotRequired[str | None]


class VoteMessage(TypedDict):
    type: Literal["vote"]
    outcome: Literal["a", "b", "tie", "both_bad"]


class RegenerateMessage(TypedDict):
    type: Literal["regenerate"]


class NewRoundMessage(TypedDict):
    type: Literal["new_round"]


ClientMessage = PromptMessage | VoteMessage | RegenerateMessage | NewRoundMessage

OUTCOMES = tuple(Vote.Outcome.values)
MAX_MESSAGE_BYTES = 256 * 1024
MAX_NESTING = 16  # client messages are flat objects; deeper JSON is refused before parsing

_STRING_LITERAL = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")
# NUL and lone surrogates: PostgreSQL cannot store them in text, so such a prompt is refused.
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def _keys(message: dict, allowed: set[str]) -> None:
    extra = set(message) - allowed
    if extra:
        raise ProtocolError(
            f"Unexpected field(s) in {message['type']!r}: {', '.join(sorted(extra))}."
        )


def parse_client_message(raw: str | None) -> ClientMessage:
    if raw is None:
        raise ProtocolError("Binary messages are not accepted; send JSON text.")
    if len(raw.encode("utf-8", "surrogatepass")) > MAX_MESSAGE_BYTES:
        raise ProtocolError(f"Message too large (limit {MAX_MESSAGE_BYTES // 1024} KiB).")
    if _nesting(raw) > MAX_NESTING:
        raise ProtocolError(f"Message is nested too deeply (limit {MAX_NESTING} levels).")
    try:
        message = json.loads(raw)
    except json.JSONDecodeError:
        raise ProtocolError("Message is not valid JSON.") from None
    except RecursionError:  # the scan above should have caught it; never a closed socket
        raise ProtocolError(f"Message is nested too deeply (limit {MAX_NESTING} levels).") from None
    if not isinstance(message, dict) or not isinstance(message.get("type"), str):
        raise ProtocolError('Message must be a JSON object with a "type".')
    kind = message["type"]
    if kind == "prompt":
        _keys(message, {"type", "text", "category"})
        text = message.get("text")
        if not isinstance(text, str) or not text.strip():
            raise ProtocolError("The prompt is empty.")
        if _UNSTORABLE.search(text):
            raise ProtocolError(
                "The prompt contains a NUL character or an unpaired surrogate; remove it and "
                "send it again."
            )
        limit = settings.ARENA_MAX_PROMPT_CHARS
        if len(text) > limit:
            raise ProtocolError(f"The prompt has {len(text):,} characters; the limit is {limit:,}.")
        category = message.get("category")
        if category is not None and (
            not isinstance(category, str) or len(category) > 60 or _UNSTORABLE.search(category)
        ):
            raise ProtocolError("category must be a category slug or null.")
        return PromptMessage(type="prompt", text=text, category=category or None)
    if kind == "vote":
        _keys(message, {"type", "outcome"})
        if message.get("outcome") not in OUTCOMES:
            raise ProtocolError(f"outcome must be one of {', '.join(OUTCOMES)}.")
        return VoteMessage(type="vote", outcome=message["outcome"])
    if kind in ("regenerate", "new_round"):
        _keys(message, {"type"})
        return {"type": kind}
    raise ProtocolError(f"Unknown message type {kind!r}.")


def _nesting(raw: str) -> int:
    """How deep ``raw``'s arrays and objects nest (brackets inside strings ignored); stops
    counting past ``MAX_NESTING``. Malformed JSON is left for the parser to refuse."""
    brackets = _NOT_BRACKET.sub("", _STRING_LITERAL.sub("", raw))
    depth = deepest = 0
    for char in brackets:
        if char in "[{":
            depth += 1
            if depth > MAX_NESTING:
                return depth
            deepest = max(deepest, depth)
        else:
            depth -= 1
    return deepest


# --- what the page may see of an upstream before the vote ---------------------------------

FINISH_REASONS = ("stop", "length", "content_filter", "other")
_FINISH = {
    "stop": "stop",
    "length": "length",
    "content_filter": "content_filter",
    "refusal": "content_filter",
}


def neutral_finish_reason(raw: str) -> str:
    """One of ``FINISH_REASONS``: an upstream can put any name it likes in its finish reason
    (and some providers' own names would say which provider answered)."""
    return _FINISH.get(raw.strip().lower(), "other")


# (pattern of ProviderError's message, neutral sentence after "Model X's endpoint ").
# The providers' messages are a fixed set (arena/providers); anything else is "failed."
_SIDE_ERRORS = (
    (re.compile(r"^timed out connecting|^could not be reached"), "could not be reached."),
    (re.compile(r"^timed out before the first token"), "timed out before the first token."),
    (
        re.compile(r"^timed out before finishing|^stopped sending before finishing"),
        "timed out before finishing its answer.",
    ),
    (
        re.compile(r"^closed the (stream|connection)|^ended without finishing"),
        "closed the stream before finishing its answer.",
    ),
    (re.compile(r"malformed|^answered without streaming"), "sent a malformed answer."),
    (re.compile(r"^is misconfigured|^needs the environment variable"), "is misconfigured."),
    (re.compile(r"overloaded|^answered HTTP (503|529)\b"), "failed (overloaded)."),
    (re.compile(r"rate_limit|^answered HTTP 429\b"), "failed (rate limited)."),
    (
        re.compile(r"authentication|permission|^answered HTTP 40[13]\b"),
        "refused the request (check its API key).",
    ),
    (re.compile(r"^answered HTTP 404\b"), "refused the request (check its base URL and model id)."),
    (re.compile(r"^answered HTTP 5\d\d\b"), "failed (server error)."),
    (re.compile(r"^answered HTTP 4\d\d\b"), "refused the request."),
    (re.compile(r"^has no recorded answer"), "has no answer to this prompt."),
)


def side_error(side: str, reason: str) -> str:
    """The sentence the page gets for a side that failed, from a fixed set: ``reason`` (a
    ProviderError's message, which may quote an upstream's own error type) never goes out."""
    for pattern, sentence in _SIDE_ERRORS:
        if pattern.search(reason):
            return f"Model {side.upper()}'s endpoint {sentence}"
    return f"Model {side.upper()}'s endpoint failed."


def storable_text(text: str) -> str:
    """An upstream's text with NUL and lone surrogates replaced by U+FFFD, so PostgreSQL can
    store it (and the page shows what is stored)."""
    return _UNSTORABLE.sub("\ufffd", text) if _UNSTORABLE.search(text) else text
