"""Bradley-Terry fit: known answers, brute force, derivatives, invariances, degenerate data."""

import numpy as np
import pytest
from numpy.testing import assert_allclose
from scipy import optimize
from scipy.special import log_expit

import ratings
from ratings import A_WINS, B_WINS, BOTH_BAD, TIE, aggregate, fit_bt
from ratings._solver import PairData, information, pair_terms
from tests.ratings.helpers import GOLDEN, LLMFAO, golden, load_pairs

RTOL = 1e-6
ATOL = 1e-6

GOLDEN_CASES = [
    {
        "desc": "Evalica simple: 5 items, 16 comparisons, mostly ties",
        "name": "simple",
        "path": GOLDEN / "simple.csv",
    },
    {"desc": "Evalica food: 5 dishes, 30 comparisons", "name": "food", "path": GOLDEN / "food.csv"},
    {"desc": "LLMFAO crowd votes: 59 models, 8,931 votes", "name": "llmfao", "path": LLMFAO},
]


@pytest.mark.parametrize("case", GOLDEN_CASES, ids=lambda c: c["name"])
def test_it_matches_evalica_golden_bradley_terry_scores(case):
    names, a, b, o = load_pairs(case["path"])
    fit = fit_bt(aggregate(len(names), a, b, o), prior=0)
    gold = golden(case["name"], "bradley_terry")
    expected = np.array([gold[m] for m in names])
    strength = np.exp(fit.theta)
    assert_allclose(strength / strength.sum(), expected, rtol=RTOL, err_msg=case["desc"])
    assert fit.prior == 0 and fit.notes == ()


def _brute_force_theta(n, a, b, o, w=None):
    """Row-level logistic regression (ties: half a win and half a loss), theta_0 pinned."""
    y = np.array([1.0, 0.0, 0.5, 0.5])[o]
    w = np.ones(a.size) if w is None else w

    def nll(free):
        th = np.concatenate([[0.0], free])
        d = th[a] - th[b]
        return -np.sum(w * (y * log_expit(d) + (1 - y) * log_expit(-d)))

    res = optimize.minimize(nll, np.zeros(n - 1), method="BFGS", options={"gtol": 1e-11})
    th = np.concatenate([[0.0], res.x])
    return th - th.mean()


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_it_equals_a_brute_force_row_level_logistic_regression(seed):
    rng = np.random.default_rng(seed)
    n, m = 6, 300
    a = rng.integers(0, n, m)
    b = (a + rng.integers(1, n, m)) % n
    o = rng.choice(4, m, p=[0.4, 0.3, 0.2, 0.1])
    w = rng.uniform(0.5, 2.0, m)
    fit = fit_bt(aggregate(n, a, b, o, w), prior=0)
    assert_allclose(fit.theta, _brute_force_theta(n, a, b, o, w), atol=ATOL)


def _loglik(theta, data):
    w = (data.w[:, 0], data.w[:, 1], data.w[:, 2])
    return float(pair_terms("bt", data.diff(theta), None, w)["ll"])


def test_its_gradient_and_hessian_match_finite_differences():
    rng = np.random.default_rng(3)
    n = 7
    w = rng.integers(1, 20, size=(21, 3)).astype(float)
    iu, ju = np.triu_indices(n, 1)
    data = PairData(n, iu, ju, w)
    theta = rng.normal(size=n)
    wt = (w[:, 0], w[:, 1], w[:, 2])

    def grad(th, data=data):
        return data.scatter(pair_terms("bt", data.diff(th), None, wt)["gd"])

    err = optimize.check_grad(_loglik, grad, theta, data)
    assert err < 1e-6 * np.linalg.norm(grad(theta))
    hess = -information("bt", data, theta, None, 0.0)
    numeric = optimize.approx_fprime(theta, grad, 1e-7)
    assert_allclose(hess, numeric, atol=1e-4)


