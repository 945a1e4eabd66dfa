"""Pairwise predictions: P(i beats j) with intervals, significance, and votes still needed.

``prob[i, j]`` is the predicted expected score of ``i`` against ``j`` (a tie counts half):
``expit(theta_i - theta_j)`` for Bradley-Terry; for Davidson, ``P(i wins) + P(tie) / 2``.
Intervals come from the bootstrap resamples (percentiles of the per-resample prediction) or, for
sandwich intervals, from ``d +/- z * se(d)`` on the log-strength gap ``d`` mapped through the
same function. ``significant[i, j]`` says the gap's interval excludes 0.

``votes_needed[i, j]`` estimates how many more ``i``-vs-``j`` votes would make the gap
significant at ``confidence_level``, if the estimated gap ``d`` stayed what it is: one more vote on
the pair adds ``v = (p (1 - p))**2 / var(y)`` to the precision of ``d`` (``p`` the predicted
score, ``var(y) = p (1 - p) - t / 4`` the score variance with the observed tie share ``t``), so
``m = z**2 / (v d**2) - 1 / (v s)`` with ``s`` the current variance of ``d``. It is 0 for pairs
already separated and ``inf`` when ``d == 0``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.special import expit, ndtri

from ._fit import RatingFit, fitted_pairs
from ._intervals import Intervals
from ._typing import BoolArray, FloatArray
from ._validation import alpha_of

__all__ = ["Pairwise", "pairwise"]


@dataclass(frozen=True, eq=False)
class Pairwise:
    """Pairwise predictions, each of shape (n_models, n_models).

    Attributes
    ----------
    prob, lower, upper : ndarray of float
        Predicted expected score of row model against column model, and its interval.
    significant : ndarray of bool
        The two models' ratings differ significantly at ``confidence_level``.
    votes_needed : ndarray of float
        Estimated additional votes on the pair to separate them (0 if already separated,
        ``inf`` if the estimated gap is exactly 0); the diagonal is 0.
    confidence_level : float
        Level of the intervals (that of the :class:`Intervals` given, default 0.95).
    """

    prob: FloatArray
    lower: FloatArray
    upper: FloatArray
    significant: BoolArray
    votes_needed: FloatArray
    confidence_level: float


def _score(fit: RatingFit, d: FloatArray, eta: float | FloatArray | None = None) -> FloatArray:
    if fit.method != "davidson":
        return expit(d)
    e = fit.log_tie if eta is None else eta
    if e is None:
        raise ValueError("a Davidson fit without its log tie parameter")
    a = 0.5 * d
    log_z = np.logaddexp(np.logaddexp(a, -a), e)
    return np.exp(a - log_z) + 0.5 * np.exp(e - log_z)


def _gap_percentiles(
    th: FloatArray, q: Sequence[float]
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Percentiles ``q`` (numpy's default linear interpolation) and variance of the gap
    ``th[:, i] - th[:, j]`` over the rounds, for every pair i < j in ``triu_indices`` order.

    The gaps are laid out one pair per contiguous row and sorted once: numpy's vectorised
    sort of contiguous rows is several times faster than a partition across a strided axis.
    The variances come from the covariance of the samples (var_i + var_j - 2 cov_ij).
    """
    rounds, n = th.shape
    th_t = np.ascontiguousarray(th.T)
    iu, ju = np.triu_indices(n, 1)
    gaps = np.empty((iu.size, rounds))
    start = 0
    for i in range(n - 1):
        np.subtract(th_t[i], th_t[i + 1 :], out=gaps[start : start + n - 1 - i])
        start += n - 1 - i
    gaps.sort(axis=1)
    pos = np.asarray(q, dtype=np.float64) * (rounds - 1)
    out = []
    for p in pos:
        below = int(np.floor(p))
        a, b, t = gaps[:, below], gaps[:, min(below + 1, rounds - 1)], p - below
        diff = b - a  # numpy's _lerp, so the values equal np.quantile's to the last bit
        out.append(b - diff * (1 - t) if t >= 0.5 else a + diff * t)
    if rounds > 1:
        centred = th - th.mean(axis=0)
        cov = centred.T @ centred / (rounds - 1)
        var = np.clip(np.diag(cov)[iu] + np.diag(cov)[ju] - 2 * cov[iu, ju], 0.0, None)
    else:
        var = np.zeros(iu.size)
    return out[0], out[1], var


