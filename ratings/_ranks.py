"""Ranks from ratings and their uncertainty.

* ``rank``: competition rank by rating, ``1 + #{j : rating_j > rating_i}``.
* ``rank_ub``: Chatbot Arena's "rank (UB)", ``1 + #{j : lower_j > upper_i}``: the number of
  models that are better than ``i`` beyond doubt, plus one.
* ``rank_lower`` / ``rank_upper`` / ``rank_median``: the ``alpha / 2``, ``1 - alpha / 2`` and 0.5
  quantiles (``alpha = 1 - confidence_level``) of the rank distribution over bootstrap resamples
  (or other rating samples); the range ``[rank_lower, rank_upper]`` has ``rank_lower`` the
  better (smaller) number.

Only models flagged ``ranked`` take part; the others get rank 0 in every field.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._typing import ArrayLike, FloatArray, IntArray
from ._validation import alpha_of, confidence_level_iv

__all__ = ["Ranks", "rank_stats", "competition_rank"]


@dataclass(frozen=True, eq=False)
class Ranks:
    """Rank statistics per model, all of shape (n_models,), int64; 0 means not ranked.

    Attributes
    ----------
    rank, rank_ub, rank_lower, rank_upper, rank_median : ndarray of int
    rank_probs : ndarray of shape (n_models, n_models) or None
        ``rank_probs[i, k]`` is the share of samples in which model ``i`` had rank ``k + 1``.
    """

    rank: IntArray
    rank_ub: IntArray
    rank_lower: IntArray
    rank_upper: IntArray
    rank_median: IntArray
    rank_probs: FloatArray | None = None


def competition_rank(values: ArrayLike) -> IntArray:
    """``1 + #{j : values_j > values_i}`` for values of shape (n,) or (R, n) (per row)."""
    x = np.asarray(values, dtype=np.float64)
    if x.ndim == 1:
        return competition_rank(x[None])[0]
    neg = -x
    srt = np.sort(neg, axis=1)
    out = np.empty(x.shape, dtype=np.int64)
    for r in range(x.shape[0]):
        out[r] = np.searchsorted(srt[r], neg[r], side="left") + 1
    return out


def rank_stats(
    ratings: ArrayLike,
    lower: ArrayLike | None = None,
    upper: ArrayLike | None = None,
    *,
    samples: ArrayLike | None = None,
    confidence_level: float = 0.95,
    ranked: ArrayLike | None = None,
) -> Ranks:
    """Rank, rank UB and the rank distribution's range.

    Parameters
    ----------
    ratings : array-like of shape (n_models,)
    lower, upper : array-like of shape (n_models,), optional
        Interval bounds; without them ``rank_ub == rank``.
    samples : array-like of shape (n_samples, n_models), optional
        Rating samples (bootstrap resamples); without them the range is ``[rank, rank]``.
    confidence_level : float, default 0.95
        Level of the rank range ``[rank_lower, rank_upper]``.
    ranked : array-like of bool, shape (n_models,), optional
        Models that take part in the ranking (default: all).

    Returns
    -------
    Ranks
    """
    alpha = alpha_of(confidence_level_iv(confidence_level))
    r_all = np.asarray(ratings, dtype=np.float64)
    n = r_all.size
    use = np.ones(n, dtype=bool) if ranked is None else np.asarray(ranked, dtype=bool)
    if use.shape != (n,):
        raise ValueError(f"`ranked` must have shape ({n},), got {use.shape}")
    idx = np.flatnonzero(use)
    m = idx.size

    def spread(values: IntArray) -> IntArray:
        out = np.zeros(n, dtype=np.int64)
        out[idx] = values
        return out

    rank = spread(competition_rank(r_all[idx])) if m else np.zeros(n, dtype=np.int64)
    if lower is not None and upper is not None and m:
        lo = np.asarray(lower, dtype=np.float64)[idx]
        hi = np.asarray(upper, dtype=np.float64)[idx]
        rank_ub = spread(1 + (lo[None, :] > hi[:, None]).sum(axis=1))
    else:
        rank_ub = rank.copy()
    if samples is None or not m:
        return Ranks(rank, rank_ub, rank.copy(), rank.copy(), rank.copy())
    s = np.asarray(samples, dtype=np.float64)
    if s.ndim != 2 or s.shape[1] != n:
        raise ValueError(f"`samples` must have shape (n_samples, {n}), got {s.shape}")
    r = competition_rank(s[:, idx])
    lo, med, hi = np.quantile(r, [alpha / 2, 0.5, 1 - alpha / 2], axis=0, method="inverted_cdf")
    probs = np.zeros((n, n))
    for col, model in enumerate(idx):
        probs[model, :m] = np.bincount(r[:, col] - 1, minlength=m) / r.shape[0]
    return Ranks(rank, rank_ub, spread(lo), spread(hi), spread(med), probs)
