"""Leaderboard level: a benchmark's scores and intervals against a reference's (arena-hard-auto)."""

from __future__ import annotations

import numpy as np
from scipy import special, stats

from .._typing import ArrayLike, BoolArray, FloatArray
from ._results import CIAgreement, RankCorrelation
from ._validation import (
    agreement_with_ci_iv,
    brier_score_iv,
    intervals_iv,
    mean_var_iv,
    rank_correlation_iv,
)


def rank_correlation(scores: ArrayLike, reference_scores: ArrayLike) -> RankCorrelation:
    """Spearman and Kendall correlation between a benchmark's and a reference's scores.

    Parameters
    ----------
    scores, reference_scores : array-like of float, shape (n_models,)
        Scores of the same models in the same order (higher is better).

    Returns
    -------
    RankCorrelation

    Raises
    ------
    ValueError
        If the inputs are malformed.
    """
    scores, reference_scores = rank_correlation_iv(scores, reference_scores)
    spearman = stats.spearmanr(scores, reference_scores).statistic
    kendall = stats.kendalltau(scores, reference_scores).statistic
    return RankCorrelation(float(spearman), float(kendall), scores.size)


def intervals_overlap(lower: ArrayLike, upper: ArrayLike, *, closed: bool = True) -> BoolArray:
    """Which pairs of confidence intervals overlap.

    Parameters
    ----------
    lower, upper : array-like of float, shape (n_models,)
        Interval bounds, ``lower <= upper``.
    closed : bool, optional
        ``True``: intervals overlap when they share a point, ``max(lower) <= min(upper)``; a
        zero-width interval (an anchored model, or a benchmark's baseline) overlaps every
        interval that contains its value. ``False``: they overlap when they share a segment
        of positive length, ``max(lower) < min(upper)``; a zero-width interval then overlaps
        nothing, and touching intervals do not overlap.

    Returns
    -------
    overlap : ndarray of bool, shape (n_models, n_models)
        Symmetric; the diagonal is ``True`` unless ``closed=False`` and the interval has zero
        width.

    Raises
    ------
    ValueError
        If the inputs are malformed.
    """
    lower, upper = intervals_iv(lower, upper, "lower", "upper")
    return _overlap(lower, upper, bool(closed))


def separability(lower: ArrayLike, upper: ArrayLike, *, closed: bool = True) -> float:
    """Share of model pairs whose confidence intervals do not overlap.

    Parameters
    ----------
    lower, upper : array-like of float, shape (n_models,)
        Interval bounds.
    closed : bool, optional
        Overlap rule (see `intervals_overlap`). ``True`` reproduces arena-hard-auto's
        separability, which sweeps the intervals sorted by lower bound and so counts a
        zero-width interval inside another as overlapping; the two differ only for intervals
        that exactly touch, which the sweep calls separate.

    Returns
    -------
    float
        In [0, 1], over the ``n_models * (n_models - 1) / 2`` pairs.

    Raises
    ------
    ValueError
        If the inputs are malformed or there are fewer than two models.
    """
    lower, upper = intervals_iv(lower, upper, "lower", "upper")
    if lower.size < 2:
        raise ValueError("`lower` must describe at least two models")
    overlap = _overlap(lower, upper, bool(closed))
    i, j = np.triu_indices(lower.size, k=1)
    return float((~overlap[i, j]).mean())


def agreement_with_ci(
    scores: ArrayLike,
    lower: ArrayLike,
    upper: ArrayLike,
    reference_scores: ArrayLike,
    reference_lower: ArrayLike,
    reference_upper: ArrayLike,
    *,
    closed: bool = True,
) -> CIAgreement:
    """Agreement with confidence intervals (arena-hard-auto).

    Over the model pairs that the reference separates (intervals do not overlap): +1 when the
    benchmark also separates the pair in the same order, +0.5 when the benchmark's intervals
    overlap, 0 when it separates them in the opposite order; divided by the number of pairs.
    Orders are read from the point scores.

    Parameters
    ----------
    scores, lower, upper : array-like of float, shape (n_models,)
        The benchmark's scores and interval bounds.
    reference_scores, reference_lower, reference_upper : array-like of float, shape (n_models,)
        The reference's, for the same models in the same order.
    closed : bool, optional
        Overlap rule for both sides (see `intervals_overlap`). arena-hard-auto's notebook
        uses ``closed=False`` here (overlap of positive length) while its separability uses
        closed intervals; the two differ only for zero-width intervals.

    Returns
    -------
    CIAgreement

    Raises
    ------
    ValueError
        If the inputs are malformed.
    """
    scores, lower, upper, reference_scores, reference_lower, reference_upper = agreement_with_ci_iv(
        scores, lower, upper, reference_scores, reference_lower, reference_upper
    )
    overlap = _overlap(lower, upper, bool(closed))
    reference_overlap = _overlap(reference_lower, reference_upper, bool(closed))
    i, j = np.triu_indices(scores.size, k=1)
    separated = ~reference_overlap[i, j]
    pair_overlap = overlap[i, j][separated]
    same = np.sign(scores[i] - scores[j]) == np.sign(reference_scores[i] - reference_scores[j])
    same = same[separated] & ~pair_overlap
    n_separated = int(separated.sum())
    n_same = int(same.sum())
    n_overlap = int(pair_overlap.sum())
    points = n_same + 0.5 * n_overlap
    agreement = points / n_separated if n_separated else float("nan")
    return CIAgreement(
        float(agreement), n_separated, n_same, n_overlap, n_separated - n_same - n_overlap
    )


