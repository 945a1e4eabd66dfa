"""All outbound LLM HTTP: stream one chat answer from a contestant's endpoint.

Three kinds of endpoint: ``openai`` (any OpenAI-compatible server, ``openai.py``), ``anthropic``
(``anthropic.py``) and ``recorded`` (stored answers replayed, ``recorded.py``).

``stream_chat`` yields ``Delta`` chunks then exactly one ``Finished``, or raises
``ProviderError``, the one exception type for every upstream failure. Its message is a short
reason fit for users; it never holds a traceback, a URL or a key.

Timeouts: connecting is bounded by httpx; the first token and the whole answer by asyncio
deadlines checked around every read, so a silent upstream cannot hold a battle open. Retries
(connect errors, 5xx, 429, a connection dropped before any token) happen only before the first
token, at most twice, with jittered backoff, and never past the first-token deadline.

Usage comes from the provider when it reports it; otherwise it is estimated without a
tokenizer and ``usage_estimated`` is set. Cost is tokens x price per million tokens when both
prices are known, else None.

Close the stream when you stop reading early, so the upstream connection is closed at once::

    async with contextlib.aclosing(stream_chat(endpoint, messages)) as stream:
        async for item in stream:
            ...

Cancelling the task that iterates closes the upstream connection too.
"""

from arena.providers.anthropic import ANTHROPIC_VERSION
from arena.providers.client import aclose_client, complete_chat, stream_chat, warm_client
from arena.providers.endpoint import Delta, Endpoint, Finished, Timeouts, estimate_tokens
from arena.providers.errors import ProviderError

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
    "warm_client",
]
