"""Active pair sampling: a distribution over pairs that spends votes where they shrink the
uncertainty that matters, plus inverse-propensity weights for fitting what it produced.

The score of a pair (i, j) is the expected drop, from one more vote between them, in the
variances of the contrasts a reader looks at: each of the ``top`` best models' rating (against
the mean) and the gap between each of them and the next one. With the Bradley-Terry Fisher
information ``H`` of the votes so far (covariance ``S = pinv(H)``) and one vote's information
``I = p (1 - p)`` along ``d = e_i - e_j``, the variance of a contrast ``c`` drops by
``(c' S d)^2 I / (1 + I d' S d)`` (a rank-one update). Probabilities are then mixed with a floor
(every pair keeps ``floor / n_pairs``), pairs with a model below ``warmup`` votes share
``warmup_share`` of the mass first, and no group (model or provider) takes part in more than
``cap`` of the battles.

Nothing here is per prompt: the distribution is computed once after a leaderboard refresh, and a
draw is one ``searchsorted`` on its cumulative sum (:func:`draw_pair`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ._fit import SCALE
from ._typing import ArrayLike, FloatArray, IntArray

__all__ = ["PairDistribution", "active_pairs", "uniform_pairs", "draw_pair", "ipw_weights"]


class PairDistribution:
    """Probabilities of unordered pairs ``(i[k], j[k])``, ``i < j``, summing to 1."""

    def __init__(self, n_models: int, i: ArrayLike, j: ArrayLike, prob: ArrayLike):
        self.n_models = int(n_models)
        self.i = np.asarray(i, dtype=np.intp)
        self.j = np.asarray(j, dtype=np.intp)
        p = np.asarray(prob, dtype=float)
        if p.shape != self.i.shape or p.shape != self.j.shape:
            raise ValueError("`i`, `j` and `prob` must have the same length")
        if (p < 0).any() or not np.isfinite(p).all() or p.sum() <= 0:
            raise ValueError("`prob` must be finite, non-negative and not all zero")
        self.prob = p / p.sum()
        self.cumulative = np.cumsum(self.prob)

    def matrix(self) -> FloatArray:
        """Symmetric (n, n) matrix of pair probabilities (each pair once above the diagonal)."""
        m = np.zeros((self.n_models, self.n_models))
        m[self.i, self.j] = self.prob
        return m + m.T

    def exposure(self, groups: ArrayLike | None = None) -> FloatArray:
        """Share of battles each model (or group) takes part in (sums to 2 over models)."""
        g = np.arange(self.n_models) if groups is None else np.asarray(groups, dtype=np.intp)
        size = int(g.max()) + 1 if g.size else 0
        both = g[self.i] == g[self.j]
        out = np.bincount(g[self.i], self.prob, size) + np.bincount(g[self.j], self.prob, size)
        out -= np.bincount(g[self.i], self.prob * both, size)  # a pair inside one group
        return np.asarray(out, dtype=float)

    def restricted(self, allowed: ArrayLike) -> PairDistribution:
        """The distribution conditioned on both models being ``allowed`` (bool per model)."""
        ok = np.asarray(allowed, dtype=bool)
        keep = ok[self.i] & ok[self.j] & (self.prob > 0)
        if not keep.any():
            raise ValueError("no pair with positive probability among the allowed models")
        return PairDistribution(self.n_models, self.i[keep], self.j[keep], self.prob[keep])

    def to_dict(self) -> dict[str, Any]:
        return {
            "n_models": self.n_models,
            "i": self.i.tolist(),
            "j": self.j.tolist(),
            "prob": self.prob.tolist(),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> PairDistribution:
        return cls(d["n_models"], d["i"], d["j"], d["prob"])


def _all_pairs(n: int) -> tuple[IntArray, IntArray]:
    i, j = np.triu_indices(n, 1)
    return i.astype(np.intp), j.astype(np.intp)


def uniform_pairs(n_models: int) -> PairDistribution:
    i, j = _all_pairs(n_models)
    return PairDistribution(n_models, i, j, np.ones(i.size))


def _information(n: int, ratings: FloatArray, pair_counts: FloatArray) -> FloatArray:
    """Bradley-Terry Fisher information of the votes so far (natural-log units)."""
    theta = (ratings - ratings.mean()) / SCALE
    p = 1 / (1 + np.exp(theta[None, :] - theta[:, None]))
    w = pair_counts * p * (1 - p)
    return np.diag(w.sum(axis=1)) - w


def _cap(prob: FloatArray, i: IntArray, j: IntArray, groups: IntArray, cap: float) -> FloatArray:
    """Scale down pairs of groups above ``cap`` and give the mass back to the others."""
    size = int(groups.max()) + 1
    gi, gj = groups[i], groups[j]
    for _ in range(50):
        exp = np.bincount(gi, prob, size) + np.bincount(gj, prob, size)
        exp -= np.bincount(gi, prob * (gi == gj), size)
        over = exp > cap * (1 + 1e-9)
        if not over.any():
            break
        factor = np.where(over, cap / np.maximum(exp, 1e-300), 1.0)
        hit = over[gi] | over[gj]
        scaled = prob * np.minimum(factor[gi], factor[gj])
        free = prob[~hit].sum()
        if free <= 0:
            break  # every pair touches a capped group: the cap cannot be met
        scaled[~hit] *= (1 - scaled[hit].sum()) / free
        prob = scaled
    return prob / prob.sum()


def active_pairs(
    ratings: ArrayLike,
    pair_counts: ArrayLike,
    *,
    top: int = 10,
    floor: float = 0.2,
    warmup: int = 30,
    warmup_share: float = 0.5,
    cap: float | None = 0.3,
    groups: ArrayLike | None = None,
) -> PairDistribution:
    """The active distribution over all pairs of ``n`` models.

    Parameters
    ----------
    ratings : array-like, shape (n,)
        Current Elo-scale ratings (any centre; models without votes: any value, e.g. the mean).
    pair_counts : array-like, shape (n, n)
        Votes so far between each two models (symmetric).
    top : int
        How many of the best models' ratings and adjacent gaps the score targets.
    floor : float in [0, 1]
        Share of the mass spread evenly over all pairs.
    warmup, warmup_share :
        Pairs with a model below ``warmup`` votes share ``warmup_share`` of the mass evenly.
    cap : float or None
        Most share of battles one group may take part in (ignored when it cannot be met).
    groups : array-like of int, shape (n,), optional
        A group per model (e.g. provider) for the cap; default: each model its own.
    """
    r = np.asarray(ratings, dtype=float)
    counts = np.asarray(pair_counts, dtype=float)
    n = r.size
    if n < 2:
        raise ValueError("`ratings` needs at least two models")
    if counts.shape != (n, n):
        raise ValueError(f"`pair_counts` must have shape ({n}, {n}), got {counts.shape}")
    if not 0 <= floor <= 1 or not 0 <= warmup_share <= 1:
        raise ValueError("`floor` and `warmup_share` must be in [0, 1]")
    i, j = _all_pairs(n)
    h = _information(n, r, counts)
    # Center: the ratings are only defined up to a shift (mean zero), and a small ridge keeps
    # models with no votes finite (their variance is then large, as it should be).
    center = np.eye(n) - 1.0 / n
    cov = np.linalg.pinv(center @ h @ center + 1e-3 * center) @ center
    order = np.argsort(-r, kind="stable")[: min(top, n)]
    contrasts = center[order]  # each top model against the mean
    if order.size > 1:
        gaps = np.zeros((order.size - 1, n))
        gaps[np.arange(order.size - 1), order[:-1]] = 1
        gaps[np.arange(order.size - 1), order[1:]] -= 1
        contrasts = np.vstack([contrasts, gaps])
    g = contrasts @ cov  # (n_contrasts, n)
    theta = (r - r.mean()) / SCALE
    p = 1 / (1 + np.exp(theta[j] - theta[i]))
    info = p * (1 - p)
    var_d = cov[i, i] + cov[j, j] - 2 * cov[i, j]
    gain = ((g[:, i] - g[:, j]) ** 2).sum(axis=0) * info / (1 + info * var_d)
    prob = gain / gain.sum() if gain.sum() > 0 else np.full(i.size, 1.0 / i.size)
    prob = (1 - floor) * prob + floor / i.size
    votes = counts.sum(axis=1)
    cold = votes < warmup
    cold_pair = cold[i] | cold[j]
    if cold_pair.any() and warmup_share > 0:
        prob = np.where(cold_pair, 0.0, prob)
        warm_mass = prob.sum()
        prob = (1 - warmup_share) * (prob / warm_mass if warm_mass > 0 else 0.0)
        prob = prob + np.where(cold_pair, warmup_share / cold_pair.sum(), 0.0)
    if cap is not None:
        grp = np.arange(n) if groups is None else np.asarray(groups, dtype=np.intp)
        if grp.shape != (n,):
            raise ValueError(f"`groups` must have shape ({n},)")
        prob = _cap(prob, i, j, grp, float(cap))
    return PairDistribution(n, i, j, prob)


def draw_pair(dist: PairDistribution, u: float) -> tuple[int, int, float]:
    """The pair at uniform ``u`` in [0, 1): ``(i, j, P({i, j}))``."""
    k = int(np.searchsorted(dist.cumulative, u * dist.cumulative[-1], side="right"))
    k = min(k, dist.prob.size - 1)
    return int(dist.i[k]), int(dist.j[k]), float(dist.prob[k])


def ipw_weights(pair_probability: ArrayLike, uniform: float | ArrayLike) -> FloatArray:
    """Inverse-propensity battle weights ``uniform / P(pair)`` (1 where the draw was uniform).

    ``uniform`` is the probability the pair would have had under uniform sampling (``1 /
    n_pairs`` of the roster at the time), so the weights average about 1.
    """
    p = np.asarray(pair_probability, dtype=float)
    if (p <= 0).any() or not np.isfinite(p).all():
        raise ValueError("`pair_probability` must be positive and finite")
    return np.asarray(uniform, dtype=float) / p
