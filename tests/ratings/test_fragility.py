"""Fragility against brute force: every multiset of up to M removed votes refitted."""

import itertools

import numpy as np
import pytest

import ratings


def _board(n, votes, seed, ties=0.0):
    rng = np.random.default_rng(seed)
    true = np.linspace(1100, 1000, n)
    true[1] = true[0]  # a close race at the top
    a = rng.integers(0, n, votes)
    b = (a + rng.integers(1, n, votes)) % n
    p = 1 / (1 + 10 ** ((true[b] - true[a]) / 400))
    u = rng.random(votes)
    o = np.where(u < ties, ratings.TIE, np.where(u < ties + (1 - ties) * p, 0, 1))
    return a, b, o


def _top(n, a, b, o, counts, k):
    pc = ratings.aggregate(n, a, b, o, counts=counts)
    fit = ratings.fit_bt(pc)
    r = np.where(pc.votes() > 0, fit.ratings, -np.inf)
    return tuple(np.argsort(-r, kind="stable")[:k])


def _brute(n, a, b, o, k, most):
    """Smallest number of removed votes (<= most) that changes the top-k, else None."""
    code = (np.minimum(a, b) * n + np.maximum(a, b)) * 4 + np.where(
        o == ratings.TIE, 2, np.where((o == 0) == (a < b), 0, 1)
    )
    keys, counts = np.unique(code, return_counts=True)
    lo, hi, w = (keys // 4) // n, (keys // 4) % n, keys % 4
    ca = lo
    cb = hi
    co = np.where(w == 2, ratings.TIE, w)  # 0: lower id won (A_WINS), 1: higher id won
    base = _top(n, ca, cb, co, counts, k)
    for size in range(1, most + 1):
        for combo in itertools.combinations_with_replacement(range(keys.size), size):
            left = counts - np.bincount(combo, minlength=keys.size)
            if (left < 0).any():
                continue
            keep = left > 0
            if _top(n, ca[keep], cb[keep], co[keep], left[keep], k) != base:
                return size
    return None


@pytest.mark.parametrize(
    ("n", "votes", "k", "most", "ties", "seeds"),
    [
        (4, 600, 1, 4, 0.1, range(6)),
        (10, 2000, 1, 2, 0.0, range(6)),
        (5, 1500, 3, 3, 0.0, range(4)),
    ],
)
def test_fragility_equals_brute_force(n, votes, k, most, ties, seeds):
    found = 0
    for seed in seeds:
        a, b, o = _board(n, votes, seed, ties)
        exact = _brute(n, a, b, o, k, most)
        f = ratings.fragility(n, a, b, o, k=k)
        if exact is None:
            assert f.votes is None or f.votes > most, (seed, f)
        else:
            found += 1
            assert f.votes == exact, (seed, exact, f)
            left = list(zip(a, b, o, strict=True))
            for x, y, out, count in f.removed:  # the stated removal really flips the order
                for _ in range(count):
                    left.remove((x, y, out))
            la, lb, lo = (np.array(c) for c in zip(*left, strict=True))
            assert _top(n, la, lb, lo, None, k) != _top(n, a, b, o, None, k)
    assert found >= 1  # at least one board where brute force found a flip


def test_fragility_input():
    with pytest.raises(ValueError, match="same length"):
        ratings.fragility(3, [0, 1], [1], [0, 0])
    assert ratings.fragility(3, [], [], []).votes is None
