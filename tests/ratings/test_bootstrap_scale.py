"""The bootstrap on larger, skewed boards: the single-precision chord against exact refits of
the same resamples, and the percentiles against a textbook bootstrap (numpy's multinomial
draws, each round refitted by the point fit)."""

import numpy as np
import pytest

from ratings import bootstrap, fit_bt
from ratings._fit import fitted_pairs
from ratings._intervals import _GROUPS, _Chord
from ratings._resample import MultinomialSampler
from ratings._solver import PairData, newton_fit
from tests.ratings.helpers import simulate_counts

TOL = 1e-6  # the bootstrap's default tolerance, natural-log units


def _skewed_board(n, n_battles, seed):
    """Pair frequencies proportional to products of log-normal popularities (a few pairs
    with thousands of battles, many with one or two), about 30% ties."""
    rng = np.random.default_rng(seed)
    theta = rng.normal(0.0, 0.55, n)
    pop = rng.lognormal(0.0, 1.0, n)
    weight = np.outer(pop, pop)
    np.fill_diagonal(weight, 0.0)
    return fit_bt(simulate_counts(theta, weight, n_battles, rng, tie_scale=0.3))


@pytest.fixture(scope="module")
def board():
    return _skewed_board(150, 300_000, seed=4)


def test_rounds_in_single_precision_are_within_tol_of_exact_refits_of_the_same_resamples(board):
    data, cells = fitted_pairs(board)
    n_pairs = cells.shape[0]
    assert n_pairs > 5_000  # enough pairs per model for the rounding the groups avoid
    perm = np.concatenate([np.arange(k, n_pairs, _GROUPS) for k in range(_GROUPS)])
    rounds = 24
    x = MultinomialSampler(cells[perm].T.ravel()).draw(np.random.default_rng(9), rounds)
    x = x.reshape(3, n_pairs, rounds)
    theta, _, n_degenerate = _Chord(board, TOL, perm).solve(x[0], x[1], x[2])
    assert n_degenerate == 0
    errors = []
    for r in range(rounds):
        w = np.column_stack([x[0][:, r], x[1][:, r], x[2][:, r]])
        one = PairData(board.n_models, data.i[perm], data.j[perm], w)
        exact, _, _, _ = newton_fit("bt", one, prior=board.prior, tol=1e-13)
        errors.append(np.max(np.abs(theta[r] - exact)))
    # tol bounds the last step; the error left, rounding included, is below it.
    assert max(errors) < TOL, max(errors)


def test_percentiles_agree_with_a_textbook_bootstrap_within_monte_carlo_error():
    fit = _skewed_board(40, 60_000, seed=5)
    data, cells = fitted_pairs(fit)
    n, rounds = fit.n_models, 1500
    ours = bootstrap(fit, n_resamples=rounds, rng=1)
    # Textbook: each round an independent Multinomial(N, cells / N) draw from numpy, fitted
    # from scratch by Newton's method (the point fit's solver).
    rng = np.random.default_rng(2)
    flat = cells.ravel()
    total = int(flat.sum())
    ref = np.empty((rounds, n))
    for r in range(rounds):
        w = rng.multinomial(total, flat / total).reshape(cells.shape).astype(float)
        ref[r], _, _, _ = newton_fit("bt", PairData(n, data.i, data.j, w), prior=0.0, tol=1e-10)
    ref_ratings = fit.to_ratings(ref)
    lower, upper = np.quantile(ref_ratings, [0.025, 0.975], axis=0)
    se = ref_ratings.std(axis=0, ddof=1)
    # Monte Carlo error of a 2.5% quantile from R draws of a near-normal statistic:
    # sd * sqrt(p (1 - p) / R) / phi(z_p) = 2.67 sd / sqrt(R); the difference of two
    # independent estimates has sqrt(2) times that. 4.5 of those over 80 bounds.
    mc = 2.67 * se * np.sqrt(2.0 / rounds)
    assert np.all(np.abs(ours.lower - lower) < 4.5 * mc)
    assert np.all(np.abs(ours.upper - upper) < 4.5 * mc)
    # Standard deviations: relative MC error sqrt(1 / (2 R)) each.
    assert np.all(np.abs(ours.se / se - 1) < 4.5 * np.sqrt(2.0 / (2 * rounds)))
    assert ours.se.mean() > 5  # several Elo points: the comparison is not trivial
