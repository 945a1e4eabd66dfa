"""What a call needs to know about a contestant's endpoint, and what a call returns."""

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import TYPE_CHECKING

from django.conf import settings

from ratings import estimate_tokens as ratings_estimate_tokens

if TYPE_CHECKING:
    from arena.models import Contestant

_COST_QUANTUM = Decimal("0.00000001")  # Turn.cost has 8 decimal places


_MILLION = Decimal(1_000_000)


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
    def from_contestant(cls, contestant: "Contestant") -> "Endpoint":
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


def answer_cost(endpoint: Endpoint, tokens_in: int, tokens_out: int) -> Decimal | None:
    price_in, price_out = endpoint.price_input_per_mtok, endpoint.price_output_per_mtok
    if price_in is None or price_out is None:
        return None
    total = Decimal(tokens_in) * Decimal(price_in) + Decimal(tokens_out) * Decimal(price_out)
    return (total / _MILLION).quantize(_COST_QUANTUM, rounding=ROUND_HALF_UP)