def win_probabilities(mean: ArrayLike, var: ArrayLike) -> FloatArray:
    """Predicted probability that each model beats each other one (normal approximation).

    ``P[i, j] = Phi((mean[i] - mean[j]) / sqrt(var[i] + var[j]))``, the probability that
    model i's score exceeds model j's when both are independent normals; arena-hard-auto
    uses the mean and (``ddof=0``) variance of each model's bootstrap scores.

    Parameters
    ----------
    mean, var : array-like of float, shape (n_models,)
        Mean and variance of each model's score.

    Returns
    -------
    P : ndarray of shape (n_models, n_models)
        ``P + P.T == 1``; the diagonal is 0.5. Two zero-variance models give 1, 0 or 0.5.

    Raises
    ------
    ValueError
        If the inputs are malformed.
    """
    mean, var = mean_var_iv(mean, var, "mean", "var")
    return _win_probabilities(mean, var)


def brier_score(
    mean: ArrayLike,
    var: ArrayLike,
    reference_scores: ArrayLike,
    *,
    reference_var: ArrayLike | None = None,
) -> float:
    """Brier score of a benchmark's predicted win probabilities against a reference.

    Over all model pairs, the squared difference between `win_probabilities` of the benchmark
    and the reference's outcome: 1 if the reference ranks the first model higher, 0 if lower
    (0.5 on an exact tie), as in arena-hard-auto. With ``reference_var`` the target is instead
    the reference's own predicted probability (a soft label). Lower is better.

    Parameters
    ----------
    mean, var : array-like of float, shape (n_models,)
        Mean and variance of the benchmark's scores (e.g. of its bootstrap results).
    reference_scores : array-like of float, shape (n_models,)
        The reference's scores (e.g. Chatbot Arena ratings).
    reference_var : array-like of float, shape (n_models,), optional
        The reference's score variances, for soft targets.

    Returns
    -------
    float

    Raises
    ------
    ValueError
        If the inputs are malformed or there are fewer than two models.
    """
    mean, var, reference_scores, reference_var = brier_score_iv(
        mean, var, reference_scores, reference_var
    )
    predicted = _win_probabilities(mean, var)
    target: FloatArray
    if reference_var is None:
        target = np.sign(np.subtract.outer(reference_scores, reference_scores)) / 2.0 + 0.5
    else:
        target = _win_probabilities(reference_scores, reference_var)
    i, j = np.triu_indices(mean.size, k=1)
    return float(np.mean((predicted[i, j] - target[i, j]) ** 2))


def _overlap(lower: FloatArray, upper: FloatArray, closed: bool) -> BoolArray:
    """Pairwise overlap of intervals, shape (n, n) (see `intervals_overlap`)."""
    gap = np.minimum.outer(upper, upper) - np.maximum.outer(lower, lower)
    return gap >= 0 if closed else gap > 0


def _win_probabilities(mean: FloatArray, var: FloatArray) -> FloatArray:
    """``Phi((mean_i - mean_j) / sqrt(var_i + var_j))``, shape (n, n)."""
    diff = np.subtract.outer(mean, mean)
    scale = np.sqrt(np.add.outer(var, var))
    z = np.select([diff > 0, diff < 0], [np.inf, -np.inf], 0.0)  # zero variance: a sure order
    np.divide(diff, scale, out=z, where=scale > 0)
    return special.ndtr(z)
