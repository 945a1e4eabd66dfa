"""Bootstrap and sandwich intervals: coverage on simulated arena data, exactness, invariances."""

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from scipy import stats
from scipy.special import expit

import ratings
from ratings import A_WINS, B_WINS, TIE, aggregate, bootstrap, fit_bt, sandwich
from ratings._fit import fitted_pairs
from ratings._intervals import _Chord
from ratings._resample import MultinomialSampler, PoissonTables, _support
from tests.ratings.helpers import GOLDEN, LLMFAO, arena_theta, load_pairs, simulate_counts

SEEDS = [0, 1, 2, 3]


@pytest.fixture(scope="module")
def arena():
    names, theta, battles = arena_theta()
    weight = np.outer(battles, battles).astype(float)
    np.fill_diagonal(weight, 0.0)
    return theta, weight


@pytest.fixture(scope="module")
def coverage(arena):
    """Per seed, the share of the 76 models whose 95% interval covers the true rating."""
    theta, weight = arena
    out = {"bootstrap": [], "sandwich": []}
    for seed in SEEDS:
        rng = np.random.default_rng(seed)
        # 100k battles with the real models' ratings and relative battle counts (the real
        # snapshot has 511k), ties from a model whose expected score is expit(d).
        fit = fit_bt(simulate_counts(theta, weight, 100_000, rng))
        truth = fit.to_ratings(theta)
        for name, iv in (
            ("bootstrap", bootstrap(fit, n_resamples=400, rng=seed)),
            ("sandwich", sandwich(fit)),
        ):
            out[name].append(np.mean((iv.lower <= truth) & (truth <= iv.upper)))
    return out


@pytest.mark.parametrize("method", ["bootstrap", "sandwich"])
def test_95_percent_intervals_cover_the_true_ratings_of_simulated_arena_data(coverage, method):
    cov = np.array(coverage[method])
    assert 0.90 <= cov.mean() <= 0.99, cov
    assert cov.min() >= 0.85, cov


def test_duplicating_every_battle_narrows_the_intervals():
    names, a, b, o = load_pairs(LLMFAO)
    n = len(names)
    fit = fit_bt(aggregate(n, a, b, o))
    fit2 = fit_bt(aggregate(n, np.tile(a, 2), np.tile(b, 2), np.tile(o, 2)))
    assert_allclose(sandwich(fit2).se, sandwich(fit).se / np.sqrt(2), rtol=1e-9)
    ratio = bootstrap(fit2, n_resamples=300, rng=0).se / bootstrap(fit, n_resamples=300, rng=0).se
    assert 0.6 < np.median(ratio) < 0.8


def test_the_bootstrap_depends_on_the_seed_only_not_on_the_number_of_workers():
    names, a, b, o = load_pairs(LLMFAO)
    fit = fit_bt(aggregate(len(names), a, b, o))
    one = bootstrap(fit, n_resamples=120, rng=11, workers=1)
    two = bootstrap(fit, n_resamples=120, rng=11, workers=2)
    assert_array_equal(one.theta_samples, two.theta_samples)
    other = bootstrap(fit, n_resamples=120, rng=12, workers=1)
    assert not np.array_equal(one.theta_samples, other.theta_samples)


def test_large_boards_use_smaller_chunks_that_still_ignore_the_number_of_workers(monkeypatch):
    names, a, b, o = load_pairs(LLMFAO)
    fit = fit_bt(aggregate(len(names), a, b, o))
    default = bootstrap(fit, n_resamples=40, rng=11, workers=1)  # one chunk of 40
    monkeypatch.setattr("ratings._intervals._CHUNK_CELLS", 1)  # the smallest chunks: 8 rounds
    one = bootstrap(fit, n_resamples=40, rng=11, workers=1)
    two = bootstrap(fit, n_resamples=40, rng=11, workers=2)
    assert_array_equal(one.theta_samples, two.theta_samples)
    assert not np.array_equal(one.theta_samples, default.theta_samples)  # five chunks of 8


