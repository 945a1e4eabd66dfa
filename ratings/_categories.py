"""Leaderboards per category and overall, in one call.

A battle may belong to several categories (``membership`` is a boolean matrix) or to one
(an integer category per battle, ``-1`` for none). Every category with at least one battle
gets its own :class:`ratings.Leaderboard`, fitted on that category's battles only, with the
same settings as the overall board; models with fewer than ``min_votes`` battles in a board
are listed there but not ranked. Each board draws its bootstrap from its own generator,
spawned from ``rng``, so adding a category does not change the others' intervals.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from ._board import Leaderboard
from ._leaderboard import leaderboard
from ._style import StyleFeatures
from ._typing import ArrayLike, BoolArray, FloatArray, IntArray, Seed
from ._validation import battles_iv

__all__ = ["CategoryLeaderboards", "leaderboards_by_category"]


@dataclass(frozen=True, eq=False)
class CategoryLeaderboards:
    """The overall leaderboard and one per category.

    Attributes
    ----------
    overall : Leaderboard
    categories : dict of str to Leaderboard
        In the order of ``category_names``; categories without battles are left out.
    """

    overall: Leaderboard
    categories: dict[str, Leaderboard]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready ``{"overall": ..., "categories": {name: ...}}``."""
        return {
            "overall": self.overall.to_dict(),
            "categories": {k: v.to_dict() for k, v in self.categories.items()},
        }


def _membership_iv(
    membership: ArrayLike, n_battles: int, category_names: Sequence[str] | None
) -> tuple[BoolArray, list[str]]:
    m = np.asarray(membership)
    if m.ndim == 1:
        if m.shape[0] != n_battles or m.dtype.kind not in "iu":
            raise ValueError(
                f"`membership` must be ({n_battles},) integer categories or a "
                f"({n_battles}, n_categories) boolean matrix"
            )
        k = int(m.max()) + 1 if m.size else 0
        if category_names is not None:
            k = max(k, len(category_names))
        if m.size and m.min() < -1:
            raise ValueError("`membership` category ids must be >= -1 (-1: no category)")
        onehot = np.zeros((n_battles, k), dtype=bool)
        rows = np.flatnonzero(m >= 0)
        onehot[rows, m[rows]] = True
        m = onehot
    elif m.ndim != 2 or m.shape[0] != n_battles:
        raise ValueError(f"`membership` must have shape ({n_battles}, n_categories), got {m.shape}")
    m = m.astype(bool)
    if category_names is None:
        names = [str(k) for k in range(m.shape[1])]
    else:
        names = [str(c) for c in category_names]
        if len(names) != m.shape[1]:
            raise ValueError(f"`category_names` must have {m.shape[1]} entries")
        if len(set(names)) != len(names):
            raise ValueError("`category_names` must be unique")
    return m, names


def leaderboards_by_category(
    n_models: int,
    model_a: ArrayLike,
    model_b: ArrayLike,
    outcome: ArrayLike,
    membership: ArrayLike,
    weights: ArrayLike | None = None,
    *,
    category_names: Sequence[str] | None = None,
    style: StyleFeatures | ArrayLike | None = None,
    rng: Seed = None,
    **kwargs: Any,
) -> CategoryLeaderboards:
    """Fit the overall leaderboard and one per category.

    Parameters
    ----------
    n_models : int
    model_a, model_b, outcome : array-like of shape (n_battles,)
    membership : array-like of bool, shape (n_battles, n_categories), or of int, (n_battles,)
        Which categories each battle belongs to.
    weights : array-like of shape (n_battles,), optional
    category_names : sequence of str, optional
        Names of the categories (default ``"0"``, ``"1"``, ...).
    style : StyleFeatures or array-like of shape (n_battles, n_features), optional
        Style covariates for style-controlled boards (rows are subset per category).
    rng : None, int or numpy.random.Generator
    **kwargs
        Passed to :func:`ratings.leaderboard` (``method``, ``ci``, ``n_resamples``,
        ``confidence_level``, ``anchor``, ``min_votes``, ``both_bad``, ``prior``, ``l2``,
        ``workers``).

    Returns
    -------
    CategoryLeaderboards
    """
    n, a, b, o, w, _ = battles_iv(n_models, model_a, model_b, outcome, weights)
    m, names = _membership_iv(membership, a.size, category_names)
    x = style.values if isinstance(style, StyleFeatures) else style
    if x is not None:
        x = np.asarray(x, dtype=np.float64)
        x = x[:, None] if x.ndim == 1 else x
    rng = np.random.default_rng(rng)
    child = rng.spawn(1 + len(names))
    anchor = kwargs.pop("anchor", None)
    anchor_model = None if anchor is None else int(next(iter(dict(anchor))))

    def board(rows: IntArray | None, g: np.random.Generator) -> Leaderboard:
        sub_a, sub_b = (a, b) if rows is None else (a[rows], b[rows])
        sub_style: StyleFeatures | FloatArray | None = None
        if x is not None:
            sub_x = x if rows is None else x[rows]
            sub_style = sub_x
            if isinstance(style, StyleFeatures):
                sub_style = StyleFeatures(sub_x, style.names, style.mean, style.std)
        use_anchor = anchor
        if anchor is not None and not np.any((sub_a == anchor_model) | (sub_b == anchor_model)):
            use_anchor = None
        out = leaderboard(
            n,
            sub_a,
            sub_b,
            o if rows is None else o[rows],
            w if rows is None or w is None else w[rows],
            style=sub_style,
            rng=g,
            anchor=use_anchor,
            **kwargs,
        )
        if use_anchor is None and anchor is not None:
            note = f"anchor model {anchor_model} has no battles here; ratings centred at 1000"
            out = replace(out, notes=out.notes + (note,))
        return out

    overall = board(None, child[0])
    boards = {}
    for k, name in enumerate(names):
        rows = np.flatnonzero(m[:, k])
        if rows.size:
            boards[name] = board(rows, child[k + 1])
    return CategoryLeaderboards(overall, boards)
