"""Verdict scales: five-level judge labels, outcome codes and scores of answer A in [0, 1]."""

from __future__ import annotations

import numpy as np

from .._outcomes import A_WINS, B_WINS, SCORE_OF_A, TIE
from .._typing import ArrayLike, FloatArray, IntArray
from ._validation import outcomes_iv, scores_iv

VERDICT_LABELS = ("A>>B", "A>B", "A=B", "B>A", "B>>A")
"""The five-level judge scale (as in arena-hard-auto), from "A much better" to "B much better"."""


# The one place where the five-level scale becomes numbers: the score of answer A, in [0, 1],
# evenly spaced. arena-hard-auto instead counts a strong verdict as three battles of weight one
# (A>>B = three wins of A); that is a weighting of battles, not a score, and is not used here.
_LABEL_SCORES = {"A>>B": 1.0, "A>B": 0.75, "A=B": 0.5, "B>A": 0.25, "B>>A": 0.0}


def verdict_scores(labels: ArrayLike) -> FloatArray:
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


def outcome_scores(outcomes: ArrayLike) -> FloatArray:
    """Map outcome codes to the score of answer A: ``A_WINS`` 1, ``B_WINS`` 0, ``TIE`` 0.5.

    Parameters
    ----------
    outcomes : array-like of int, shape (n_verdicts,)

    Returns
    -------
    scores : ndarray of shape (n_verdicts,)
    """
    outcomes = outcomes_iv(outcomes, "outcomes")
    return np.asarray(SCORE_OF_A)[outcomes]


def score_outcomes(scores: ArrayLike) -> IntArray:
    """Map scores of answer A in [0, 1] to outcome codes (above 0.5: ``A_WINS``, ...).

    Parameters
    ----------
    scores : array-like of float, shape (n_verdicts,)

    Returns
    -------
    outcomes : ndarray of int, shape (n_verdicts,)
    """
    scores = scores_iv(scores, "scores")
    return np.select([scores > 0.5, scores < 0.5], [A_WINS, B_WINS], TIE)
