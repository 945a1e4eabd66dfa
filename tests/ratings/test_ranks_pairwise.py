"""Ranks (rank, rank UB, bootstrap rank range) and pairwise predictions."""

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from scipy.special import expit
from scipy.stats import norm

import ratings
from ratings import aggregate, bootstrap, fit_bt, pairwise, rank_stats, sandwich
from ratings._fit import fitted_pairs
from tests.ratings.helpers import LLMFAO, load_pairs

RANK_CASES = [
    {
        "desc": "clear order, overlapping neighbours",
        "ratings": [1200, 1150, 1100, 1000],
        "lower": [1180, 1120, 1090, 980],
        "upper": [1220, 1185, 1130, 1020],
        "rank": [1, 2, 3, 4],
        "rank_ub": [1, 1, 2, 4],
    },
    {
        "desc": "equal ratings share a rank",
        "ratings": [1100, 1100, 1000],
        "lower": [1050, 1050, 990],
        "upper": [1150, 1150, 1010],
        "rank": [1, 1, 3],
        "rank_ub": [1, 1, 3],
    },
]


@pytest.mark.parametrize("case", RANK_CASES, ids=lambda c: c["desc"])
def test_rank_and_rank_ub_known_answers(case):
    r = rank_stats(case["ratings"], case["lower"], case["upper"])
    assert_array_equal(r.rank, case["rank"])
    assert_array_equal(r.rank_ub, case["rank_ub"])


def test_unranked_models_get_rank_zero_and_do_not_push_others_down():
    r = rank_stats(
        [1300, 1200, 1100], [1250, 1150, 1050], [1350, 1250, 1150], ranked=[False, True, True]
    )
    assert_array_equal(r.rank, [0, 1, 2])
    assert_array_equal(r.rank_ub, [0, 1, 1])


def test_the_rank_range_comes_from_the_rank_distribution_over_samples():
    rng = np.random.default_rng(0)
    samples = np.column_stack(
        [rng.normal(1100, 10, 2000), rng.normal(1095, 10, 2000), rng.normal(900, 10, 2000)]
    )
    r = rank_stats(samples.mean(axis=0), samples=samples)
    assert_array_equal(r.rank_lower, [1, 1, 3])
    assert_array_equal(r.rank_upper, [2, 2, 3])
    assert_allclose(r.rank_probs.sum(axis=1), 1.0)
    assert r.rank_probs[2, 2] == 1.0


@pytest.fixture(scope="module")
def llmfao_fit():
    names, a, b, o = load_pairs(LLMFAO)
    return fit_bt(aggregate(len(names), a, b, o))


def test_pairwise_probability_is_expit_of_the_gap_and_complementary(llmfao_fit):
    pw = pairwise(llmfao_fit, sandwich(llmfao_fit))
    th = llmfao_fit.theta
    assert_allclose(pw.prob, expit(th[:, None] - th[None, :]))
    assert_allclose(pw.prob + pw.prob.T, 1.0)
    assert np.all(pw.lower <= pw.prob + 1e-12) and np.all(pw.prob <= pw.upper + 1e-12)
    assert_array_equal(pw.significant, pw.significant.T)


def test_pairwise_significance_agrees_with_the_gap_interval(llmfao_fit):
    iv = sandwich(llmfao_fit)
    pw = pairwise(llmfao_fit, iv)
    z = norm.ppf(0.975)
    i, j = np.unravel_index(np.argmax(pw.prob), pw.prob.shape)
    var = iv.cov[i, i] + iv.cov[j, j] - 2 * iv.cov[i, j]
    d = llmfao_fit.theta[i] - llmfao_fit.theta[j]
    assert pw.significant[i, j] == (abs(d) > z * np.sqrt(var))
    assert pw.significant.any() and not pw.significant.all()


def test_votes_needed_is_zero_when_separated_and_makes_the_gap_significant(llmfao_fit):
    iv = sandwich(llmfao_fit)
    pw = pairwise(llmfao_fit, iv)
    assert np.all(pw.votes_needed[pw.significant] == 0)
    open_pairs = ~pw.significant & ~np.eye(len(pw.prob), dtype=bool)
    i, j = np.argwhere(open_pairs)[0]
    m = pw.votes_needed[i, j]
    assert 0 < m < np.inf
    # With m more votes the precision of the gap grows by m * v; then |d| / se = z.
    p = pw.prob[i, j]
    w = fitted_pairs(llmfao_fit)[0].w
    t = w[:, 2].sum() / w.sum()
    v = (p * (1 - p)) ** 2 / (p * (1 - p) - t / 4)
    s = iv.cov[i, i] + iv.cov[j, j] - 2 * iv.cov[i, j]
    d = llmfao_fit.theta[i] - llmfao_fit.theta[j]
    z = norm.ppf(0.975)
    assert abs(d) * np.sqrt(1 / s + m * v) >= z
    assert abs(d) * np.sqrt(1 / s + (m - 1) * v) < z


def test_bootstrap_pairwise_intervals_match_the_sandwich_roughly(llmfao_fit):
    boot = pairwise(llmfao_fit, bootstrap(llmfao_fit, n_resamples=300, rng=0))
    sand = pairwise(llmfao_fit, sandwich(llmfao_fit))
    width_b = boot.upper - boot.lower
    width_s = sand.upper - sand.lower
    off = ~np.eye(len(width_b), dtype=bool)
    assert 0.8 < np.median(width_b[off] / width_s[off]) < 1.2


def test_davidson_pairwise_scores_count_ties_half():
    names, a, b, o = load_pairs(LLMFAO)
    fit = ratings.fit_davidson(aggregate(len(names), a, b, o))
    pw = pairwise(fit)
    assert_allclose(pw.prob + pw.prob.T, 1.0)
    assert_allclose(np.diag(pw.prob), 0.5)


def test_pairwise_bounds_equal_brute_force_percentiles_in_both_directions():
    rng = np.random.default_rng(5)
    n, n_battles = 12, 3000
    a = rng.integers(0, n, n_battles)
    b = (a + 1 + rng.integers(0, n - 1, n_battles)) % n
    o = rng.integers(0, 3, n_battles)
    board = ratings.leaderboard(n, a, b, o, rng=2, n_resamples=400)
    pw = ratings.pairwise(board.fit, board.intervals)
    th = board.intervals.theta_samples
    for i, j in [(0, 5), (5, 0), (3, 11), (11, 3)]:
        gap = th[:, i] - th[:, j]
        lo, hi = np.quantile(gap, [0.025, 0.975])
        expected = 1 / (1 + np.exp(-np.array([lo, hi])))
        np.testing.assert_allclose([pw.lower[i, j], pw.upper[i, j]], expected, rtol=1e-12)
        assert pw.significant[i, j] == (lo > 0 or hi < 0)
