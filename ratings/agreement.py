"""Agreement statistics: does an LLM judge (or a benchmark) agree with humans?

Two levels are covered.

Pair level: verdicts on single comparisons, coded with ratings' outcome codes
:data:`ratings.A_WINS` (0), :data:`ratings.B_WINS` (1) and :data:`ratings.TIE` (2), where A is the
answer shown first (left) and B the answer shown second (right); ``BOTH_BAD`` is not a verdict.
Items (compared pairs) are integers ``0..n_items-1``. Human votes come as two parallel arrays
``items`` and ``votes``; a judge gives one verdict per item. Every statistic comes with a
percentile bootstrap interval that resamples *items*, so the several votes on one item move
together.

Leaderboard level: score vectors of ``n_models`` models, indexed ``0..n_models-1`` in the same
order for the benchmark and the reference (for example Chatbot Arena), with their confidence
intervals, compared as in lmarena/arena-hard-auto: Spearman/Kendall correlation, separability,
agreement with confidence intervals and the Brier score of predicted win probabilities.

References
----------
.. [1] T. Li, W.-L. Chiang, E. Frick, L. Dunlap, T. Wu, B. Zhu, J. E. Gonzalez, I. Stoica,
   "From Crowdsourced Data to High-Quality Benchmarks: Arena-Hard and BenchBuilder Pipeline",
   arXiv:2406.11939, 2024 (notebook ``benchmark_for_benchmarks.ipynb`` in lmarena/arena-hard-auto).
.. [2] J. Cohen, "A coefficient of agreement for nominal scales", Educational and Psychological
   Measurement 20(1), 37-46, 1960.
.. [3] L. Zheng et al., "Judging LLM-as-a-Judge with MT-Bench and Chatbot Arena", NeurIPS 2023
   Datasets and Benchmarks (position and verbosity bias, judging both orders).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy import special, stats

from ._outcomes import A_WINS, B_WINS, N_VERDICTS, SCORE_OF_A, TIE

__all__ = [
    "NO_MAJORITY",
    "VERDICT_LABELS",
    "Estimate",
    "Agreement",
    "PositionPreference",
    "LengthBias",
    "RankCorrelation",
    "CIAgreement",
    "verdict_scores",
    "outcome_scores",
    "score_outcomes",
    "majority_vote",
    "judge_agreement",
    "human_agreement",
    "first_position_preference",
    "position_consistency",
    "combine_orders",
    "length_bias",
    "rank_correlation",
    "intervals_overlap",
    "separability",
    "agreement_with_ci",
    "win_probabilities",
    "brier_score",
]

NO_MAJORITY = -1
"""Marks an item without a usable majority (no votes, or excluded by ``no_majority="exclude"``)."""

VERDICT_LABELS = ("A>>B", "A>B", "A=B", "B>A", "B>>A")
"""The five-level judge scale (as in arena-hard-auto), from "A much better" to "B much better"."""

# The one place where the five-level scale becomes numbers: the score of answer A, in [0, 1],
# evenly spaced. arena-hard-auto instead counts a strong verdict as three battles of weight one
# (A>>B = three wins of A); that is a weighting of battles, not a score, and is not used here.
_LABEL_SCORES = {"A>>B": 1.0, "A>B": 0.75, "A=B": 0.5, "B>A": 0.25, "B>>A": 0.0}


@dataclass(frozen=True)
class Estimate:
    """A point estimate with a percentile bootstrap interval.

    Attributes
    ----------
    value : float
        The statistic on the full data (``nan`` if undefined, e.g. no non-tie verdicts).
    low, high : float
        Percentile bootstrap interval at the requested ``confidence_level``.
    """

    value: float
    low: float
    high: float


@dataclass(frozen=True, eq=False)
class Agreement:
    """Agreement of one rater with a reference over 3-way verdicts.

    Attributes
    ----------
    agreement : Estimate
        Share of comparisons where the rater's verdict equals the reference (ties included).
    agreement_no_ties : Estimate
        The same over comparisons where neither side is ``TIE``.
    kappa : Estimate
        Cohen's kappa over the three outcomes.
    confusion : ndarray of shape (3, 3)
        Counts; rows are the reference outcome, columns the rater's, both indexed by
        ``A_WINS, B_WINS, TIE``.
    n_items : int
        Items that entered the statistic (the bootstrap resamples these).
    n_comparisons : int
        Compared verdicts (``confusion.sum()``): one per item for a judge, one per vote for the
        human leave-one-out baseline.
    """

    agreement: Estimate
    agreement_no_ties: Estimate
    kappa: Estimate
    confusion: np.ndarray
    n_items: int
    n_comparisons: int


@dataclass(frozen=True)
class PositionPreference:
    """How often the answer shown first is picked.

    Attributes
    ----------
    first_share : Estimate
        ``n_first / (n_first + n_second)``: share of non-tie verdicts that pick the first-shown
        answer (0.5 means no position preference).
    n_first, n_second, n_ties : int
        Verdicts for the first-shown answer, for the second-shown answer, and ties.
    """

    first_share: Estimate
    n_first: int
    n_second: int
    n_ties: int


@dataclass(frozen=True)
class LengthBias:
    """How strongly verdicts follow answer length.

    Attributes
    ----------
    longer_share : Estimate
        Share of non-tie verdicts on answers of unequal length that pick the longer answer.
    slope : Estimate
        Logistic-regression slope of ``P(A wins | not a tie)`` on the relative length difference
        ``d = (len_a - len_b) / (len_a + len_b + 1)`` (in ``(-1, 1)``), with an intercept that
        absorbs position preference. It is the change in log-odds of picking A from equal
        lengths (``d = 0``) to "only A says anything" (``d -> 1``); 0 means no length bias.
    n_used : int
        Non-tie verdicts used by the regression.
    """

    longer_share: Estimate
    slope: Estimate
    n_used: int


@dataclass(frozen=True)
class RankCorrelation:
    """Rank correlation of two score vectors.

    Attributes
    ----------
    spearman : float
        Spearman's rho.
    kendall : float
        Kendall's tau-b.
    n_models : int
        Number of models compared.
    """

    spearman: float
    kendall: float
    n_models: int


@dataclass(frozen=True)
class CIAgreement:
    """Agreement with confidence intervals over the pairs the reference separates.

    Attributes
    ----------
    agreement : float
        ``(n_same + 0.5 * n_overlap) / n_separated`` (``nan`` when ``n_separated == 0``).
    n_separated : int
        Model pairs whose reference intervals do not overlap.
    n_same : int
        Of those, pairs that the benchmark separates in the same order.
    n_overlap : int
        Pairs whose benchmark intervals overlap (half a point each).
    n_opposite : int
        Pairs that the benchmark separates in the opposite order.
    """

    agreement: float
    n_separated: int
    n_same: int
    n_overlap: int
    n_opposite: int


# --------------------------------------------------------------------------------------------
# Verdict scales


def verdict_scores(labels):
    """Map five-level judge labels to the score of answer A, in [0, 1].

    This is the single definition of the five-level scale: ``A>>B`` 1.0, ``A>B`` 0.75,
    ``A=B`` 0.5, ``B>A`` 0.25, ``B>>A`` 0.0 (evenly spaced; the score of B is ``1 - score``).

    Parameters
    ----------
    labels : array-like of str, shape (n_verdicts,)
        Labels from ``VERDICT_LABELS``.

    Returns
    -------
    scores : ndarray of shape (n_verdicts,)

    Raises
    ------
    ValueError
        If a label is not one of ``VERDICT_LABELS``.
    """
    labels = np.asarray(labels, dtype=object).ravel()
    unknown = sorted({str(x) for x in labels} - set(_LABEL_SCORES))
    if unknown:
        raise ValueError(f"`labels` has unknown verdicts {unknown}; expected {VERDICT_LABELS}")
    return np.array([_LABEL_SCORES[x] for x in labels], dtype=float)


def outcome_scores(outcomes):
    """Map outcome codes to the score of answer A: ``A_WINS`` 1, ``B_WINS`` 0, ``TIE`` 0.5.

    Parameters
    ----------
    outcomes : array-like of int, shape (n_verdicts,)

    Returns
    -------
    scores : ndarray of shape (n_verdicts,)
    """
    outcomes = _outcomes_iv(outcomes, "outcomes")
    return np.asarray(SCORE_OF_A)[outcomes]


def score_outcomes(scores):
    """Map scores of answer A in [0, 1] to outcome codes (above 0.5: ``A_WINS``, ...).

    Parameters
    ----------
    scores : array-like of float, shape (n_verdicts,)

    Returns
    -------
    outcomes : ndarray of int, shape (n_verdicts,)
    """
    scores = _scores_iv(scores, "scores")
    return np.select([scores > 0.5, scores < 0.5], [A_WINS, B_WINS], TIE)


# --------------------------------------------------------------------------------------------
# Agreement with humans


def majority_vote(n_items, items, votes, *, no_majority="tie"):
    """The human majority (plurality) verdict of each item.

    The majority is the outcome with the most votes among ``A_WINS, B_WINS, TIE``. When the top
    count is shared (e.g. one vote for A and one for B, or 2-2-1), there is no majority and
    ``no_majority`` decides: ``"tie"`` reads the split as a tie, ``"exclude"`` marks the item
    ``NO_MAJORITY``. Items without votes are always ``NO_MAJORITY``.

    Parameters
    ----------
    n_items : int
        Number of items.
    items : array-like of int, shape (n_votes,)
        Item of each vote, in ``0..n_items-1``.
    votes : array-like of int, shape (n_votes,)
        Outcome code of each vote.
    no_majority : {"tie", "exclude"}, optional
        Rule for a shared top count.

    Returns
    -------
    majority : ndarray of int, shape (n_items,)
        Outcome code, or ``NO_MAJORITY``.

    Raises
    ------
    ValueError
        If the inputs are malformed.
    """
    n_items, items, votes, no_majority = _majority_vote_iv(n_items, items, votes, no_majority)
    return _plurality(_vote_counts(n_items, items, votes), no_majority)


def judge_agreement(
    judge,
    items,
    votes,
    *,
    min_votes=1,
    no_majority="tie",
    n_resamples=1000,
    confidence_level=0.95,
    rng=None,
):
    """Agreement of a judge with the human majority, item by item.

    Each item with at least ``min_votes`` human votes and a majority (see `majority_vote`) is
    one comparison: the judge's verdict against the majority. The judge is compared with the
    majority of *all* votes, whereas `human_agreement` compares each vote with the majority of
    the *other* votes: the judge's reference holds one vote more, which slightly favours the
    judge in a comparison with the human baseline.

    Parameters
    ----------
    judge : array-like of int, shape (n_items,)
        The judge's outcome code for each item.
    items : array-like of int, shape (n_votes,)
        Item of each human vote, in ``0..n_items-1``.
    votes : array-like of int, shape (n_votes,)
        Outcome code of each human vote.
    min_votes : int, optional
        Items with fewer human votes are left out.
    no_majority : {"tie", "exclude"}, optional
        Rule for items whose top vote count is shared (see `majority_vote`).
    n_resamples : int, optional
        Bootstrap resamples of the items.
    confidence_level : float, optional
        Level of the percentile intervals.
    rng : None, int or numpy.random.Generator, optional
        Seed or generator for the bootstrap.

    Returns
    -------
    Agreement
        Confusion rows: human majority; columns: judge.

    Raises
    ------
    ValueError
        If the inputs are malformed or no item qualifies.
    """
    judge, items, votes, min_votes, no_majority, n_resamples, confidence_level = (
        _judge_agreement_iv(
            judge, items, votes, min_votes, no_majority, n_resamples, confidence_level
        )
    )
    rng = np.random.default_rng(rng)
    counts = _vote_counts(judge.size, items, votes)
    majority = _plurality(counts, no_majority)
    used = (counts.sum(axis=1) >= min_votes) & (majority != NO_MAJORITY)
    if not used.any():
        raise ValueError("no item has enough human votes and a majority; check `min_votes`")
    cells = majority[used] * N_VERDICTS + judge[used]
    tables = np.zeros((cells.size, N_VERDICTS**2))
    tables[np.arange(cells.size), cells] = 1.0
    return _agreement_from_tables(tables, n_resamples, confidence_level, rng)


def human_agreement(
    items,
    votes,
    *,
    no_majority="tie",
    n_resamples=1000,
    confidence_level=0.95,
    rng=None,
):
    """Human-human agreement baseline: each vote against the majority of the other votes.

    Leave-one-out: on every item with at least two votes, each vote is compared with the
    majority (see `majority_vote`) of the remaining votes on that item. With
    ``no_majority="exclude"``, votes whose other votes have no majority are not compared.
    Agreement is pooled over votes; the bootstrap resamples items.

    Parameters
    ----------
    items : array-like of int, shape (n_votes,)
        Item of each vote (non-negative integers).
    votes : array-like of int, shape (n_votes,)
        Outcome code of each vote.
    no_majority : {"tie", "exclude"}, optional
        Rule for a shared top count among the other votes.
    n_resamples : int, optional
        Bootstrap resamples of the items.
    confidence_level : float, optional
        Level of the percentile intervals.
    rng : None, int or numpy.random.Generator, optional
        Seed or generator for the bootstrap.

    Returns
    -------
    Agreement
        Confusion rows: majority of the other votes; columns: the held-out vote.

    Raises
    ------
    ValueError
        If the inputs are malformed or no item has two votes.
    """
    items, votes, no_majority, n_resamples, confidence_level = _human_agreement_iv(
        items, votes, no_majority, n_resamples, confidence_level
    )
    rng = np.random.default_rng(rng)
    _, items = np.unique(items, return_inverse=True)
    counts = _vote_counts(int(items.max()) + 1, items, votes)
    counts = counts[counts.sum(axis=1) >= 2]
    if counts.shape[0] == 0:
        raise ValueError("`items` has no item with at least two votes")
    # others[i, k] = vote counts on item i without one vote of outcome k.
    others = counts[:, None, :] - np.eye(N_VERDICTS, dtype=counts.dtype)[None, :, :]
    others_majority = _plurality(others, no_majority)  # (n_items, 3), held-out vote k
    held_out = np.broadcast_to(np.arange(N_VERDICTS), others_majority.shape)
    keep = (counts > 0) & (others_majority != NO_MAJORITY)
    n = counts.shape[0]
    tables = np.zeros((n, N_VERDICTS**2))
    rows = np.broadcast_to(np.arange(n)[:, None], keep.shape)[keep]
    np.add.at(tables, (rows, others_majority[keep] * N_VERDICTS + held_out[keep]), counts[keep])
    tables = tables[tables.sum(axis=1) > 0]
    if tables.shape[0] == 0:
        raise ValueError("no vote has a majority among the other votes on its item")
    return _agreement_from_tables(tables, n_resamples, confidence_level, rng)


# --------------------------------------------------------------------------------------------
# Position and length bias


def first_position_preference(
    verdicts, *, items=None, n_resamples=1000, confidence_level=0.95, rng=None
):
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
    verdicts, cluster, n_resamples, confidence_level = _first_position_iv(
        verdicts, items, n_resamples, confidence_level
    )
    rng = np.random.default_rng(rng)
    _, cluster = np.unique(cluster, return_inverse=True)
    per_item = _vote_counts(int(cluster.max()) + 1, cluster, verdicts).astype(float)
    n_first, n_second, n_ties = (int(x) for x in per_item.sum(axis=0))
    sums = np.stack([per_item[:, A_WINS], per_item[:, A_WINS] + per_item[:, B_WINS]], axis=1)
    share = _ratio_estimate(sums, n_resamples, confidence_level, rng)
    return PositionPreference(share, n_first, n_second, n_ties)


def position_consistency(ab, ba, *, n_resamples=1000, confidence_level=0.95, rng=None):
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
    ab, ba, n_resamples, confidence_level = _position_consistency_iv(
        ab, ba, n_resamples, confidence_level
    )
    rng = np.random.default_rng(rng)
    consistent = np.sign(ab - 0.5) == np.sign(0.5 - ba)
    sums = np.stack([consistent.astype(float), np.ones(ab.size)], axis=1)
    return _ratio_estimate(sums, n_resamples, confidence_level, rng)


def combine_orders(ab, ba, *, rule: Literal["tie", "average"] = "tie"):
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
    ab, ba, rule = _combine_orders_iv(ab, ba, rule)
    mean = (ab + (1.0 - ba)) / 2.0
    if rule == "average":
        return mean
    consistent = np.sign(ab - 0.5) == np.sign(0.5 - ba)
    return np.where(consistent, mean, 0.5)


def length_bias(
    verdicts,
    len_a,
    len_b,
    *,
    items=None,
    n_resamples=1000,
    confidence_level=0.95,
    rng=None,
):
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
    verdicts, len_a, len_b, cluster, n_resamples, confidence_level = _length_bias_iv(
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
    weights = _bootstrap_weights(rng, n_items, n_resamples)[:, group_item]  # (n_res, n_groups)
    longer_share = _estimate(
        _safe_ratio(longer.sum(), unequal.sum()),
        _safe_ratio(weights @ longer, weights @ unequal),
        confidence_level,
    )

    beta = _logistic_fit(group_d, wins[None, :], trials[None, :])
    if not np.isfinite(beta[0, 1]):
        raise RuntimeError("the length regression did not converge (perfect separation?)")
    boot = _logistic_fit(group_d, weights * wins, weights * trials)[:, 1]
    slope = _estimate(float(beta[0, 1]), boot, confidence_level)
    return LengthBias(longer_share, slope, int(decided.sum()))


# --------------------------------------------------------------------------------------------
# Leaderboard level


def rank_correlation(scores, reference_scores):
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
    scores, reference_scores = _rank_correlation_iv(scores, reference_scores)
    spearman = stats.spearmanr(scores, reference_scores).statistic
    kendall = stats.kendalltau(scores, reference_scores).statistic
    return RankCorrelation(float(spearman), float(kendall), scores.size)


def intervals_overlap(lower, upper, *, closed=True):
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
    lower, upper = _intervals_iv(lower, upper, "lower", "upper")
    return _overlap(lower, upper, bool(closed))


def separability(lower, upper, *, closed=True):
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
    lower, upper = _intervals_iv(lower, upper, "lower", "upper")
    if lower.size < 2:
        raise ValueError("`lower` must describe at least two models")
    overlap = _overlap(lower, upper, bool(closed))
    i, j = np.triu_indices(lower.size, k=1)
    return float((~overlap[i, j]).mean())


def agreement_with_ci(
    scores, lower, upper, reference_scores, reference_lower, reference_upper, *, closed=True
):
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
    scores, lower, upper, reference_scores, reference_lower, reference_upper = (
        _agreement_with_ci_iv(
            scores, lower, upper, reference_scores, reference_lower, reference_upper
        )
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


def win_probabilities(mean, var):
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
    mean, var = _mean_var_iv(mean, var, "mean", "var")
    return _win_probabilities(mean, var)


def brier_score(mean, var, reference_scores, *, reference_var=None):
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
    mean, var, reference_scores, reference_var = _brier_score_iv(
        mean, var, reference_scores, reference_var
    )
    predicted = _win_probabilities(mean, var)
    if reference_var is None:
        target = np.sign(np.subtract.outer(reference_scores, reference_scores)) / 2.0 + 0.5
    else:
        target = _win_probabilities(reference_scores, reference_var)
    i, j = np.triu_indices(mean.size, k=1)
    return float(np.mean((predicted[i, j] - target[i, j]) ** 2))


# --------------------------------------------------------------------------------------------
# Internals


def _overlap(lower, upper, closed):
    """Pairwise overlap of intervals, shape (n, n) (see `intervals_overlap`)."""
    gap = np.minimum.outer(upper, upper) - np.maximum.outer(lower, lower)
    return gap >= 0 if closed else gap > 0


def _win_probabilities(mean, var):
    """``Phi((mean_i - mean_j) / sqrt(var_i + var_j))``, shape (n, n)."""
    diff = np.subtract.outer(mean, mean)
    scale = np.sqrt(np.add.outer(var, var))
    z = np.select([diff > 0, diff < 0], [np.inf, -np.inf], 0.0)  # zero variance: a sure order
    np.divide(diff, scale, out=z, where=scale > 0)
    return special.ndtr(z)


def _vote_counts(n_items, items, votes):
    """Votes per item and outcome, shape (n_items, 3)."""
    flat = np.bincount(items * N_VERDICTS + votes, minlength=n_items * N_VERDICTS)
    return flat.reshape(n_items, N_VERDICTS)


def _plurality(counts, no_majority):
    """Plurality outcome along the last axis, ``NO_MAJORITY`` or ``TIE`` when not unique."""
    top = counts.max(axis=-1, keepdims=True)
    unique = (counts == top).sum(axis=-1) == 1
    fallback = TIE if no_majority == "tie" else NO_MAJORITY
    majority = np.where(unique, counts.argmax(axis=-1), fallback)
    return np.where(top[..., 0] > 0, majority, NO_MAJORITY)


def _bootstrap_weights(rng, n, n_resamples):
    """How often each of ``n`` units is drawn in each resample, shape (n_resamples, n)."""
    draws = rng.integers(0, n, size=(n_resamples, n))
    offsets = np.arange(n_resamples)[:, None] * n
    return (
        np.bincount((draws + offsets).ravel(), minlength=n_resamples * n)
        .reshape(n_resamples, n)
        .astype(float)
    )


def _safe_ratio(num, den):
    num = np.asarray(num, dtype=float)
    den = np.asarray(den, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.where(den > 0, num / den, np.nan)
    return out if out.ndim else float(out)


def _estimate(value, boot, confidence_level):
    """Point value and percentile interval, ignoring resamples where the statistic is nan."""
    boot = np.asarray(boot, dtype=float)
    boot = boot[np.isfinite(boot)]
    if boot.size == 0:
        return Estimate(float(value), float("nan"), float("nan"))
    alpha = (1.0 - confidence_level) / 2.0
    low, high = np.quantile(boot, [alpha, 1.0 - alpha])
    return Estimate(float(value), float(low), float(high))


def _ratio_estimate(sums, n_resamples, confidence_level, rng):
    """Ratio of two per-item sums, ``sums`` of shape (n_items, 2), with its interval."""
    weights = _bootstrap_weights(rng, sums.shape[0], n_resamples)
    boot = weights @ sums
    return _estimate(
        _safe_ratio(sums[:, 0].sum(), sums[:, 1].sum()),
        _safe_ratio(boot[:, 0], boot[:, 1]),
        confidence_level,
    )


def _table_statistics(tables):
    """Agreement, no-tie agreement and kappa of confusion tables, shape (..., 9)."""
    t = tables.reshape(*tables.shape[:-1], N_VERDICTS, N_VERDICTS)
    total = t.sum(axis=(-2, -1))
    diagonal = np.trace(t, axis1=-2, axis2=-1)
    decided = t[..., :2, :2]
    observed = _safe_ratio(diagonal, total)
    no_ties = _safe_ratio(np.trace(decided, axis1=-2, axis2=-1), decided.sum(axis=(-2, -1)))
    with np.errstate(divide="ignore", invalid="ignore"):
        expected = (t.sum(axis=-1) * t.sum(axis=-2)).sum(axis=-1) / total**2
        kappa = np.where(expected < 1, (observed - expected) / (1 - expected), np.nan)
    return observed, no_ties, kappa


def _agreement_from_tables(tables, n_resamples, confidence_level, rng):
    """`Agreement` from per-item confusion tables, shape (n_items, 9)."""
    total = tables.sum(axis=0)
    point = _table_statistics(total)
    boot = _table_statistics(_bootstrap_weights(rng, tables.shape[0], n_resamples) @ tables)
    agreement, no_ties, kappa = (
        _estimate(p, b, confidence_level) for p, b in zip(point, boot, strict=True)
    )
    confusion = total.reshape(N_VERDICTS, N_VERDICTS).round().astype(int)
    return Agreement(agreement, no_ties, kappa, confusion, tables.shape[0], int(confusion.sum()))


def _logistic_fit(x, wins, trials, *, max_iter=100, tol=1e-10):
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


# --------------------------------------------------------------------------------------------
# Input validation


def _outcomes_iv(x, name):
    x = np.asarray(x)
    if x.ndim != 1:
        raise ValueError(f"`{name}` must be one-dimensional")
    if x.size and not np.issubdtype(x.dtype, np.integer):
        raise ValueError(f"`{name}` must hold integer outcome codes")
    if x.size and (x.min() < 0 or x.max() >= N_VERDICTS):
        raise ValueError(f"`{name}` must hold A_WINS (0), B_WINS (1) or TIE (2)")
    return x.astype(np.intp)


def _items_iv(x, name, size, n_items=None):
    x = np.asarray(x)
    if x.shape != (size,):
        raise ValueError(f"`{name}` must have shape ({size},)")
    if size == 0:
        raise ValueError(f"`{name}` must not be empty")
    if not np.issubdtype(x.dtype, np.integer) or x.min() < 0:
        raise ValueError(f"`{name}` must hold non-negative integer item ids")
    if n_items is not None and x.max() >= n_items:
        raise ValueError(f"`{name}` must be below n_items={n_items}")
    return x.astype(np.intp)


def _scores_iv(x, name):
    x = np.asarray(x, dtype=float)
    if x.ndim != 1:
        raise ValueError(f"`{name}` must be one-dimensional")
    if not np.all((x >= 0) & (x <= 1)):
        raise ValueError(f"`{name}` must hold scores in [0, 1]")
    return x


def _vector_iv(x, name):
    x = np.asarray(x, dtype=float)
    if x.ndim != 1:
        raise ValueError(f"`{name}` must be one-dimensional")
    if not np.all(np.isfinite(x)):
        raise ValueError(f"`{name}` must be finite")
    return x


def _no_majority_iv(no_majority):
    if no_majority not in ("tie", "exclude"):
        raise ValueError('`no_majority` must be "tie" or "exclude"')
    return no_majority


def _bootstrap_iv(n_resamples, confidence_level):
    if isinstance(n_resamples, bool) or not isinstance(n_resamples, int | np.integer):
        raise ValueError("`n_resamples` must be an integer")
    if n_resamples < 1:
        raise ValueError("`n_resamples` must be positive")
    if not 0 < confidence_level < 1:
        raise ValueError("`confidence_level` must be in (0, 1)")
    return int(n_resamples), float(confidence_level)


def _majority_vote_iv(n_items, items, votes, no_majority):
    if isinstance(n_items, bool) or not isinstance(n_items, int | np.integer) or n_items < 1:
        raise ValueError("`n_items` must be a positive integer")
    votes = _outcomes_iv(votes, "votes")
    items = _items_iv(items, "items", votes.size, n_items)
    return int(n_items), items, votes, _no_majority_iv(no_majority)


def _judge_agreement_iv(judge, items, votes, min_votes, no_majority, n_resamples, level):
    judge = _outcomes_iv(judge, "judge")
    if judge.size == 0:
        raise ValueError("`judge` must not be empty")
    votes = _outcomes_iv(votes, "votes")
    items = _items_iv(items, "items", votes.size, judge.size)
    if isinstance(min_votes, bool) or not isinstance(min_votes, int | np.integer):
        raise ValueError("`min_votes` must be an integer")
    if min_votes < 1:
        raise ValueError("`min_votes` must be at least 1")
    n_resamples, level = _bootstrap_iv(n_resamples, level)
    return judge, items, votes, int(min_votes), _no_majority_iv(no_majority), n_resamples, level


def _human_agreement_iv(items, votes, no_majority, n_resamples, level):
    votes = _outcomes_iv(votes, "votes")
    items = _items_iv(items, "items", votes.size)
    n_resamples, level = _bootstrap_iv(n_resamples, level)
    return items, votes, _no_majority_iv(no_majority), n_resamples, level


def _first_position_iv(verdicts, items, n_resamples, level):
    verdicts = _outcomes_iv(verdicts, "verdicts")
    if verdicts.size == 0:
        raise ValueError("`verdicts` must not be empty")
    if items is None:
        items = np.arange(verdicts.size)
    items = _items_iv(items, "items", verdicts.size)
    n_resamples, level = _bootstrap_iv(n_resamples, level)
    return verdicts, items, n_resamples, level


def _position_consistency_iv(ab, ba, n_resamples, level):
    ab, ba, _ = _combine_orders_iv(ab, ba, "tie")
    if ab.size == 0:
        raise ValueError("`ab` must not be empty")
    n_resamples, level = _bootstrap_iv(n_resamples, level)
    return ab, ba, n_resamples, level


def _combine_orders_iv(ab, ba, rule):
    ab = _scores_iv(ab, "ab")
    ba = _scores_iv(ba, "ba")
    if ab.shape != ba.shape:
        raise ValueError("`ab` and `ba` must have the same shape")
    if rule not in ("tie", "average"):
        raise ValueError('`rule` must be "tie" or "average"')
    return ab, ba, rule


def _length_bias_iv(verdicts, len_a, len_b, items, n_resamples, level):
    verdicts = _outcomes_iv(verdicts, "verdicts")
    if verdicts.size == 0:
        raise ValueError("`verdicts` must not be empty")
    len_a = _vector_iv(len_a, "len_a")
    len_b = _vector_iv(len_b, "len_b")
    for name, x in (("len_a", len_a), ("len_b", len_b)):
        if x.shape != verdicts.shape:
            raise ValueError(f"`{name}` must have shape ({verdicts.size},)")
        if (x < 0).any():
            raise ValueError(f"`{name}` must be non-negative")
    if items is None:
        items = np.arange(verdicts.size)
    items = _items_iv(items, "items", verdicts.size)
    n_resamples, level = _bootstrap_iv(n_resamples, level)
    return verdicts, len_a, len_b, items, n_resamples, level


def _rank_correlation_iv(scores, reference_scores):
    scores = _vector_iv(scores, "scores")
    reference_scores = _vector_iv(reference_scores, "reference_scores")
    if scores.shape != reference_scores.shape:
        raise ValueError("`scores` and `reference_scores` must have the same shape")
    if scores.size < 2:
        raise ValueError("`scores` must describe at least two models")
    return scores, reference_scores


def _intervals_iv(lower, upper, lower_name, upper_name):
    lower = _vector_iv(lower, lower_name)
    upper = _vector_iv(upper, upper_name)
    if lower.shape != upper.shape:
        raise ValueError(f"`{lower_name}` and `{upper_name}` must have the same shape")
    if (lower > upper).any():
        raise ValueError(f"`{lower_name}` must not exceed `{upper_name}`")
    return lower, upper


def _mean_var_iv(mean, var, mean_name, var_name):
    mean = _vector_iv(mean, mean_name)
    var = _vector_iv(var, var_name)
    if mean.shape != var.shape:
        raise ValueError(f"`{mean_name}` and `{var_name}` must have the same shape")
    if (var < 0).any():
        raise ValueError(f"`{var_name}` must be non-negative")
    return mean, var


def _agreement_with_ci_iv(scores, lower, upper, reference_scores, reference_lower, reference_upper):
    scores, reference_scores = _rank_correlation_iv(scores, reference_scores)
    lower, upper = _intervals_iv(lower, upper, "lower", "upper")
    reference_lower, reference_upper = _intervals_iv(
        reference_lower, reference_upper, "reference_lower", "reference_upper"
    )
    if lower.shape != scores.shape:
        raise ValueError("`lower` and `upper` must have the shape of `scores`")
    if reference_lower.shape != scores.shape:
        raise ValueError("`reference_lower` and `reference_upper` must have the shape of `scores`")
    return scores, lower, upper, reference_scores, reference_lower, reference_upper


def _brier_score_iv(mean, var, reference_scores, reference_var):
    mean, var = _mean_var_iv(mean, var, "mean", "var")
    if mean.size < 2:
        raise ValueError("`mean` must describe at least two models")
    reference_scores = _vector_iv(reference_scores, "reference_scores")
    if reference_scores.shape != mean.shape:
        raise ValueError("`reference_scores` must have the shape of `mean`")
    if reference_var is not None:
        reference_scores, reference_var = _mean_var_iv(
            reference_scores, reference_var, "reference_scores", "reference_var"
        )
    return mean, var, reference_scores, reference_var
