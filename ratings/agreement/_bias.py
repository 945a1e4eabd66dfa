"""Position and length bias of verdicts, and combining the two orders of a judged pair."""

from __future__ import annotations

from typing import Literal

import numpy as np
from scipy import special

from .._outcomes import A_WINS, B_WINS, TIE
from .._typing import ArrayLike, FloatArray, Seed
from ._bootstrap import bootstrap_weights, percentile_estimate, ratio_estimate, safe_ratio
from ._humans import vote_counts
from ._results import Estimate, LengthBias, PositionPreference
from ._validation import (
    combine_orders_iv,
    first_position_iv,
    length_bias_iv,
    position_consistency_iv,
)


def first_position_preference(
    verdicts: ArrayLike,
    *,
    items: ArrayLike | None = None,
    n_resamples: int = 1000,
    confidence_level: float = 0.95,
    rng: Seed = None,
) -> PositionPreference:
    """Share of non-tie verdicts that pick the answer shown first.

    Parameters
    ----------
    verdicts : array-like of int, shape (n_verdicts,)
        Outcome codes, with A the answer shown first.
    items : array-like of int, shape (n_verdicts,), optional
        Item of each verdict; the bootstrap resamples items (so several human votes on one item
        stay together). By default every verdict is its own item.
    n_resamples : int, optional
        Bootstrap resamples.
    confidence_level : float, optional
        Level of the percentile interval.
    rng : None, int or numpy.random.Generator, optional
        Seed or generator for the bootstrap.

    Returns
    -------
    PositionPreference

    Raises
    ------
    ValueError
        If the inputs are malformed.
    """
    verdicts, cluster, n_resamples, confidence_level = first_position_iv(
        verdicts, items, n_resamples, confidence_level
    )
    rng = np.random.default_rng(rng)
    _, cluster = np.unique(cluster, return_inverse=True)
    per_item = vote_counts(int(cluster.max()) + 1, cluster, verdicts).astype(float)
    n_first, n_second, n_ties = (int(x) for x in per_item.sum(axis=0))
    sums = np.stack([per_item[:, A_WINS], per_item[:, A_WINS] + per_item[:, B_WINS]], axis=1)
    share = ratio_estimate(sums, n_resamples, confidence_level, rng)
    return PositionPreference(share, n_first, n_second, n_ties)


def position_consistency(
    ab: ArrayLike,
    ba: ArrayLike,
    *,
    n_resamples: int = 1000,
    confidence_level: float = 0.95,
    rng: Seed = None,
) -> Estimate:
    """Share of pairs judged in both orders whose two verdicts agree.

    The pair is shown once as (x, y) and once as (y, x). Both verdicts are given as the score
    of the answer *shown first* (`verdict_scores` or `outcome_scores`); they are consistent
    when they pick the same answer (or both call a tie): ``side(ab) == side(1 - ba)``.

    Parameters
    ----------
    ab : array-like of float, shape (n_pairs,)
        Score of x when x was shown first.
    ba : array-like of float, shape (n_pairs,)
        Score of y when y was shown first.
    n_resamples : int, optional
        Bootstrap resamples of the pairs.
    confidence_level : float, optional
        Level of the percentile interval.
    rng : None, int or numpy.random.Generator, optional
        Seed or generator for the bootstrap.

    Returns
    -------
    Estimate

    Raises
    ------
    ValueError
        If the inputs are malformed.
    """
    ab, ba, n_resamples, confidence_level = position_consistency_iv(
        ab, ba, n_resamples, confidence_level
    )
    rng = np.random.default_rng(rng)
    consistent = np.sign(ab - 0.5) == np.sign(0.5 - ba)
    sums = np.stack([consistent.astype(float), np.ones(ab.size)], axis=1)
    return ratio_estimate(sums, n_resamples, confidence_level, rng)


def combine_orders(
    ab: ArrayLike, ba: ArrayLike, *, rule: Literal["tie", "average"] = "tie"
) -> FloatArray:
    """Combine the verdicts of a pair judged in both orders into one score for x.

    Parameters
    ----------
    ab : array-like of float, shape (n_pairs,)
        Score of x when x was shown first (see `verdict_scores`, `outcome_scores`).
    ba : array-like of float, shape (n_pairs,)
        Score of y when y was shown first.
    rule : {"tie", "average"}, optional
        ``"tie"``: consistent verdicts (see `position_consistency`) stand, as the mean of the
        two scores of x (``ab`` and ``1 - ba``); inconsistent ones become a tie (0.5).
        ``"average"``: always the mean of the two scores of x, so a win in one order and a tie
        in the other leans to the winner.

    Returns
    -------
    scores : ndarray of shape (n_pairs,)
        Score of x in [0, 1]; `score_outcomes` turns it into outcome codes (x as A).

    Raises
    ------
    ValueError
        If the inputs are malformed.
    """
    x_first, y_first, how = combine_orders_iv(ab, ba, rule)
    mean = (x_first + (1.0 - y_first)) / 2.0
    if how == "average":
        return mean
    consistent = np.sign(x_first - 0.5) == np.sign(0.5 - y_first)
    return np.where(consistent, mean, 0.5)