def test_rounds_solved_together_equal_separate_exact_refits():
    names, a, b, o = load_pairs(LLMFAO)
    n = len(names)
    fit = fit_bt(aggregate(n, a, b, o))
    data, cells = fitted_pairs(fit)
    perm = np.arange(cells.shape[0])
    sampler = MultinomialSampler(cells.T.ravel())
    x = sampler.draw(np.random.default_rng(0), 5).astype(float).reshape(3, -1, 5)
    theta, _, _ = _Chord(fit, 1e-12, perm).solve(x[0], x[1], x[2])
    for r in range(5):
        rows = np.repeat(np.arange(cells.shape[0]), 3)
        outcome = np.tile([A_WINS, B_WINS, TIE], cells.shape[0])
        cnt = x[:, :, r].T.ravel()
        counts = aggregate(n, data.i[rows], data.j[rows], outcome, counts=cnt)
        assert_allclose(theta[r], fit_bt(counts).theta, atol=1e-9)


def test_the_sandwich_equals_a_brute_force_row_level_sandwich():
    rng = np.random.default_rng(2)
    n, m = 5, 400
    a = rng.integers(0, n, m)
    b = (a + rng.integers(1, n, m)) % n
    o = rng.choice(3, m, p=[0.45, 0.35, 0.2])
    w = rng.choice([0.5, 1.0, 2.0], m)
    fit = fit_bt(aggregate(n, a, b, o, w))
    y = np.array([1.0, 0.0, 0.5])[o]
    u = np.zeros((m, n))
    u[np.arange(m), a] = 1
    u[np.arange(m), b] = -1
    p = expit(u @ fit.theta)
    bread = (u * (w * p * (1 - p))[:, None]).T @ u
    score = u * (w * (y - p))[:, None]
    pinv = np.linalg.pinv(bread)
    expected = pinv @ (score.T @ score) @ pinv
    assert_allclose(sandwich(fit).cov, expected, atol=1e-10)


def test_constant_weights_change_neither_ratings_nor_intervals():
    names, a, b, o = load_pairs(LLMFAO)
    n = len(names)
    plain = fit_bt(aggregate(n, a, b, o))
    weighted = fit_bt(aggregate(n, a, b, o, np.full(a.size, 2.5)))
    assert_allclose(weighted.ratings, plain.ratings, atol=1e-9)
    assert_allclose(sandwich(weighted).se, sandwich(plain).se, rtol=1e-9)
    boot_w, boot = (
        bootstrap(weighted, n_resamples=100, rng=3),
        bootstrap(plain, n_resamples=100, rng=3),
    )
    assert boot.n_degenerate == 0
    assert_allclose(boot_w.theta_samples, boot.theta_samples, atol=1e-6)


def test_weights_constant_per_cell_bootstrap_like_the_weighted_battles():
    # Battles of pair (0, 1) count double: the bootstrap resamples battles and keeps weights.
    names, a, b, o = load_pairs(GOLDEN / "food.csv")
    w = np.where((a == 0) | (b == 0), 2.0, 1.0)
    fit = fit_bt(aggregate(len(names), a, b, o, w))
    iv = bootstrap(fit, n_resamples=200, rng=0)
    assert np.all(np.isfinite(iv.lower)) and np.all(iv.lower < fit.ratings)


def test_resamples_without_a_finite_mle_are_refitted_with_the_prior_and_counted():
    # Model 3 won 3 of its 4 battles: many resamples give it only wins.
    a = np.array([0, 1, 2, 0, 1, 2, 3, 3, 3, 3] * 1 + [0, 1, 2] * 5)
    b = np.array([1, 2, 0, 2, 0, 1, 0, 1, 2, 0] * 1 + [1, 2, 0] * 5)
    o = np.array(
        [A_WINS, A_WINS, A_WINS, TIE, B_WINS, TIE, A_WINS, A_WINS, A_WINS, B_WINS]
        + [A_WINS, B_WINS, TIE] * 5
    )
    fit = fit_bt(aggregate(4, a, b, o))
    assert fit.prior == 0
    iv = bootstrap(fit, n_resamples=300, rng=0)
    assert iv.n_degenerate > 0
    assert np.all(np.isfinite(iv.theta_samples)) and np.all(np.isfinite(iv.upper))


def test_anchored_intervals_are_intervals_for_the_gap_to_the_anchor():
    names, a, b, o = load_pairs(LLMFAO)
    fit = fit_bt(aggregate(len(names), a, b, o), anchor={0: 1000.0})
    for iv in (sandwich(fit), bootstrap(fit, n_resamples=100, rng=0)):
        assert iv.lower[0] == pytest.approx(1000.0) and iv.upper[0] == pytest.approx(1000.0)
        assert np.all(iv.upper[1:] > iv.lower[1:])


