"""The battle WebSocket protocol: every message is a TypedDict, validated on receipt.

Client to server: prompt, vote, regenerate, new_round.
Server to client: start, chunk, side_done, ready, error, revealed, new_round.
Before the vote nothing identifies a model: chunks and stats are tagged only "a" or "b".
"""

import json
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


def _keys(message: dict, allowed: set[str]) -> None:
    extra = set(message) - allowed
    if extra:
        raise ProtocolError(
            f"Unexpected field(s) in {message['type']!r}: {', '.join(sorted(extra))}."
        )


def parse_client_message(raw: str | None) -> ClientMessage:
    if raw is None:
        raise ProtocolError("Binary messages are not accepted; send JSON text.")
    if len(raw.encode()) > MAX_MESSAGE_BYTES:
        raise ProtocolError(f"Message too large (limit {MAX_MESSAGE_BYTES // 1024} KiB).")
    try:
        message = json.loads(raw)
    except json.JSONDecodeError:
        raise ProtocolError("Message is not valid JSON.") from None
    if not isinstance(message, dict) or not isinstance(message.get("type"), str):
        raise ProtocolError('Message must be a JSON object with a "type".')
    kind = message["type"]
    if kind == "prompt":
        _keys(message, {"type", "text", "category"})
        text = message.get("text")
        if not isinstance(text, str) or not text.strip():
            raise ProtocolError("The prompt is empty.")
        limit = settings.ARENA_MAX_PROMPT_CHARS
        if len(text) > limit:
            raise ProtocolError(f"The prompt has {len(text):,} characters; the limit is {limit:,}.")
        category = message.get("category")
        if category is not None and (not isinstance(category, str) or len(category) > 60):
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