def test_it_is_invariant_to_swapping_positions_with_the_outcome():
    names, a, b, o = load_pairs(LLMFAO)
    swapped = np.array([B_WINS, A_WINS, TIE, BOTH_BAD])[o]
    fit = fit_bt(aggregate(len(names), a, b, o))
    fit_swapped = fit_bt(aggregate(len(names), b, a, swapped))
    assert_allclose(fit_swapped.ratings, fit.ratings, atol=1e-9)


def test_it_is_equivariant_under_permuting_model_ids():
    names, a, b, o = load_pairs(LLMFAO)
    n = len(names)
    perm = np.random.default_rng(4).permutation(n)
    fit = fit_bt(aggregate(n, a, b, o))
    fit_perm = fit_bt(aggregate(n, perm[a], perm[b], o))
    assert_allclose(fit_perm.ratings[perm], fit.ratings, atol=1e-9)


def test_duplicating_every_battle_keeps_the_ratings():
    names, a, b, o = load_pairs(LLMFAO)
    n = len(names)
    fit = fit_bt(aggregate(n, a, b, o))
    fit2 = fit_bt(aggregate(n, np.tile(a, 2), np.tile(b, 2), np.tile(o, 2)))
    assert_allclose(fit2.ratings, fit.ratings, atol=1e-9)


def test_integer_weights_equal_repeated_battles():
    rng = np.random.default_rng(5)
    n, m = 5, 200
    a = rng.integers(0, n, m)
    b = (a + rng.integers(1, n, m)) % n
    o = rng.integers(0, 3, m)
    k = rng.integers(1, 4, m)
    weighted = fit_bt(aggregate(n, a, b, o, k.astype(float)))
    repeated = fit_bt(aggregate(n, np.repeat(a, k), np.repeat(b, k), np.repeat(o, k)))
    assert_allclose(weighted.ratings, repeated.ratings, atol=1e-9)


def test_both_bad_counts_as_a_tie_by_default_or_is_dropped():
    a = np.array([0, 0, 1, 1, 0, 2, 2])
    b = np.array([1, 2, 2, 0, 1, 0, 1])
    o = np.array([A_WINS, B_WINS, A_WINS, TIE, BOTH_BAD, A_WINS, BOTH_BAD])
    as_tie = fit_bt(aggregate(3, a, b, np.where(o == BOTH_BAD, TIE, o)))
    assert_allclose(fit_bt(aggregate(3, a, b, o)).ratings, as_tie.ratings, atol=1e-12)
    keep = o != BOTH_BAD
    dropped = fit_bt(aggregate(3, a[keep], b[keep], o[keep]))
    assert_allclose(fit_bt(aggregate(3, a, b, o), both_bad="drop").ratings, dropped.ratings)


def test_the_scale_is_400_over_ln10_per_log_unit_with_mean_1000():
    names, a, b, o = load_pairs(GOLDEN / "food.csv")
    fit = fit_bt(aggregate(len(names), a, b, o))
    assert pytest.approx(400 / np.log(10)) == ratings.SCALE
    assert fit.ratings.mean() == pytest.approx(1000.0)
    assert_allclose(fit.ratings - 1000.0, ratings.SCALE * fit.theta, atol=1e-9)
    # A 400-point gap means 10:1 odds.
    gap = fit.ratings[0] - fit.ratings[1]
    assert np.exp(fit.theta[0] - fit.theta[1]) == pytest.approx(10 ** (gap / 400))


def test_an_anchor_pins_one_models_rating_and_keeps_the_gaps():
    names, a, b, o = load_pairs(GOLDEN / "food.csv")
    fit = fit_bt(aggregate(len(names), a, b, o))
    anchored = fit_bt(aggregate(len(names), a, b, o), anchor={2: 1114.0})
    assert anchored.ratings[2] == 1114.0
    assert_allclose(np.diff(anchored.ratings), np.diff(fit.ratings), atol=1e-9)


