import itertools
import random
from collections import Counter

import pytest

from arena.matchmaking import NotEnoughContestants, pair_draw, pair_probability

WEIGHTS = [1.0, 2.0, 0.5, 0.0, 3.0]


def test_pair_probabilities_sum_to_one_over_eligible_pairs():
    eligible = [i for i, w in enumerate(WEIGHTS) if w > 0]
    total = sum(pair_probability(WEIGHTS, i, j) for i, j in itertools.combinations(eligible, 2))
    assert total == pytest.approx(1.0, abs=1e-12)


def test_pair_probability_matches_brute_force_enumeration():
    # Enumerate both ordered draws explicitly.
    total = sum(WEIGHTS)
    for i, j in itertools.combinations(range(len(WEIGHTS)), 2):
        if not WEIGHTS[i] or not WEIGHTS[j]:
            continue
        brute = 0.0
        for first, second in ((i, j), (j, i)):
            rest = total - WEIGHTS[first]
            brute += WEIGHTS[first] / total * WEIGHTS[second] / rest
        assert pair_probability(WEIGHTS, i, j) == pytest.approx(brute, rel=1e-12)


def test_draws_follow_the_weights_and_never_repeat_a_contestant():
    rng = random.Random(7)
    n = 40_000
    pairs, left = Counter(), Counter()
    for _ in range(n):
        draw = pair_draw(WEIGHTS, rng)
        assert draw.a != draw.b
        assert WEIGHTS[draw.a] > 0 and WEIGHTS[draw.b] > 0
        assert draw.pair_probability == pytest.approx(pair_probability(WEIGHTS, draw.a, draw.b))
        pairs[frozenset((draw.a, draw.b))] += 1
        left[draw.a] += 1
    for pair, count in pairs.items():
        expected = pair_probability(WEIGHTS, *sorted(pair)) * n
        # 5 standard deviations of a binomial count
        assert abs(count - expected) < 5 * (expected * (1 - expected / n)) ** 0.5
    # sides are random: each contestant is on the left about half of its appearances
    appearances = Counter()
    for pair, count in pairs.items():
        for i in pair:
            appearances[i] += count
    for i, count in appearances.items():
        assert abs(left[i] / count - 0.5) < 0.03


def test_it_needs_two_positive_weights():
    with pytest.raises(NotEnoughContestants, match="at least two"):
        pair_draw([1.0, 0.0])