def pairwise(fit: RatingFit, intervals: Intervals | None = None) -> Pairwise:
    """Predicted pairwise scores with intervals and significance.

    Parameters
    ----------
    fit : RatingFit
    intervals : Intervals, optional
        From :func:`ratings.bootstrap` or :func:`ratings.sandwich` on the same fit; without
        it, only ``prob`` is informative (intervals collapse, nothing is significant).

    Returns
    -------
    Pairwise
    """
    if not isinstance(fit, RatingFit):
        raise TypeError("`fit` must be a RatingFit")
    theta = np.asarray(fit.theta)
    n = theta.size
    d = theta[:, None] - theta[None, :]
    prob = _score(fit, d)
    confidence_level = 0.95 if intervals is None else intervals.confidence_level
    alpha = alpha_of(confidence_level)
    z = float(ndtri(1 - alpha / 2))
    if intervals is None:
        var_d = np.zeros((n, n))
        lower, upper = prob.copy(), prob.copy()
        d_lo, d_hi = d.copy(), d.copy()
    elif intervals.theta_samples is not None:
        th = intervals.theta_samples
        eta = None
        if fit.method == "davidson" and intervals.tie_samples is not None:
            eta = np.log(intervals.tie_samples)[:, None]
        lower, upper = np.empty((n, n)), np.empty((n, n))
        d_lo, d_hi = np.empty((n, n)), np.empty((n, n))
        var_d = np.empty((n, n))
        q = [alpha / 2, 1 - alpha / 2]
        if eta is None:
            # Bradley-Terry: the gap is antisymmetric, so only i < j is computed (the
            # percentiles of -d are minus the mirrored percentiles of d), and the score is
            # increasing in the gap, so its percentiles are the gap's, mapped (up to the
            # interpolation between two neighbouring rounds).
            lo, hi, var = _gap_percentiles(th, q)
            iu, ju = np.triu_indices(n, 1)
            d_lo[iu, ju], d_hi[iu, ju] = lo, hi
            d_lo[ju, iu], d_hi[ju, iu] = -hi, -lo
            var_d[iu, ju] = var_d[ju, iu] = var
            np.fill_diagonal(d_lo, 0.0)
            np.fill_diagonal(d_hi, 0.0)
            np.fill_diagonal(var_d, 0.0)
            lower, upper = _score(fit, d_lo), _score(fit, d_hi)
        else:
            for i in range(n):  # row by row keeps memory at O(rounds * n)
                di = th[:, i : i + 1] - th
                d_lo[i], d_hi[i] = np.quantile(di, q, axis=0)
                var_d[i] = di.var(axis=0, ddof=1) if th.shape[0] > 1 else 0.0
                lower[i], upper[i] = np.quantile(_score(fit, di, eta), q, axis=0)
    else:
        cov = intervals.cov
        var_d = np.diag(cov)[:, None] + np.diag(cov)[None, :] - 2 * cov
        var_d = np.clip(var_d, 0.0, None)
        half = z * np.sqrt(var_d)
        d_lo, d_hi = d - half, d + half
        lower, upper = _score(fit, d_lo), _score(fit, d_hi)
    significant = (d_lo > 0) | (d_hi < 0)
    np.fill_diagonal(significant, False)

    # Per-vote information on d for the pair, from the fitted data's tie share.
    w = fitted_pairs(fit)[0].w
    tie_share = float(w[:, 2].sum() / w.sum()) if w.size else 0.0
    pq = prob * (1 - prob)
    var_y = np.clip(pq - tie_share / 4, 1e-12, None)
    v = pq * pq / var_y
    with np.errstate(divide="ignore", invalid="ignore"):
        need = z * z / (v * d * d) - np.where(var_d > 0, 1.0 / (v * var_d), 0.0)
    need = np.where(d == 0, np.inf, np.ceil(np.clip(need, 0, None)))
    need[significant] = 0.0
    np.fill_diagonal(need, 0.0)
    return Pairwise(prob, lower, upper, significant, need, confidence_level)
