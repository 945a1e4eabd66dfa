"""Davidson tie model: known answers, derivatives, tie parameter and its intervals."""

import numpy as np
import pytest
from numpy.testing import assert_allclose
from scipy import optimize

import ratings
from ratings import A_WINS, B_WINS, TIE, aggregate, fit_davidson
from ratings._solver import PairData, information, pair_terms
from tests.ratings.helpers import GOLDEN, LLMFAO, golden, load_pairs, outcome_probs

CASES = [
    {"desc": "Evalica simple", "name": "simple", "path": GOLDEN / "simple.csv"},
    {"desc": "Evalica food", "name": "food", "path": GOLDEN / "food.csv"},
    {"desc": "LLMFAO crowd votes", "name": "llmfao", "path": LLMFAO},
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c["name"])
def test_it_matches_evalicas_newman_scores_which_solve_davidsons_model(case):
    # Evalica's `newman` (Newman 2023) iterates to the maximum-likelihood Davidson fit; its
    # scores are strengths pi_i = exp(theta_i) up to a common factor.
    names, a, b, o = load_pairs(case["path"])
    fit = fit_davidson(aggregate(len(names), a, b, o), prior=0)
    gold = golden(case["name"], "newman")
    log_gold = np.log([gold[m] for m in names])
    assert_allclose(fit.theta, log_gold - log_gold.mean(), atol=1e-6, err_msg=case["desc"])


def test_its_gradient_and_hessian_match_finite_differences():
    rng = np.random.default_rng(7)
    n = 6
    iu, ju = np.triu_indices(n, 1)
    w = rng.integers(1, 15, size=(iu.size, 3)).astype(float)
    data = PairData(n, iu, ju, w)
    wt = (w[:, 0], w[:, 1], w[:, 2])
    x0 = np.append(rng.normal(size=n), 0.3)

    def loglik(x):
        return float(pair_terms("davidson", data.diff(x[:n]), x[n], wt)["ll"])

    def grad(x):
        t = pair_terms("davidson", data.diff(x[:n]), x[n], wt)
        return np.append(data.scatter(t["gd"]), t["ge"])

    err = optimize.check_grad(loglik, grad, x0)
    assert err < 1e-6 * np.linalg.norm(grad(x0))
    numeric = optimize.approx_fprime(x0, grad, 1e-7)
    assert_allclose(-information("davidson", data, x0[:n], x0[n], 0.0), numeric, atol=1e-4)


def test_it_recovers_the_tie_parameter_of_simulated_davidson_data():
    rng = np.random.default_rng(8)
    n, m, nu = 8, 40_000, 0.8
    theta = rng.normal(0, 0.7, n)
    theta -= theta.mean()
    a = rng.integers(0, n, m)
    b = (a + rng.integers(1, n, m)) % n
    half = 0.5 * (theta[a] - theta[b])
    z = np.exp(half) + np.exp(-half) + nu
    probs = np.stack([np.exp(half) / z, np.exp(-half) / z, nu / z], axis=1)
    o = (rng.random(m)[:, None] > np.cumsum(probs, axis=1)).sum(axis=1)
    fit = fit_davidson(aggregate(n, a, b, o))
    iv = ratings.sandwich(fit)
    assert iv.tie_lower < nu < iv.tie_upper
    boot = ratings.bootstrap(fit, n_resamples=200, rng=1)
    assert boot.tie_lower < nu < boot.tie_upper
    assert np.all(np.abs(fit.theta - theta) < 4 * iv.se / ratings.SCALE)


def test_it_refuses_data_without_ties():
    counts = aggregate(3, [0, 1, 2, 1], [1, 2, 0, 0], [A_WINS, A_WINS, A_WINS, B_WINS])
    with pytest.raises(ratings.DegenerateDataError, match="no ties"):
        fit_davidson(counts)


def test_a_tie_outcome_model_with_score_expit_d_gives_the_same_order_as_bt():
    rng = np.random.default_rng(9)
    theta = np.linspace(-1, 1, 6)
    a = rng.integers(0, 6, 20_000)
    b = (a + rng.integers(1, 6, a.size)) % 6
    probs = outcome_probs(theta[a] - theta[b])
    o = (rng.random(a.size)[:, None] > np.cumsum(probs, axis=1)).sum(axis=1)
    counts = aggregate(6, a, b, o)
    assert np.all(np.diff(fit_davidson(counts).ratings) > 0)
    assert np.all(np.diff(ratings.fit_bt(counts).ratings) > 0)
    assert TIE in o


def test_a_diverging_davidson_fit_gets_the_prior_or_an_error_naming_the_models():
    # 0-1 tie, 1 beat 2, 0 beat 2 and tied 2: ties count half, so the BT MLE exists, but
    # Davidson's strengths of 1 and 2 and its tie parameter diverge together.
    counts = aggregate(3, [0, 1, 2, 0], [1, 2, 0, 2], [TIE, A_WINS, B_WINS, TIE])
    fit = fit_davidson(counts)
    assert fit.prior == ratings.DEFAULT_PRIOR
    assert np.all(np.isfinite(fit.ratings)) and np.isfinite(fit.tie)
    assert any("[1, 2]" in note for note in fit.notes)
    with pytest.raises(ratings.DegenerateDataError, match=r"\[1, 2\]"):
        fit_davidson(counts, prior=0)


def test_bootstrap_rounds_without_ties_stay_finite():
    names, a, b, o = load_pairs(GOLDEN / "food.csv")  # 3 ties in 30 battles
    fit = fit_davidson(aggregate(len(names), a, b, o))
    iv = ratings.bootstrap(fit, n_resamples=200, rng=0)
    assert iv.n_degenerate > 0
    assert np.all(np.isfinite(iv.lower)) and np.all(np.isfinite(iv.upper))
    assert 0 < iv.tie_lower < fit.tie < iv.tie_upper
