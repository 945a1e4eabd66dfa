"""Aggregation of battles to (pair, outcome) counts."""

import importlib

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

from ratings import A_WINS, B_WINS, BOTH_BAD, TIE, PairCounts, aggregate


def _brute_force(n, a, b, o, w):
    cells = {}
    for ai, bi, oi, wi in zip(a, b, o, w, strict=True):
        i, j = min(ai, bi), max(ai, bi)
        code = oi if ai < bi or oi >= TIE else {A_WINS: B_WINS, B_WINS: A_WINS}[oi]
        cell = cells.setdefault((i, j), np.zeros((3, 4)))
        cell[0, code] += 1
        cell[1, code] += wi
        cell[2, code] += wi * wi
    return cells


@pytest.fixture(params=["dense", "unique"])
def path(request, monkeypatch):
    if request.param == "unique":  # the O(N log N) path used for very many models
        module = importlib.import_module("ratings._aggregate")
        monkeypatch.setattr(module, "_DENSE_MAX_BINS", 0)
    return request.param


def test_it_counts_each_canonical_pair_and_outcome_like_a_loop(path):
    rng = np.random.default_rng(0)
    n, m = 6, 500
    a = rng.integers(0, n, m)
    b = (a + rng.integers(1, n, m)) % n
    o = rng.integers(0, 4, m)
    w = rng.uniform(0.1, 3, m)
    counts = aggregate(n, a, b, o, w)
    expected = _brute_force(n, a, b, o, w)
    assert counts.n_pairs == len(expected)
    for k, (i, j) in enumerate(zip(counts.pair_i, counts.pair_j, strict=True)):
        cell = expected[(i, j)]
        assert_array_equal(counts.counts[k], cell[0])
        assert_allclose(counts.weights[k], cell[1])
        assert_allclose(counts.weights_sq[k], cell[2])
    assert counts.n_battles == m


def test_pre_aggregated_rows_equal_the_repeated_battles(path):
    a, b, o = np.array([0, 1, 2]), np.array([1, 0, 0]), np.array([A_WINS, TIE, BOTH_BAD])
    k = np.array([3, 2, 4])
    w = np.array([1.5, 1.0, 0.5])
    grouped = aggregate(3, a, b, o, w, counts=k)
    flat = aggregate(3, np.repeat(a, k), np.repeat(b, k), np.repeat(o, k), np.repeat(w, k))
    assert_array_equal(grouped.counts, flat.counts)
    assert_allclose(grouped.weights, flat.weights)
    assert_allclose(grouped.weights_sq, flat.weights_sq)


def test_per_model_totals():
    counts = aggregate(3, [0, 1, 2, 0], [1, 0, 0, 2], [A_WINS, A_WINS, TIE, BOTH_BAD])
    assert_array_equal(counts.votes(), [4, 2, 2])
    assert_array_equal(counts.wins(), [1, 1, 0])
    assert_array_equal(counts.losses(), [1, 1, 0])
    assert_array_equal(counts.ties(), [2, 0, 2])
    assert_array_equal(counts.ties(both_bad=False), [1, 0, 1])


def test_adding_counts_equals_aggregating_all_battles():
    rng = np.random.default_rng(1)
    a = rng.integers(0, 5, 100)
    b = (a + rng.integers(1, 5, 100)) % 5
    o = rng.integers(0, 4, 100)
    both = aggregate(5, a[:60], b[:60], o[:60]) + aggregate(5, a[60:], b[60:], o[60:])
    whole = aggregate(5, a, b, o)
    assert_array_equal(both.pair_i, whole.pair_i)
    assert_array_equal(both.counts, whole.counts)


def test_subset_reindexes_and_drops_pairs_with_other_models():
    counts = aggregate(4, [0, 1, 2, 3], [1, 2, 3, 0], [A_WINS] * 4)
    sub = counts.subset([1, 2, 3])
    assert sub.n_models == 3
    assert_array_equal(sub.pair_i, [0, 1])
    assert_array_equal(sub.pair_j, [1, 2])


def test_no_battles_give_empty_counts():
    counts = aggregate(3, [], [], [])
    assert counts.n_pairs == 0 and counts.n_battles == 0
    assert isinstance(counts, PairCounts)
