"""The result of :func:`ratings.leaderboard`: one row per model with battles, and the settings.

Built by :mod:`ratings._leaderboard` (and the command line); JSON-ready through
:meth:`Leaderboard.rows` and :meth:`Leaderboard.to_dict`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from ._fit import RatingFit
from ._intervals import Intervals
from ._typing import BoolArray, FloatArray, IntArray

__all__ = ["Leaderboard"]


@dataclass(frozen=True, eq=False)
class Leaderboard:
    """A leaderboard: one row per model with battles, ordered by rating (highest first).

    Attributes
    ----------
    model : ndarray of int, shape (n_rows,)
        Model ids (as passed in; the caller maps them to names).
    rating, lower, upper : ndarray of float, shape (n_rows,)
        Rating and its ``confidence_level`` interval (equal to the rating when ``ci == "none"``).
    rank, rank_lower, rank_upper, rank_ub : ndarray of int, shape (n_rows,)
        0 for models that are not ranked (fewer than ``min_votes`` battles).
    rank_median : ndarray of int, shape (n_rows,)
        Median rank over the bootstrap resamples (or normal draws); 0 if not ranked.
    ranked : ndarray of bool, shape (n_rows,)
    votes, wins, losses, ties : ndarray of int, shape (n_rows,)
        Battles, wins, losses and ties (``both_bad`` counts as a tie unless dropped, then it
        is not counted at all).
    method, ci : str
    n_resamples : int
        Bootstrap resamples (or normal draws for sandwich rank ranges); 0 for ``ci == "none"``.
    confidence_level : float
    min_votes : int
    anchor : tuple (model, rating) or None
    tie, tie_lower, tie_upper : float or None
        Davidson's tie parameter with its interval.
    style_names : tuple of str
    style_coef, style_lower, style_upper : ndarray of shape (n_features,) or None
        Style coefficients in Elo points per standard deviation of the feature.
    notes : tuple of str
        Degenerate-data notes from the fit (model ids as passed in).
    fit : RatingFit or None
        The underlying fit on the models with battles (ids re-indexed ``0 .. n_rows - 1`` in
        the order of ``sorted(model)``); None for Elo.
    intervals : Intervals or None
    estimable : ndarray of bool, shape (n_rows,), or None
        False where the data cannot bound the rating (a zero-width interval: one battle, only
        ties): ``lower``/``upper`` are NaN there (None in :meth:`rows`), the rank range spans
        every rank and ``notes`` says so.
    """

    model: IntArray
    rating: FloatArray
    lower: FloatArray
    upper: FloatArray
    rank: IntArray
    rank_lower: IntArray
    rank_upper: IntArray
    rank_ub: IntArray
    rank_median: IntArray
    ranked: BoolArray
    votes: IntArray
    wins: IntArray
    losses: IntArray
    ties: IntArray
    method: str
    ci: str
    n_resamples: int
    confidence_level: float
    min_votes: int
    anchor: tuple[int, float] | None = None
    tie: float | None = None
    tie_lower: float | None = None
    tie_upper: float | None = None
    style_names: tuple[str, ...] = ()
    style_coef: FloatArray | None = None
    style_lower: FloatArray | None = None
    style_upper: FloatArray | None = None
    notes: tuple[str, ...] = ()
    fit: RatingFit | None = field(default=None, repr=False)
    intervals: Intervals | None = field(default=None, repr=False)
    estimable: BoolArray | None = None

    COLUMNS = (
        "model",
        "rating",
        "lower",
        "upper",
        "rank",
        "rank_lower",
        "rank_upper",
        "rank_ub",
        "votes",
        "wins",
        "losses",
        "ties",
    )

    def __len__(self) -> int:
        return int(self.model.size)

    def rows(self) -> list[dict[str, Any]]:
        """Rows as JSON-ready dicts with the keys :attr:`COLUMNS` (ranks None if unranked)."""
        out = []
        for k in range(self.model.size):
            ranked = bool(self.ranked[k])
            row: dict[str, Any] = {}
            for col in self.COLUMNS:
                v = getattr(self, col)[k]
                if col.startswith("rank"):
                    row[col] = int(v) if ranked else None
                elif col in ("rating", "lower", "upper"):
                    row[col] = None if math.isnan(v) else float(v)
                else:
                    row[col] = int(v)
            out.append(row)
        return out

    def to_dict(self) -> dict[str, Any]:
        """The whole board as a JSON-ready dict (settings, tie/style parameters, rows)."""
        style = None
        if (
            self.style_coef is not None
            and self.style_lower is not None
            and self.style_upper is not None
        ):
            style = [
                {"feature": name, "coef": float(c), "lower": float(lo), "upper": float(hi)}
                for name, c, lo, hi in zip(
                    self.style_names,
                    self.style_coef,
                    self.style_lower,
                    self.style_upper,
                    strict=True,
                )
            ]
        return {
            "method": self.method,
            "ci": self.ci,
            "n_resamples": self.n_resamples,
            "confidence_level": self.confidence_level,
            "min_votes": self.min_votes,
            "anchor": None if self.anchor is None else list(self.anchor),
            "tie": self.tie,
            "tie_lower": self.tie_lower,
            "tie_upper": self.tie_upper,
            "style": style,
            "notes": list(self.notes),
            "rows": self.rows(),
        }
