"""Agreement with humans: majority votes, judge-human and human-human agreement."""

from __future__ import annotations

from typing import Any

import numpy as np

from .._outcomes import N_VERDICTS, TIE
from .._typing import ArrayLike, FloatArray, IntArray, Seed
from ._bootstrap import bootstrap_weights, percentile_estimate, safe_ratio
from ._results import Agreement
from ._validation import human_agreement_iv, judge_agreement_iv, majority_vote_iv

NO_MAJORITY = -1
"""Marks an item without a usable majority (no votes, or excluded by ``no_majority="exclude"``)."""


def majority_vote(
    n_items: int, items: ArrayLike, votes: ArrayLike, *, no_majority: str = "tie"
) -> IntArray:
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
    n_items, items, votes, no_majority = majority_vote_iv(n_items, items, votes, no_majority)
    return _plurality(vote_counts(n_items, items, votes), no_majority)


def judge_agreement(
    judge: ArrayLike,
    items: ArrayLike,
    votes: ArrayLike,
    *,
    min_votes: int = 1,
    no_majority: str = "tie",
    n_resamples: int = 1000,
    confidence_level: float = 0.95,
    rng: Seed = None,
) -> Agreement:
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
    judge, items, votes, min_votes, no_majority, n_resamples, confidence_level = judge_agreement_iv(
        judge, items, votes, min_votes, no_majority, n_resamples, confidence_level
    )
    rng = np.random.default_rng(rng)
    counts = vote_counts(judge.size, items, votes)
    majority = _plurality(counts, no_majority)
    used = (counts.sum(axis=1) >= min_votes) & (majority != NO_MAJORITY)
    if not used.any():
        raise ValueError("no item has enough human votes and a majority; check `min_votes`")
    cells = majority[used] * N_VERDICTS + judge[used]
    tables = np.zeros((cells.size, N_VERDICTS**2))
    tables[np.arange(cells.size), cells] = 1.0
    return _agreement_from_tables(tables, n_resamples, confidence_level, rng)


def human_agreement(
    items: ArrayLike,
    votes: ArrayLike,
    *,
    no_majority: str = "tie",
    n_resamples: int = 1000,
    confidence_level: float = 0.95,
    rng: Seed = None,
) -> Agreement:
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
    items, votes, no_majority, n_resamples, confidence_level = human_agreement_iv(
        items, votes, no_majority, n_resamples, confidence_level
    )
    rng = np.random.default_rng(rng)
    _, items = np.unique(items, return_inverse=True)
    counts = vote_counts(int(items.max()) + 1, items, votes)
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


def vote_counts(n_items: int, items: IntArray, votes: IntArray) -> IntArray:
    """Votes per item and outcome, shape (n_items, 3)."""
    flat = np.bincount(items * N_VERDICTS + votes, minlength=n_items * N_VERDICTS)
    return flat.reshape(n_items, N_VERDICTS)


def _plurality(counts: IntArray, no_majority: str) -> IntArray:
    """Plurality outcome along the last axis, ``NO_MAJORITY`` or ``TIE`` when not unique."""
    top = counts.max(axis=-1, keepdims=True)
    unique = (counts == top).sum(axis=-1) == 1
    fallback = TIE if no_majority == "tie" else NO_MAJORITY
    majority = np.where(unique, counts.argmax(axis=-1), fallback)
    return np.where(top[..., 0] > 0, majority, NO_MAJORITY)


def _table_statistics(tables: FloatArray) -> tuple[Any, Any, Any]:
    """Agreement, no-tie agreement and kappa of confusion tables, shape (..., 9)."""
    t = tables.reshape(*tables.shape[:-1], N_VERDICTS, N_VERDICTS)
    total = t.sum(axis=(-2, -1))
    diagonal = np.trace(t, axis1=-2, axis2=-1)
    decided = t[..., :2, :2]
    observed = safe_ratio(diagonal, total)
    no_ties = safe_ratio(np.trace(decided, axis1=-2, axis2=-1), decided.sum(axis=(-2, -1)))
    with np.errstate(divide="ignore", invalid="ignore"):
        expected = (t.sum(axis=-1) * t.sum(axis=-2)).sum(axis=-1) / total**2
        kappa = np.where(expected < 1, (observed - expected) / (1 - expected), np.nan)
    return observed, no_ties, kappa


def _agreement_from_tables(
    tables: FloatArray, n_resamples: int, confidence_level: float, rng: np.random.Generator
) -> Agreement:
    """`Agreement` from per-item confusion tables, shape (n_items, 9)."""
    total = tables.sum(axis=0)
    point = _table_statistics(total)
    boot = _table_statistics(bootstrap_weights(rng, tables.shape[0], n_resamples) @ tables)
    agreement, no_ties, kappa = (
        percentile_estimate(p, b, confidence_level) for p, b in zip(point, boot, strict=True)
    )
    confusion = total.reshape(N_VERDICTS, N_VERDICTS).round().astype(int)
    return Agreement(agreement, no_ties, kappa, confusion, tables.shape[0], int(confusion.sum()))
