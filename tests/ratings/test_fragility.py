"""Fragility against brute force: every multiset of up to M removed votes refitted."""

import itertools

import numpy as np
import pytest

import ratings


def _board(n, votes, seed, ties=0.0):
    rng = np.random.default_rng(seed)
    true = np.linspace(1100, 1000, n)
    true[1] = true[0]  # a close race at the top
    a = rng.integers(0, n, votes)
    b = (a + rng.integers(1, n, votes)) % n
    p = 1 / (1 + 10 ** ((true[b] - true[a]) / 400))
    u = rng.random(votes)
    o = np.where(u < ties, ratings.TIE, np.where(u < ties + (1 - ties) * p, 0, 1))
    return a, b, o


def _top(n, a, b, o, counts, k):
    pc = ratings.aggregate(n, a, b, o, counts=counts)
    fit = ratings.fit_bt(pc)
    r = np.where(pc.votes() > 0, fit.ratings, -np.inf)
    return tuple(np.argsort(-r, kind="stable")[:k])


def _bt_tops(n, lo, hi, w, left, k):
    """Top-k of an independent batched Bradley-Terry fit (ties half a win, Newton) for each
    row of ``left`` (removal sets x cells); -1 rows where the MLE may not exist."""
    pairs, pair_of = np.unique(lo * n + hi, return_inverse=True)
    pi, pj = pairs // n, pairs % n
    # per row and pair: games, and score of the lower id (wins + ties / 2)
    games = np.zeros((left.shape[0], pairs.size))
    score = np.zeros_like(games)
    for c in range(w.size):
        games[:, pair_of[c]] += left[:, c]
        score[:, pair_of[c]] += left[:, c] * (1.0 if w[c] == 0 else 0.5 if w[c] == 2 else 0.0)
    inc = np.zeros((pairs.size, n))
    inc[np.arange(pairs.size), pi] = 1
    inc[np.arange(pairs.size), pj] = -1
    model_games, model_score = (
        games @ np.abs(inc),
        score @ np.clip(inc, 0, 1) + (games - score) @ np.clip(-inc, 0, 1),
    )
    ok = ((model_score > 0) & (model_score < model_games)).all(1) & (games > 0).all(1)
    theta = np.zeros((left.shape[0], n))
    for _ in range(100):
        p = 1 / (1 + np.exp(-(theta @ inc.T)))
        grad = (score - games * p) @ inc
        h = games * p * (1 - p)
        hess = np.einsum("rp,pa,pb->rab", h, inc, inc) + 1.0 / n
        step = np.linalg.solve(hess, grad[..., None])[..., 0]
        theta += step
        if np.abs(step).max() < 1e-12:
            break
    tops = np.argsort(-theta, axis=1, kind="stable")[:, :k]
    return np.where(ok[:, None], tops, -1)


def _brute(n, a, b, o, k, most):
    """Smallest number of removed votes (<= most) that changes the top-k, else None.

    Every multiset of removed votes is refitted, all removal sets of one size at once, by an
    independent Newton solver (rows it cannot vouch for are refitted by the engine)."""
    code = (np.minimum(a, b) * n + np.maximum(a, b)) * 4 + np.where(
        o == ratings.TIE, 2, np.where((o == 0) == (a < b), 0, 1)
    )
    keys, counts = np.unique(code, return_counts=True)
    lo, hi, w = (keys // 4) // n, (keys // 4) % n, keys % 4
    co = np.where(w == 2, ratings.TIE, w)  # 0: lower id won (A_WINS), 1: higher id won
    base = _top(n, lo, hi, co, counts, k)
    assert tuple(_bt_tops(n, lo, hi, w, counts[None, :], k)[0]) == base
    for size in range(1, most + 1):
        combos = np.array(
            list(itertools.combinations_with_replacement(range(keys.size), size)), dtype=np.intp
        )
        left = np.repeat(counts[None, :], len(combos), axis=0)
        np.add.at(left, (np.arange(len(combos))[:, None], combos), -1)
        left = left[(left >= 0).all(1)]
        tops = _bt_tops(n, lo, hi, w, left, k)
        for row, top in zip(left, tops, strict=True):
            if top[0] < 0:
                keep = row > 0
                top = _top(n, lo[keep], hi[keep], co[keep], row[keep], k)
            if tuple(top) != base:
                return size
    return None


@pytest.mark.parametrize(
    ("n", "votes", "k", "most", "ties", "seeds"),
    [
        (4, 600, 1, 4, 0.1, range(6)),
        (10, 2000, 1, 2, 0.0, range(6)),
        (5, 1500, 3, 3, 0.0, range(4)),
    ],
)
def test_fragility_equals_brute_force(n, votes, k, most, ties, seeds):
    found = 0
    for seed in seeds:
        a, b, o = _board(n, votes, seed, ties)
        exact = _brute(n, a, b, o, k, most)
        f = ratings.fragility(n, a, b, o, k=k)
        if exact is None:
            assert f.votes is None or f.votes > most, (seed, f)
        else:
            found += 1
            assert f.votes == exact, (seed, exact, f)
            left = list(zip(a, b, o, strict=True))
            for x, y, out, count in f.removed:  # the stated removal really flips the order
                for _ in range(count):
                    left.remove((x, y, out))
            la, lb, lo = (np.array(c) for c in zip(*left, strict=True))
            assert _top(n, la, lb, lo, None, k) != _top(n, a, b, o, None, k)
    assert found >= 1  # at least one board where brute force found a flip


def test_fragility_input():
    with pytest.raises(ValueError, match="same length"):
        ratings.fragility(3, [0, 1], [1], [0, 0])
    assert ratings.fragility(3, [], [], []).votes is None
