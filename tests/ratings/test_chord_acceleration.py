"""The accelerated chord solve of bootstrap rounds at its default tolerance against exact fits."""

import numpy as np
import pytest

from ratings import aggregate, bootstrap, fit_bt, fit_davidson
from ratings._fit import fitted_pairs
from ratings._intervals import _Chord
from ratings._resample import MultinomialSampler
from ratings._solver import PairData, newton_fit
from tests.ratings.helpers import LLMFAO, load_pairs


@pytest.mark.parametrize("method", ["bt", "davidson"])
def test_rounds_at_the_default_tolerance_are_within_2e_6_of_the_exact_refits(method):
    names, a, b, o = load_pairs(LLMFAO)
    n = len(names)
    counts = aggregate(n, a, b, o)
    fit = fit_bt(counts) if method == "bt" else fit_davidson(counts)
    data, cells = fitted_pairs(fit)
    perm = np.argsort(cells.sum(axis=1), kind="stable")
    x = MultinomialSampler(cells[perm].T.ravel()).draw(np.random.default_rng(3), 20)
    x = x.astype(float).reshape(3, -1, 20)
    theta, eta, _ = _Chord(fit, 1e-6, perm).solve(x[0], x[1], x[2])
    for r in range(20):
        w = np.column_stack([x[0][:, r], x[1][:, r], x[2][:, r]])
        one = PairData(n, data.i[perm], data.j[perm], w)
        exact, exact_eta, _, _ = newton_fit(method, one, prior=fit.prior, tol=1e-13)
        # tol bounds the last chord step; the error left is a fraction of it.
        assert np.max(np.abs(theta[r] - exact)) < 2e-6
        if method == "davidson":
            assert abs(eta[r] - exact_eta) < 2e-6


def test_percentiles_match_those_of_exact_per_round_fits():
    names, a, b, o = load_pairs(LLMFAO)
    n = len(names)
    fit = fit_bt(aggregate(n, a, b, o))
    fast = bootstrap(fit, n_resamples=200, rng=5)
    exact = bootstrap(fit, n_resamples=200, rng=5, tol=1e-12)
    # The same resamples (the seed fixes them), solved to 1e-6 and to 1e-12: the percentile
    # intervals differ by rounding-level amounts, far below their Monte Carlo error (~1 Elo).
    assert np.max(np.abs(fast.lower - exact.lower)) < 1e-3
    assert np.max(np.abs(fast.upper - exact.upper)) < 1e-3
