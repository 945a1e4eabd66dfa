"""Active pair sampling: the gain formula against a brute-force covariance update, the floor,
warm-up and cap guarantees, exact draw frequencies, and IPW giving unbiased ratings."""

import numpy as np
import pytest
from scipy import optimize

import ratings
from ratings._sampling import _information, one_vote_gain


def _arena(n, votes, seed=0):
    rng = np.random.default_rng(seed)
    true = np.sort(rng.normal(1000, 80, n))[::-1]
    counts = rng.poisson(votes / (n * (n - 1) / 2), (n, n)).astype(float)
    counts = np.triu(counts, 1)
    return true, counts + counts.T


def test_gain_matches_a_brute_force_covariance_update():
    n, top = 7, 3
    r, counts = _arena(n, 400)
    center = np.eye(n) - 1.0 / n
    order = np.argsort(-r)[:top]
    cs = [center[m] for m in order] + [
        np.eye(n)[order[k]] - np.eye(n)[order[k + 1]] for k in range(top - 1)
    ]
    pi, pj, got = one_vote_gain(r, counts, np.array(cs))
    cov = np.linalg.pinv(center @ _information(n, r, counts) @ center + 1e-3 * center) @ center
    gains = []
    for i, j in zip(pi, pj, strict=True):
        extra = np.zeros((n, n))
        extra[i, i] = extra[j, j] = 1
        extra[i, j] = extra[j, i] = -1
        p = 1 / (1 + np.exp((r[j] - r[i]) / ratings.SCALE))
        h = _information(n, r, counts) + p * (1 - p) * extra
        cov2 = np.linalg.pinv(center @ h @ center + 1e-3 * center) @ center
        gains.append(sum(c @ cov @ c - c @ cov2 @ c for c in cs))
    np.testing.assert_allclose(got, gains, rtol=1e-6, atol=1e-12)


@pytest.mark.parametrize("votes", [0, 600])
def test_the_design_minimises_the_top_widths_like_a_general_optimiser(votes):
    # Widths only (boundary_weight=0, no floor, warm-up or cap): the criterion is the sum of
    # the top models' standard errors after `horizon` more votes, convex in the pair shares;
    # scipy's optimiser over the simplex (softmax) finds the same optimum.
    n, top, horizon = 5, 2, 1000.0
    r, counts = _arena(n, votes, seed=2)
    center = np.eye(n) - 1.0 / n
    i, j = np.triu_indices(n, 1)
    t = (r - r.mean()) / ratings.SCALE
    p = 1 / (1 + np.exp(t[j] - t[i]))
    info = p * (1 - p)
    cs = center[np.argsort(-r)[:top]]

    def criterion(q):
        extra = np.zeros((n, n))
        extra[i, j] = -horizon * q * info
        extra += extra.T
        extra -= np.diag(extra.sum(axis=1))
        cov = np.linalg.pinv(_information(n, r, counts) + extra)
        return np.sqrt(np.einsum("ki,ij,kj->k", cs, cov, cs)).sum()

    def softmax(x):
        e = np.exp(x - x.max())
        return e / e.sum()

    best = min(
        (
            optimize.minimize(
                lambda x: criterion(softmax(x)),
                x0,
                method="Nelder-Mead",
                options={"maxiter": 20_000, "xatol": 1e-9, "fatol": 1e-12},
            )
            for x0 in (np.zeros(i.size), np.random.default_rng(0).normal(size=i.size))
        ),
        key=lambda res: res.fun,
    )
    dist = ratings.active_pairs(
        r,
        counts,
        top=top,
        boundary_weight=0,
        horizon=horizon,
        iterations=500,
        floor=0,
        warmup=0,
        cap=None,
    )
    assert criterion(dist.prob) == pytest.approx(best.fun, rel=1e-3)
    assert criterion(dist.prob) < criterion(np.full(i.size, 1 / i.size))


