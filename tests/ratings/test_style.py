"""Style control: text features, contextual Bradley-Terry, recovery of a known length effect."""

import numpy as np
import pytest
from numpy.testing import assert_allclose
from scipy import optimize
from scipy.special import expit, log_expit

import ratings
from ratings import answer_features, battle_features, bootstrap, fit_style, sandwich
from ratings._style import StyleProblem
from tests.ratings.helpers import outcome_probs

FEATURE_CASES = [
    {
        "desc": "plain prose: words and punctuation are tokens",
        "text": "Hello, world! Two sentences.",
        "expected": [7, 0, 0, 0],
    },
    {
        "desc": "headers, list items and bold spans",
        "text": (
            "# Title\n\nIntro with **bold** and __also bold__.\n\n## Part\n- one\n- two\n1. three\n"
        ),
        "expected": [None, 2, 3, 2],
    },
    {
        "desc": "Markdown inside a fenced code block is not counted",
        "text": "Text\n```python\n# not a header\n- not a list\n**not bold**\n```\n- real item\n",
        "expected": [None, 0, 1, 0],
    },
    {
        "desc": "an unclosed fence hides the rest",
        "text": "**bold**\n```\n# hidden\n",
        "expected": [None, 0, 0, 1],
    },
]


@pytest.mark.parametrize("case", FEATURE_CASES, ids=lambda c: c["desc"])
def test_answer_features_known_answers(case):
    got = answer_features([case["text"]])[0]
    for value, want in zip(got, case["expected"], strict=True):
        if want is not None:
            assert value == want, case["desc"]
    assert got[0] == ratings.estimate_tokens(case["text"])


def test_real_token_counts_replace_the_estimate():
    got = answer_features(["a b c", "d"], token_counts=[120, 7])
    assert_allclose(got[:, 0], [120, 7])


def test_battle_features_are_standardised_ratios():
    fa = np.array([[10.0, 0], [30, 0], [5, 0]])
    fb = np.array([[10.0, 0], [10, 0], [15, 0]])
    sf = battle_features(fa, fb, names=["tokens", "headers"])
    ratio = (fa[:, 0] - fb[:, 0]) / (fa[:, 0] + fb[:, 0] + 1)
    assert_allclose(sf.values[:, 0], (ratio - ratio.mean()) / ratio.std())
    assert_allclose(sf.values[:, 1], 0.0)  # a constant column stays 0 (coefficient 0)
    assert battle_features(fa, fb, names=["tokens", "headers"], columns=["tokens"]).names == (
        "tokens",
    )


def _simulate(seed, n=20, m=60_000, beta=0.4):
    """Better models write longer answers; longer answers win more often by ``beta``."""
    rng = np.random.default_rng(seed)
    theta = rng.normal(0, 0.5, n)
    theta -= theta.mean()
    verbosity = 0.8 * theta / theta.std() * 0.5 + rng.normal(0, 0.2, n)
    a = rng.integers(0, n, m)
    b = (a + rng.integers(1, n, m)) % n
    la = np.exp(6 + verbosity[a] + rng.normal(0, 0.3, m))
    lb = np.exp(6 + verbosity[b] + rng.normal(0, 0.3, m))
    sf = battle_features(la[:, None], lb[:, None], names=["tokens"])
    d = theta[a] - theta[b] + beta * sf.values[:, 0]
    o = (rng.random(m)[:, None] > np.cumsum(outcome_probs(d), axis=1)).sum(axis=1)
    return theta, a, b, o, sf


@pytest.fixture(scope="module")
def length_effect():
    theta, a, b, o, sf = _simulate(0)
    fit = fit_style(theta.size, a, b, o, sf)
    plain = ratings.bradley_terry(theta.size, a, b, o)
    return theta, fit, plain, sandwich(fit), bootstrap(fit, n_resamples=40, rng=0)


