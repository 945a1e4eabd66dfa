"""Active pair sampling: a distribution over pairs that spends votes where they shrink the
uncertainty that matters, plus inverse-propensity weights for fitting what it produced.

The distribution is an optimal design. With the Bradley-Terry Fisher information ``H0`` of the
votes so far, ``horizon`` more votes in pair shares ``q`` give ``H(q) = H0 + horizon * sum_k q_k
I_k d_k d_k'`` (``d = e_i - e_j``, ``I = p (1 - p)``) and a covariance ``S(q)``. The criterion
(:class:`_Criterion`) is the mean interval width of the ``top`` best models' ratings (against
the mean, as boards show them), relative to its value now, plus ``boundary_weight`` times the
mean chance that a gap between one of the ``boundary`` best and one of the rest of the ``top``
stays unresolved at 95%. Its decrease per unit of ``q_k`` is ``I_k sum_c w_c (c' S d_k)^2``
with ``w_c`` the criterion's derivative in contrast ``c``'s variance; the multiplicative algorithm
``q <- q * gain / (q . gain)`` converges to the optimum (the width part is convex in ``q``).
Probabilities are then mixed with a floor (every pair keeps ``floor / n_pairs``), pairs with a
model below ``warmup`` votes share ``warmup_share`` of the mass first, and no group (model or
provider) takes part in more than ``cap`` of the battles.

Nothing here is per prompt: the distribution is computed once after a leaderboard refresh, and a
draw is one ``searchsorted`` on its cumulative sum (:func:`draw_pair`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ._fit import SCALE
from ._typing import ArrayLike, FloatArray, IntArray

RIDGE = 1e-3  # information added along every contrast: models without votes stay finite
Z95 = 1.959963984540054

__all__ = [
    "PairDistribution",
    "active_pairs",
    "uniform_pairs",
    "draw_pair",
    "ipw_weights",
    "one_vote_gain",
]


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

    def restricted_pairs(self, keep: ArrayLike) -> PairDistribution:
        """The distribution conditioned on the pairs where ``keep`` (bool per pair) is true."""
        ok = np.asarray(keep, dtype=bool) & (self.prob > 0)
        if ok.shape != self.prob.shape:
            raise ValueError("`keep` must have one entry per pair")
        if not ok.any():
            raise ValueError("no kept pair with positive probability")
        return PairDistribution(self.n_models, self.i[ok], self.j[ok], self.prob[ok])

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


def _covariance(h: FloatArray) -> FloatArray:
    """Covariance of the mean-zero log-strengths from information ``h`` (rows sum to 0).

    A small ridge keeps models without votes finite (their variance is then large, as it should
    be); ``inv(A + J) - J`` with ``J = 11'/n`` is the pseudo-inverse of ``A`` when ``A1 = 0``.
    """
    n = h.shape[0]
    j = np.full((n, n), 1.0 / n)
    center = np.eye(n) - j
    return np.asarray(np.linalg.inv(h + RIDGE * center + j) - j, dtype=float)


def one_vote_gain(
    ratings: ArrayLike, pair_counts: ArrayLike, contrasts: ArrayLike
) -> tuple[IntArray, IntArray, FloatArray]:
    """Pairs ``(i, j)`` and the drop, from one more vote between them, of the summed variances
    of ``contrasts`` (rows, in log-strength units): ``sum_c (c' S d)^2 I / (1 + I d' S d)``,
    the rank-one update of the covariance ``S`` with ``d = e_i - e_j``, ``I = p (1 - p)``."""
    r = np.asarray(ratings, dtype=float)
    n = r.size
    c = np.atleast_2d(np.asarray(contrasts, dtype=float))
    cov = _covariance(_information(n, r, np.asarray(pair_counts, dtype=float)))
    i, j = _all_pairs(n)
    info = _pair_information(r, i, j)
    g = c @ cov
    var_d = cov[i, i] + cov[j, j] - 2 * cov[i, j]
    return i, j, ((g[:, i] - g[:, j]) ** 2).sum(axis=0) * info / (1 + info * var_d)


def _pair_information(r: FloatArray, i: IntArray, j: IntArray) -> FloatArray:
    theta = (r - r.mean()) / SCALE
    p = 1 / (1 + np.exp(theta[j] - theta[i]))
    return np.asarray(p * (1 - p), dtype=float)


class _Criterion:
    """What the design shrinks, as contrasts of the log-strengths (rows of ``c``):

    * the ``top`` best models' ratings (against the mean, as boards show them): the mean of
      their interval widths, relative to its value now;
    * for each of the ``boundary`` best against each of the next ``top - boundary``: the chance
      that the 95% interval of their gap excludes 0, ``Phi(|gap| / sd - z)`` (so pairs that are
      already apart, or too close to part soon, weigh little), times ``boundary_weight``.

    ``weights(v)`` is the derivative of the criterion in each contrast's variance ``v``.
    """

    def __init__(self, r: FloatArray, top: int, boundary: int, boundary_weight: float):
        n = r.size
        order = np.argsort(-r, kind="stable")
        top = min(top, n)
        center = np.eye(n) - 1.0 / n
        rows = [center[order[:top]]]
        boundary = min(boundary, top - 1) if boundary_weight > 0 else 0
        ins, outs = order[:boundary], order[boundary:top]
        a, b = np.repeat(ins, outs.size), np.tile(outs, ins.size)
        gaps = np.zeros((a.size, n))
        gaps[np.arange(a.size), a] = 1
        gaps[np.arange(a.size), b] = -1
        rows.append(gaps)
        self.c = np.vstack(rows)
        self.top = top
        self.gap = np.abs(r[a] - r[b]) / SCALE
        self.boundary_weight = boundary_weight
        self.base: float | None = None

    def weights(self, v: FloatArray) -> FloatArray:
        v = np.maximum(v, 1e-300)
        sd = np.sqrt(v[: self.top])
        if self.base is None:
            self.base = float(sd.sum())
        w = np.empty_like(v)
        w[: self.top] = 0.5 / (sd * self.base)
        if self.gap.size:
            vg = v[self.top :]
            z = self.gap / np.sqrt(vg)
            dens = np.exp(-0.5 * (z - Z95) ** 2) / np.sqrt(2 * np.pi)
            w[self.top :] = self.boundary_weight / self.gap.size * dens * z / (2 * vg)
        return w


def _design(
    h0: FloatArray,
    info: FloatArray,
    i: IntArray,
    j: IntArray,
    crit: _Criterion,
    horizon: float,
    iterations: int,
) -> FloatArray:
    """Pair shares ``q`` for the next ``horizon`` votes that (locally) minimise the criterion
    after them: the multiplicative algorithm of optimal design, ``q <- q * gain / (q . gain)``,
    where ``gain`` is the criterion's decrease per unit of ``q`` (its negative gradient)."""
    n = h0.shape[0]
    q = np.full(i.size, 1.0 / i.size)
    gain = q
    for _ in range(iterations + 1):
        w = np.zeros((n, n))
        w[i, j] = horizon * q * info
        w += w.T
        cov = _covariance(h0 + np.diag(w.sum(axis=1)) - w)
        g = crit.c @ cov
        v = (g * crit.c).sum(axis=1)
        gain = (crit.weights(v)[:, None] * (g[:, i] - g[:, j]) ** 2).sum(axis=0) * info
        total = float(q @ gain)
        if not total > 0:
            break
        q = q * gain / total
        q /= q.sum()
    return q