DEGENERATE = [
    {
        "desc": "model 2 won every battle",
        "a": [0, 1, 2, 2, 0],
        "b": [1, 0, 0, 1, 1],
        "o": [A_WINS, A_WINS, A_WINS, A_WINS, B_WINS],
        "n": 3,
        "mentions": "[2]",
    },
    {
        "desc": "model 0 lost every battle",
        "a": [0, 1, 2, 1, 0],
        "b": [1, 2, 1, 0, 2],
        "o": [B_WINS, A_WINS, A_WINS, A_WINS, B_WINS],
        "n": 3,
        "mentions": "[0]",
    },
    {
        "desc": "two disconnected pieces {0,1} and {2,3}",
        "a": [0, 1, 2, 3],
        "b": [1, 0, 3, 2],
        "o": [A_WINS, A_WINS, A_WINS, A_WINS],
        "n": 4,
        "mentions": "disconnected",
    },
    {
        "desc": "model 3 has no battles",
        "a": [0, 1, 2, 0],
        "b": [1, 2, 0, 2],
        "o": [A_WINS, A_WINS, A_WINS, TIE],
        "n": 4,
        "mentions": "no battles: [3]",
    },
]


@pytest.mark.parametrize("case", DEGENERATE, ids=lambda c: c["desc"])
def test_degenerate_data_gets_a_documented_prior_and_finite_ratings(case):
    counts = aggregate(case["n"], case["a"], case["b"], case["o"])
    fit = fit_bt(counts)
    assert fit.prior == ratings.DEFAULT_PRIOR
    assert np.all(np.isfinite(fit.ratings))
    assert any(case["mentions"] in note for note in fit.notes), (case["desc"], fit.notes)
    for iv in (ratings.sandwich(fit), ratings.bootstrap(fit, n_resamples=50, rng=0)):
        assert np.all(np.isfinite(iv.lower)) and np.all(np.isfinite(iv.upper))


@pytest.mark.parametrize("case", DEGENERATE, ids=lambda c: c["desc"])
def test_degenerate_data_with_prior_zero_raises_naming_the_models(case):
    counts = aggregate(case["n"], case["a"], case["b"], case["o"])
    with pytest.raises(ratings.DegenerateDataError, match=case["mentions"].replace("[", r"\[")):
        fit_bt(counts, prior=0)


def test_a_prior_orders_a_perfect_winner_first():
    fit = fit_bt(aggregate(3, [2, 2, 0, 1], [0, 1, 1, 0], [A_WINS, A_WINS, A_WINS, A_WINS]))
    assert np.argmax(fit.ratings) == 2


def test_invalid_input_is_rejected_naming_the_argument():
    with pytest.raises(ValueError, match="model_a"):
        aggregate(3, [0, 3], [1, 2], [0, 0])
    with pytest.raises(ValueError, match="itself"):
        aggregate(3, [0, 1], [1, 1], [0, 0])
    with pytest.raises(ValueError, match="outcome"):
        aggregate(3, [0, 1], [1, 2], [0, 7])
    with pytest.raises(ValueError, match="weights"):
        aggregate(3, [0, 1], [1, 2], [0, 0], [1.0, -1.0])
    with pytest.raises(ValueError, match="same length"):
        aggregate(3, [0, 1], [1], [0, 0])
    with pytest.raises(ValueError, match="both_bad"):
        fit_bt(aggregate(3, [0, 1], [1, 2], [0, 0]), both_bad="maybe")
    with pytest.raises(ValueError, match="anchor"):
        fit_bt(aggregate(3, [0, 1], [1, 2], [0, 0]), anchor={5: 1000})
    with pytest.raises(TypeError, match="PairCounts"):
        fit_bt([[0, 1]])


def test_bradley_terry_on_raw_arrays_equals_aggregate_then_fit():
    names, a, b, o = load_pairs(GOLDEN / "food.csv")
    assert_allclose(
        ratings.bradley_terry(len(names), a, b, o).ratings,
        fit_bt(aggregate(len(names), a, b, o)).ratings,
    )