def test_the_length_coefficients_interval_contains_the_true_effect(length_effect):
    _, fit, _, sand, boot = length_effect
    assert sand.coef_lower[0] < 0.4 < sand.coef_upper[0]
    assert boot.coef_lower[0] < 0.4 < boot.coef_upper[0]
    assert 0.8 < boot.coef_se[0] / sand.coef_se[0] < 1.25


def test_style_controlled_ratings_recover_the_truth_that_the_plain_fit_misses(length_effect):
    theta, fit, plain, sand, _ = length_effect
    truth = fit.to_ratings(theta)
    covered = np.mean((sand.lower <= truth) & (truth <= sand.upper))
    assert covered >= 0.85
    plain_iv = sandwich(plain)
    plain_covered = np.mean((plain_iv.lower <= truth) & (truth <= plain_iv.upper))
    assert plain_covered < 0.5
    assert np.abs(plain.ratings - truth).max() > 3 * np.abs(fit.ratings - truth).max()


def test_zero_style_features_give_the_plain_bradley_terry_fit():
    theta, a, b, o, _ = _simulate(1, m=5000)
    fit = fit_style(theta.size, a, b, o, np.zeros((a.size, 2)))
    assert_allclose(fit.ratings, ratings.bradley_terry(theta.size, a, b, o).ratings, atol=1e-8)
    assert_allclose(fit.coef, 0.0)


def test_it_equals_a_brute_force_penalised_logistic_regression():
    rng = np.random.default_rng(2)
    n, m, l2 = 5, 400, 2.0
    a = rng.integers(0, n, m)
    b = (a + rng.integers(1, n, m)) % n
    o = rng.choice(4, m, p=[0.4, 0.35, 0.15, 0.1])
    x = rng.normal(size=(m, 2))
    fit = fit_style(n, a, b, o, x, l2=l2)
    y = np.array([1.0, 0.0, 0.5, 0.5])[o]

    def nll(p):
        th = np.concatenate([[0.0], p[: n - 1]])
        e = th[a] - th[b] + x @ p[n - 1 :]
        return (
            -np.sum(y * log_expit(e) + (1 - y) * log_expit(-e)) + 0.5 * l2 * p[n - 1 :] @ p[n - 1 :]
        )

    res = optimize.minimize(nll, np.zeros(n + 1), method="BFGS", options={"gtol": 1e-11})
    th = np.concatenate([[0.0], res.x[: n - 1]])
    assert_allclose(fit.theta, th - th.mean(), atol=1e-6)
    assert_allclose(fit.coef, res.x[n - 1 :], atol=1e-6)


def test_style_gradient_and_hessian_match_finite_differences():
    rng = np.random.default_rng(3)
    n, m = 5, 300
    a = rng.integers(0, n, m)
    b = (a + rng.integers(1, n, m)) % n
    y = rng.choice([0.0, 0.5, 1.0], m)
    prob = StyleProblem(n, a, b, y, rng.uniform(0.5, 2, m), rng.normal(size=(m, 2)), 1.5, 0.0)
    x0 = rng.normal(size=n + 2)

    def f(p):
        return prob.objective(p[:n], p[n:])

    def g(p):
        return prob.gradient(p[:n], p[n:])

    assert optimize.check_grad(f, g, x0) < 1e-6 * np.linalg.norm(g(x0))
    numeric = optimize.approx_fprime(x0, g, 1e-7)
    assert_allclose(-prob.information(x0[:n], x0[n:]), numeric, atol=1e-4)


def test_a_style_leaderboard_reports_coefficients_in_elo_points():
    theta, a, b, o, sf = _simulate(4, m=20_000)
    board = ratings.leaderboard(theta.size, a, b, o, style=sf, ci="sandwich", rng=0)
    assert board.style_names == ("tokens",)
    assert board.style_coef[0] == pytest.approx(ratings.SCALE * board.fit.coef[0])
    assert board.style_lower[0] < board.style_coef[0] < board.style_upper[0]
    assert board.to_dict()["style"][0]["feature"] == "tokens"
    assert expit(0) == 0.5
