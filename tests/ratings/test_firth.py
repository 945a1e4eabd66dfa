"""Bias-reduced Bradley-Terry: known answers, an independent optimiser, and the bias itself."""

import numpy as np
import pytest
from scipy.optimize import minimize
from scipy.special import expit, logit

import ratings


def _battles(rng, true, design, n_votes):
    i, j = np.triu_indices(true.size, 1)
    k = rng.choice(i.size, n_votes, p=design)
    a, b = i[k], j[k]
    win = rng.random(n_votes) < expit(true[a] - true[b])
    return a, b, np.where(win, ratings.A_WINS, ratings.B_WINS), design[k]


def test_two_models_give_firths_binomial_estimate():
    # Firth's estimate of a binomial log-odds is logit((wins + 1/2) / (n + 1)).
    a = np.zeros(10, dtype=int)
    b = np.ones(10, dtype=int)
    o = np.array([ratings.A_WINS] * 7 + [ratings.B_WINS] * 3)
    fit = ratings.bradley_terry(2, a, b, o, bias_reduction=True)
    assert fit.bias_reduced
    assert fit.theta[0] - fit.theta[1] == pytest.approx(logit(7.5 / 11), abs=1e-9)
    mle = ratings.bradley_terry(2, a, b, o)
    assert mle.theta[0] - mle.theta[1] == pytest.approx(logit(0.7), abs=1e-9)
    # Ten wins of ten: no MLE (the default fit adds a prior), but Firth's estimate is finite.
    sweep = np.full(10, ratings.A_WINS)
    assert ratings.bradley_terry(2, a, b, sweep).prior > 0
    fit = ratings.bradley_terry(2, a, b, sweep, bias_reduction=True)
    assert fit.prior == 0 and fit.notes == ()
    assert fit.theta[0] - fit.theta[1] == pytest.approx(logit(10.5 / 11), abs=1e-9)


def test_unweighted_it_maximises_the_jeffreys_penalised_likelihood():
    rng = np.random.default_rng(3)
    true = np.array([1.2, 0.5, 0.0, -0.4, -1.5])
    design = np.arange(1, 11, dtype=float)
    a, b, o, _ = _battles(rng, true, design / design.sum(), 150)
    n = true.size
    i, j = np.triu_indices(n, 1)
    wins = np.zeros((n, n))
    np.add.at(wins, (np.where(o == ratings.A_WINS, a, b), np.where(o == ratings.A_WINS, b, a)), 1)

    def minus_penalised(t):
        d = t[:, None] - t[None, :]
        ll = (wins * np.log(expit(d))).sum()
        p = expit(t[i] - t[j])
        v = (wins[i, j] + wins[j, i]) * p * (1 - p)
        info = np.zeros((n, n))
        info[i, j] = info[j, i] = -v
        info -= np.diag(info.sum(axis=1))
        return -(ll + 0.5 * np.linalg.slogdet(info + 1.0 / n)[1])

    best = minimize(minus_penalised, np.zeros(n), method="BFGS", options={"gtol": 1e-10}).x
    fit = ratings.bradley_terry(n, a, b, o, bias_reduction=True)
    np.testing.assert_allclose(fit.theta, best - best.mean(), atol=1e-6)
    assert np.abs(fit.theta - ratings.bradley_terry(n, a, b, o).theta).max() > 0.01


def test_equal_weights_change_nothing_and_the_mle_is_untouched_by_default():
    rng = np.random.default_rng(4)
    true = np.array([0.8, 0.1, -0.3, -0.6])
    a, b, o, _ = _battles(rng, true, np.full(6, 1 / 6), 200)
    plain = ratings.bradley_terry(4, a, b, o, bias_reduction=True)
    weighted = ratings.bradley_terry(4, a, b, o, np.full(a.size, 3.5), bias_reduction=True)
    np.testing.assert_allclose(weighted.theta, plain.theta, atol=1e-9)
    assert not ratings.bradley_terry(4, a, b, o).bias_reduced


def test_it_removes_most_of_the_bias_of_weighted_and_unweighted_fits():
    """A design that spends most votes on the top pair leaves the others with few votes: the
    MLE spreads them out, and the top model's error against the common centre shows it."""
    rng = np.random.default_rng(5)
    true = np.array([1.0, 0.9, 0.2, -0.3, -0.8, -1.0])
    true -= true.mean()
    design = np.full(15, 1.0)
    design[0] = 40.0  # pair (0, 1)
    design /= design.sum()
    errors = {k: [] for k in ("mle", "firth", "mle_ipw", "firth_ipw")}
    for _ in range(400):
        a, b, o, p = _battles(rng, true, design, 400)
        w = ratings.ipw_weights(p, 1 / 15)
        for name, weights, br in (
            ("mle", None, False),
            ("firth", None, True),
            ("mle_ipw", w, False),
            ("firth_ipw", w, True),
        ):
            fit = ratings.bradley_terry(6, a, b, o, weights, bias_reduction=br)
            errors[name].append(fit.theta[[4, 5]].mean() - true[[4, 5]].mean())
    bias = {k: np.mean(v) for k, v in errors.items()}
    se = {k: np.std(v) / np.sqrt(len(v)) for k, v in errors.items()}
    assert bias["mle"] < -3 * se["mle"]  # the bottom two come out too low
    assert bias["mle_ipw"] < -3 * se["mle_ipw"]
    assert abs(bias["firth"]) < abs(bias["mle"]) / 3
    assert abs(bias["firth_ipw"]) < abs(bias["mle_ipw"]) / 3
    assert abs(bias["firth_ipw"]) < 2 * se["firth_ipw"]


def test_it_is_refused_where_it_does_not_apply():
    a, b = np.array([0, 1, 2]), np.array([1, 2, 0])
    o = np.array([ratings.A_WINS, ratings.TIE, ratings.B_WINS])
    with pytest.raises(ValueError, match="bootstrap"):
        ratings.leaderboard(3, a, b, o, bias_reduction=True)
    with pytest.raises(ValueError, match="method=.bt."):
        ratings.leaderboard(3, a, b, o, method="davidson", ci="sandwich", bias_reduction=True)
    with pytest.raises(ValueError, match="style"):
        ratings.leaderboard(3, a, b, o, ci="sandwich", style=np.ones(3), bias_reduction=True)
    board = ratings.leaderboard(3, a, b, o, ci="sandwich", bias_reduction=True)
    assert np.isfinite(board.rating).all() and (board.lower < board.rating).all()
