"""The state of one streamed call: deadlines, the text so far, usage reported by the upstream."""

import asyncio
import os

from arena.core.keys import key_var_refusal
from arena.providers.endpoint import Endpoint, Finished, Timeouts, answer_cost, estimate_tokens
from arena.providers.errors import ProviderError


class Call:
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
        if key_var_refusal(name):  # a row stored before the rule, or written around it
            raise ProviderError("is misconfigured (its api_key_env is not an allowed variable)")
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
            cost=answer_cost(self.endpoint, tokens_in, tokens_out),
            text=text,
        )


def _ms(end: float, start: float) -> int:
    return max(0, round((end - start) * 1000))


class End:
    """Marker returned by a protocol parser when the answer is complete."""


END = End()