def test_davidson_bootstrap_and_sandwich_agree():
    names, a, b, o = load_pairs(LLMFAO)
    fit = ratings.fit_davidson(aggregate(len(names), a, b, o))
    boot, sand = bootstrap(fit, n_resamples=300, rng=0), sandwich(fit)
    assert 0.8 < np.median(boot.se / sand.se) < 1.2
    assert boot.tie_lower < fit.tie < boot.tie_upper
    assert sand.tie_lower < fit.tie < sand.tie_upper


# ------------------------------------------------------------------ the resampler


def test_each_resample_has_exactly_n_battles_and_multinomial_moments():
    counts = np.array([3, 1, 0, 5, 2, 40, 7, 250_000])  # 250k uses Generator.poisson
    x = MultinomialSampler(counts).draw(np.random.default_rng(0), 20_000).T
    n = counts.sum()
    assert np.all(x.sum(axis=1) == n) and np.all(x >= 0) and np.all(x[:, 2] == 0)
    p = counts / n
    assert np.all(np.abs(x.mean(axis=0) - counts) <= 4 * np.sqrt(counts * (1 - p) / len(x)))
    expected_cov = n * (np.diag(p) - np.outer(p, p))
    assert_allclose(np.cov(x.T), expected_cov, atol=0.04 * np.abs(expected_cov).max())


@pytest.mark.parametrize("cell", [1, 5])
def test_each_cell_of_a_resample_is_binomial(cell):
    counts = np.array([3, 1, 30, 5, 12, 400, 70])
    x = MultinomialSampler(counts).draw(np.random.default_rng(cell), 20_000)[cell]
    n, p = counts.sum(), counts[cell] / counts.sum()
    k = np.arange(x.max() + 1)
    expected = stats.binom.pmf(k, n, p) * x.size
    observed = np.bincount(x, minlength=k.size).astype(float)
    big = expected > 5
    obs = np.append(observed[big], observed[~big].sum())
    exp = np.append(expected[big], x.size - expected[big].sum())
    assert stats.chisquare(obs, exp).pvalue > 1e-3


@pytest.mark.parametrize("lam", [1, 3, 10, 37, 400, 5000, 150_000])
def test_poisson_tables_cover_all_but_1e_15_of_the_mass_and_match_the_cdf(lam):
    lo, size = _support(np.array([lam]))
    assert stats.poisson.cdf(lo[0] - 1, lam) + stats.poisson.sf(lo[0] + size[0] - 1, lam) < 1e-15
    t = PoissonTables(np.array([lam]))
    k = np.arange(lo[0], lo[0] + size[0])
    assert_allclose(t.cdf[:-1], stats.poisson.cdf(k, lam)[:-1], atol=1e-12)


@pytest.mark.parametrize("lam", [1, 37, 5000, 150_000])
def test_poisson_tables_with_means_shifted_below_the_counts_cover_their_mass(lam):
    scale = 1 - 3 / np.sqrt(10_000)  # the largest shift the sampler uses
    lo, size = _support(np.array([lam]), scale)
    mu = scale * lam
    assert stats.poisson.cdf(lo[0] - 1, mu) + stats.poisson.sf(lo[0] + size[0] - 1, mu) < 1e-15
    t = PoissonTables(np.array([lam]), scale)
    k = np.arange(lo[0], lo[0] + size[0])
    assert_allclose(t.cdf[:-1], stats.poisson.cdf(k, mu)[:-1], atol=1e-12)


def test_large_totals_rarely_need_battles_removed_and_stay_exact():
    counts = np.random.default_rng(1).integers(0, 30, 20_000)
    sampler = MultinomialSampler(counts)
    assert sampler.scale < 1
    x = sampler._poisson(np.random.default_rng(2), 200)
    assert np.mean(x.sum(axis=0) > counts.sum()) < 0.02  # removals are the rare branch
    draws = sampler.draw(np.random.default_rng(2), 200)
    assert np.all(draws.sum(axis=0) == counts.sum())
    n, p = counts.sum(), counts / counts.sum()
    z = (draws.mean(axis=1) - counts) / np.sqrt(n * p * (1 - p) / 200 + 1e-300)
    assert np.abs(z[counts > 0]).max() < 5.5