def length_bias(
    verdicts: ArrayLike,
    len_a: ArrayLike,
    len_b: ArrayLike,
    *,
    items: ArrayLike | None = None,
    n_resamples: int = 1000,
    confidence_level: float = 0.95,
    rng: Seed = None,
) -> LengthBias:
    """How strongly verdicts prefer the longer answer.

    Two measures over non-tie verdicts: the share that picks the longer answer (pairs of
    equal length left out), and the slope of a logistic regression of ``A wins`` on the
    relative length difference ``d = (len_a - len_b) / (len_a + len_b + 1)`` with an intercept.

    Parameters
    ----------
    verdicts : array-like of int, shape (n_verdicts,)
        Outcome codes.
    len_a, len_b : array-like of float, shape (n_verdicts,)
        Lengths (characters or tokens, non-negative) of answers A and B.
    items : array-like of int, shape (n_verdicts,), optional
        Item of each verdict; the bootstrap resamples items. By default every verdict is its
        own item.
    n_resamples : int, optional
        Bootstrap resamples.
    confidence_level : float, optional
        Level of the percentile intervals.
    rng : None, int or numpy.random.Generator, optional
        Seed or generator for the bootstrap.

    Returns
    -------
    LengthBias

    Raises
    ------
    ValueError
        If the inputs are malformed or there are no non-tie verdicts.
    RuntimeError
        If the regression on the full data does not converge (e.g. perfect separation).
        Resamples whose regression does not converge are left out of the interval.
    """
    verdicts, len_a, len_b, cluster, n_resamples, confidence_level = length_bias_iv(
        verdicts, len_a, len_b, items, n_resamples, confidence_level
    )
    rng = np.random.default_rng(rng)
    _, cluster = np.unique(cluster, return_inverse=True)  # resample only items that occur
    decided = verdicts != TIE
    if not decided.any():
        raise ValueError("`verdicts` has no non-tie verdict")
    a_wins = (verdicts == A_WINS).astype(float)
    d = (len_a - len_b) / (len_a + len_b + 1.0)

    # Group verdicts by (item, d): verdicts in a group share the regressor and move together.
    _, group = np.unique(np.column_stack([cluster, d]), axis=0, return_inverse=True)
    group = group.ravel()
    n_groups = int(group.max()) + 1
    group_item = np.zeros(n_groups, dtype=np.intp)
    group_item[group] = cluster
    group_d = np.zeros(n_groups)
    group_d[group] = d
    wins = np.bincount(group, weights=a_wins * decided, minlength=n_groups)
    trials = np.bincount(group, weights=decided.astype(float), minlength=n_groups)
    picks_longer = decided & (((d > 0) & (verdicts == A_WINS)) | ((d < 0) & (verdicts == B_WINS)))
    longer = np.bincount(group, weights=picks_longer, minlength=n_groups)
    unequal = np.bincount(group, weights=decided & (d != 0), minlength=n_groups)

    n_items = int(cluster.max()) + 1
    weights = bootstrap_weights(rng, n_items, n_resamples)[:, group_item]  # (n_res, n_groups)
    longer_share = percentile_estimate(
        safe_ratio(longer.sum(), unequal.sum()),
        safe_ratio(weights @ longer, weights @ unequal),
        confidence_level,
    )

    beta = _logistic_fit(group_d, wins[None, :], trials[None, :])
    if not np.isfinite(beta[0, 1]):
        raise RuntimeError("the length regression did not converge (perfect separation?)")
    boot = _logistic_fit(group_d, weights * wins, weights * trials)[:, 1]
    slope = percentile_estimate(float(beta[0, 1]), boot, confidence_level)
    return LengthBias(longer_share, slope, int(decided.sum()))


def _logistic_fit(
    x: FloatArray, wins: np.ndarray, trials: np.ndarray, *, max_iter: int = 100, tol: float = 1e-10
) -> FloatArray:
    """Binomial logistic regression ``logit p = b0 + b1 x`` for several weightings at once.

    ``wins`` and ``trials`` have shape (n_fits, n_groups); returns ``beta`` of shape
    (n_fits, 2), with ``nan`` rows for fits that did not converge.
    """
    n_fits = wins.shape[0]
    beta = np.zeros((n_fits, 2))
    active = np.ones(n_fits, dtype=bool)
    converged = np.zeros(n_fits, dtype=bool)
    for _ in range(max_iter):
        b = beta[active]
        p = special.expit(b[:, :1] + b[:, 1:] * x)
        w = trials[active] * p * (1.0 - p)
        r = wins[active] - trials[active] * p
        g0, g1 = r.sum(axis=1), (r * x).sum(axis=1)
        h00, h01, h11 = w.sum(axis=1), (w * x).sum(axis=1), (w * x * x).sum(axis=1)
        det = h00 * h11 - h01**2
        with np.errstate(divide="ignore", invalid="ignore"):
            step = np.column_stack([(h11 * g0 - h01 * g1) / det, (h00 * g1 - h01 * g0) / det])
        bad = ~np.isfinite(step).all(axis=1) | (np.abs(b) > 50).any(axis=1)
        step[bad] = 0.0
        beta[active] = b + step
        done = ~bad & (np.abs(step).max(axis=1) < tol)
        index = np.flatnonzero(active)
        converged[index[done]] = True
        active[index[done | bad]] = False
        if not active.any():
            break
    beta[~converged] = np.nan
    return beta
