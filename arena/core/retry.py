"""The one backoff for every retry: upstream calls, answer generation, judge tasks."""

import math
import random


def backoff(attempt: int, base: float, cap: float = math.inf) -> float:
    """Seconds to wait before retry ``attempt + 1`` (``attempt`` counts from 0).

    ``base * 2**attempt``, capped at ``cap``, then jittered to between half and all of it, so
    that callers that failed together do not retry together. ``base <= 0`` means no wait.
    """
    if base <= 0:
        return 0.0
    return min(cap, base * 2**attempt) * random.uniform(0.5, 1.0)