def _small_board(seed=3, n=8, n_battles=60):
    """Few battles among a few models: many resamples have no finite MLE."""
    rng = np.random.default_rng(seed)
    a = rng.integers(0, n, n_battles)
    b = (a + 1 + rng.integers(0, n - 1, n_battles)) % n
    strength = np.linspace(-1.5, 1.5, n)
    o = np.where(rng.random(n_battles) < expit(strength[a] - strength[b]), A_WINS, B_WINS)
    o[rng.random(n_battles) < 0.1] = TIE
    return n, a, b, o


@pytest.mark.parametrize("prior", ["auto", 2.0])
@pytest.mark.parametrize("drop", [None, 7])
def test_batched_refits_equal_separate_exact_fits_and_count_the_degenerate_rounds(prior, drop):
    n, a, b, o = _small_board()
    if drop is not None:  # model 7 never wins: the data itself has no finite MLE
        o = np.where((a == drop) & (o == A_WINS), B_WINS, o)
        o = np.where((b == drop) & (o == B_WINS), A_WINS, o)
        o = np.where((a == drop) | (b == drop), np.where(a == drop, B_WINS, A_WINS), o)
    fit = fit_bt(aggregate(n, a, b, o), prior=prior)
    data, cells = fitted_pairs(fit)
    perm = np.arange(cells.shape[0])
    rounds = 60
    x = MultinomialSampler(cells.T.ravel()).draw(np.random.default_rng(1), rounds)
    x = x.astype(float).reshape(3, -1, rounds)
    theta, _, n_degenerate = _Chord(fit, 1e-10, perm).solve(x[0], x[1], x[2])
    rows = np.repeat(np.arange(cells.shape[0]), 3)
    outcome = np.tile([A_WINS, B_WINS, TIE], cells.shape[0])
    expected_degenerate = 0
    for r in range(rounds):
        counts = aggregate(n, data.i[rows], data.j[rows], outcome, counts=x[:, :, r].T.ravel())
        # What a single refit does: the fit's own prior, or the default one where the
        # resample has no finite MLE (never less than the fit's).
        auto = fit_bt(counts)
        expected_degenerate += bool(auto.notes)
        use = fit.prior if fit.prior >= ratings.DEFAULT_PRIOR else auto.prior
        exact = fit_bt(counts, prior=use) if use > 0 else auto
        assert_allclose(theta[r], exact.theta, atol=1e-8)
    assert 0 < n_degenerate == expected_degenerate
    if drop is not None:
        assert n_degenerate == rounds


def test_small_boards_fit_their_hard_rounds_in_batches_not_one_by_one(monkeypatch):
    from ratings import _chord as intervals  # where the chord refits hard rounds

    calls = []
    single = intervals.newton_fit
    monkeypatch.setattr(
        intervals, "newton_fit", lambda *args, **kw: calls.append(1) or single(*args, **kw)
    )
    n, a, b, o = _small_board()
    iv = bootstrap(fit_bt(aggregate(n, a, b, o)), n_resamples=400, rng=0, workers=1)
    assert iv.n_degenerate > 40
    assert len(calls) <= 20  # only the rare round the batch cannot settle


def test_the_batched_newton_fit_equals_single_fits_from_any_start():
    from ratings._solver import newton_fit, newton_fit_bt_batch

    n, a, b, o = _small_board(n_battles=300)
    fit = fit_bt(aggregate(n, a, b, o))
    data, _ = fitted_pairs(fit)
    rng = np.random.default_rng(0)
    w = [rng.poisson(data.w[:, k, None] + 0.5, (data.P, 7)).astype(float) for k in range(3)]
    for prior, start in ((1.0, None), (0.5, rng.normal(0, 1, (n, 7))), (0.0, None)):
        theta, ok = newton_fit_bt_batch(data, w, prior=prior, tol=1e-12, theta0=start)
        for r in range(7):
            one = ratings._solver.PairData(n, data.i, data.j, np.column_stack([x[:, r] for x in w]))
            if prior == 0 and ratings._solver.degeneracy_notes(one):
                assert not ok[r]
                continue
            assert ok[r]
            expected = newton_fit("bt", one, prior=prior, tol=1e-12)[0]
            assert_allclose(theta[:, r], expected, atol=1e-10)
