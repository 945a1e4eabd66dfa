"""Choosing who battles: a weighted draw of two distinct contestants and random sides.

The probability of the unordered pair is stored on the battle so that ratings can re-weight
votes by 1 / P(pair) when some pairs are drawn far more often than others.
"""

import random
from collections.abc import Sequence
from dataclasses import dataclass


class NotEnoughContestants(Exception):
    pass


@dataclass(frozen=True)
class Draw:
    a: int  # index into the candidates, shown on the left
    b: int  # shown on the right
    pair_probability: float


def pair_probability(weights: Sequence[float], i: int, j: int) -> float:
    """P({i, j}) when drawing two without replacement, each draw proportional to weight."""
    total = float(sum(weights))
    wi, wj = weights[i], weights[j]
    return wi / total * wj / (total - wi) + wj / total * wi / (total - wj)


def pair_draw(weights: Sequence[float], rng: random.Random | None = None) -> Draw:
    """Draw two distinct candidates by weight, then put them on random sides.

    Raises NotEnoughContestants when fewer than two candidates have a positive weight.
    """
    rng = rng or random.SystemRandom()
    eligible = [i for i, w in enumerate(weights) if w > 0]
    if len(eligible) < 2:
        raise NotEnoughContestants(
            "The arena needs at least two active models with a positive sampling weight."
        )
    first = rng.choices(eligible, weights=[weights[i] for i in eligible])[0]
    rest = [i for i in eligible if i != first]
    second = rng.choices(rest, weights=[weights[i] for i in rest])[0]
    a, b = (first, second) if rng.random() < 0.5 else (second, first)
    return Draw(a=a, b=b, pair_probability=pair_probability(weights, first, second))