def _cap(prob: FloatArray, i: IntArray, j: IntArray, groups: IntArray, cap: float) -> FloatArray:
    """Scale down pairs of groups above ``cap`` and give the mass back to the others; the input
    unchanged when the cap cannot be met (e.g. fewer than ``2 / cap`` groups)."""
    size = int(groups.max()) + 1
    gi, gj = groups[i], groups[j]
    start = prob / prob.sum()

    def exposure(q: FloatArray) -> FloatArray:
        out = np.bincount(gi, q, size) + np.bincount(gj, q, size)
        return np.asarray(out - np.bincount(gi, q * (gi == gj), size), dtype=float)

    prob = start
    for _ in range(200):
        exp = exposure(prob)
        over = exp > cap * (1 + 1e-9)
        if not over.any():
            return prob / prob.sum()
        factor = np.where(over, cap / np.maximum(exp, 1e-300), 1.0)
        hit = over[gi] | over[gj]
        scaled = prob * np.minimum(factor[gi], factor[gj])
        free = prob[~hit].sum()
        if free <= 0:
            break  # every pair touches a capped group
        scaled[~hit] *= (1 - scaled[hit].sum()) / free
        prob = scaled
    return start if exposure(prob).max() > cap * (1 + 1e-6) else prob / prob.sum()


def active_pairs(
    ratings: ArrayLike,
    pair_counts: ArrayLike,
    *,
    top: int = 10,
    boundary: int = 5,
    boundary_weight: float = 5.0,
    horizon: float | None = None,
    iterations: int = 40,
    floor: float = 0.1,
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
        How many of the best models' interval widths the design shrinks.
    boundary, boundary_weight :
        The gaps between the ``boundary`` best and the rest of the ``top`` that the design
        tries to resolve, and their weight against the widths (0: widths only).
    horizon : float, optional
        Votes the distribution will serve before it is computed again (default: as many as
        there are so far, at least 1000).
    iterations : int
        Steps of the design algorithm (each one solve of an (n, n) system).
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
    grp = None
    if groups is not None:
        grp = np.asarray(groups, dtype=np.intp)
        if grp.shape != (n,):
            raise ValueError(f"`groups` must have shape ({n},)")
    i, j = _all_pairs(n)
    if horizon is None:
        horizon = max(counts.sum() / 2, 1000.0)
    crit = _Criterion(r, top, boundary, boundary_weight)
    info = _pair_information(r, i, j)
    prob = _design(_information(n, r, counts), info, i, j, crit, float(horizon), iterations)
    prob = (1 - floor) * prob + floor / i.size
    votes = counts.sum(axis=1)
    cold = votes < warmup
    cold_pair = cold[i] | cold[j]
    if cold_pair.any() and warmup_share > 0:
        prob = np.where(cold_pair, 0.0, prob)
        warm_mass = prob.sum()
        prob = (1 - warmup_share) * (prob / warm_mass if warm_mass > 0 else np.zeros_like(prob))
        prob = prob + np.where(cold_pair, warmup_share / cold_pair.sum(), 0.0)
    if cap is not None:
        prob = _cap(prob, i, j, np.arange(n) if grp is None else grp, float(cap))
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