def test_boundary_pairs_get_votes_that_widths_alone_do_not_give():
    # Two models clearly ahead, a third 40 Elo behind the second: with the top-2 boundary
    # weighted, the pair across the boundary (rank 2 vs rank 3) gains mass.
    r = np.array([1300.0, 1260, 1220, 1000, 900])
    counts = np.full((5, 5), 40.0) - 40 * np.eye(5)
    kw = {"top": 3, "boundary": 2, "floor": 0, "warmup": 0, "cap": None}
    widths = ratings.active_pairs(r, counts, boundary_weight=0, **kw)
    both = ratings.active_pairs(r, counts, boundary_weight=20, **kw)
    k = np.flatnonzero((widths.i == 1) & (widths.j == 2))[0]
    assert both.prob[k] > widths.prob[k] + 0.02


def test_floor_warmup_and_cap():
    n = 12
    r, counts = _arena(n, 3000)
    counts[5, :] = counts[:, 5] = 0  # a new model
    dist = ratings.active_pairs(r, counts, floor=0.3, warmup=20, warmup_share=0.4, cap=0.25)
    assert dist.prob.sum() == pytest.approx(1.0)
    assert dist.prob.min() > 0
    assert dist.exposure().max() <= 0.25 + 1e-9
    assert dist.exposure()[5] >= 0.25 - 1e-9  # warm-up pushes the new model to the cap
    uncapped = ratings.active_pairs(r, counts, floor=0.3, warmup=20, warmup_share=0.4, cap=None)
    cold = (uncapped.i == 5) | (uncapped.j == 5)
    assert uncapped.prob[cold].sum() == pytest.approx(0.4)
    assert uncapped.prob[~cold].min() >= 0.6 * 0.3 / (n * (n - 1) / 2) - 1e-12


def test_provider_cap():
    r, counts = _arena(6, 2000)
    groups = np.array([0, 0, 0, 1, 2, 3])
    dist = ratings.active_pairs(r, counts, cap=0.5, groups=groups)
    assert dist.exposure(groups)[0] <= 0.5 + 1e-9


def test_draws_follow_the_stated_probabilities():
    r, counts = _arena(6, 500)
    dist = ratings.active_pairs(r, counts)
    rng = np.random.default_rng(1)
    n = 40_000
    seen = np.zeros(dist.prob.size)
    for u in rng.random(n):
        i, j, p = ratings.draw_pair(dist, u)
        k = np.flatnonzero((dist.i == i) & (dist.j == j))[0]
        assert p == dist.prob[k]
        seen[k] += 1
    assert np.abs(seen / n - dist.prob).max() < 4 * np.sqrt(dist.prob.max() / n)
    sub = dist.restricted(np.array([1, 1, 0, 1, 1, 1], bool))
    assert sub.prob.sum() == pytest.approx(1.0)
    assert 2 not in sub.i and 2 not in sub.j


def test_ipw_removes_the_bias_of_a_skewed_policy():
    # Sides and pair choice depend on a latent draw; with the propensities as weights the
    # weighted fit recovers the truth the unweighted one does too (BT is consistent under any
    # pair policy), and the weights average 1 under uniform sampling.
    rng = np.random.default_rng(4)
    n, votes = 6, 30_000
    true = np.array([1150, 1100, 1050, 1000, 950, 900.0])
    dist = ratings.active_pairs(true, np.full((n, n), 50.0) - 50 * np.eye(n), floor=0.1)
    k = np.searchsorted(dist.cumulative, rng.random(votes))
    a, b, p = dist.i[k], dist.j[k], dist.prob[k]
    win = rng.random(votes) < 1 / (1 + 10 ** ((true[b] - true[a]) / 400))
    w = ratings.ipw_weights(p, 1 / dist.prob.size)
    board = ratings.leaderboard(n, a, b, np.where(win, 0, 1), weights=w, ci="sandwich")
    est = board.rating[np.argsort(board.model)]
    assert np.abs((est - est.mean()) - (true - true.mean())).max() < 10
    with pytest.raises(ValueError, match="pair_probability"):
        ratings.ipw_weights([0.0], 0.1)


def test_bad_input_names_the_field():
    with pytest.raises(ValueError, match="pair_counts"):
        ratings.active_pairs([1000, 1000, 1000], np.zeros((2, 2)))
    with pytest.raises(ValueError, match="floor"):
        ratings.active_pairs([1000, 1000], np.zeros((2, 2)), floor=2)
