"""Reduce raw battles to counts per (pair, outcome) in one O(n_battles) pass.

Models are integer ids ``0 .. n_models - 1``. A battle is ``(model_a, model_b, outcome)`` with
the outcome codes :data:`ratings.A_WINS`, :data:`ratings.B_WINS`, :data:`ratings.TIE` and
:data:`ratings.BOTH_BAD`, seen from model A's side. Every fit in this package works on the
aggregated :class:`PairCounts`, so a refit costs O(pairs), not O(battles).

Pairs are canonical: ``pair_i < pair_j``, and the four outcome columns are seen from
``pair_i``'s side: ``[i wins, j wins, tie, both bad]``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._typing import ArrayLike, FloatArray, IntArray
from ._validation import battles_iv, n_models_iv

__all__ = ["PairCounts", "aggregate"]

# A dense bincount over n_models**2 * 4 bins is used when that many bins are cheap.
_DENSE_MAX_BINS = 1 << 22


@dataclass(frozen=True, eq=False)
class PairCounts:
    """Battle counts per canonical pair and outcome.

    Attributes
    ----------
    n_models : int
        Number of models; ids are ``0 .. n_models - 1``.
    pair_i, pair_j : ndarray of shape (n_pairs,)
        The two models of each pair that has at least one battle, ``pair_i < pair_j``.
    counts : ndarray of shape (n_pairs, 4), int64
        Number of battles per outcome, seen from ``pair_i``: i wins, j wins, tie, both bad.
    weights : ndarray of shape (n_pairs, 4), float64
        Sum of the battle weights per cell (equal to ``counts`` when unweighted).
    weights_sq : ndarray of shape (n_pairs, 4), float64
        Sum of the squared battle weights per cell (used by the sandwich estimator).
    """

    n_models: int
    pair_i: IntArray
    pair_j: IntArray
    counts: IntArray
    weights: FloatArray
    weights_sq: FloatArray

    def __post_init__(self) -> None:
        for name in ("pair_i", "pair_j", "counts", "weights", "weights_sq"):
            getattr(self, name).flags.writeable = False

    @property
    def n_pairs(self) -> int:
        return int(self.pair_i.size)

    @property
    def n_battles(self) -> int:
        """Total number of battles (all outcomes)."""
        return int(self.counts.sum())

    @property
    def weighted(self) -> bool:
        """True when some battle weight differs from 1."""
        return not np.array_equal(self.weights, self.counts)

    def _per_model(self, col_i: np.ndarray, col_j: np.ndarray) -> np.ndarray:
        n = self.n_models
        return np.bincount(self.pair_i, col_i, n) + np.bincount(self.pair_j, col_j, n)

    def votes(self) -> IntArray:
        """Battles per model, shape (n_models,), int64."""
        tot = self.counts.sum(axis=1).astype(np.float64)
        return self._per_model(tot, tot).astype(np.int64)

    def wins(self) -> IntArray:
        """Battles won per model, shape (n_models,), int64."""
        c = self.counts.astype(np.float64)
        return self._per_model(c[:, 0], c[:, 1]).astype(np.int64)

    def losses(self) -> IntArray:
        """Battles lost per model, shape (n_models,), int64."""
        c = self.counts.astype(np.float64)
        return self._per_model(c[:, 1], c[:, 0]).astype(np.int64)

    def ties(self, *, both_bad: bool = True) -> IntArray:
        """Tied battles per model (including ``both_bad`` unless told not to), int64."""
        c = (self.counts[:, 2] + (self.counts[:, 3] if both_bad else 0)).astype(np.float64)
        return self._per_model(c, c).astype(np.int64)

    def subset(self, models: ArrayLike) -> PairCounts:
        """Counts restricted to ``models`` (a sequence of ids), re-indexed ``0 .. len - 1``.

        Pairs with a model outside ``models`` are dropped. ``models`` must be increasing so
        that pairs stay canonical.
        """
        ids = np.asarray(models, dtype=np.intp)
        if ids.ndim != 1 or np.any(np.diff(ids) <= 0):
            raise ValueError("`models` must be a strictly increasing sequence of ids")
        new_id = np.full(self.n_models, -1, dtype=np.intp)
        new_id[ids] = np.arange(ids.size)
        i, j = new_id[self.pair_i], new_id[self.pair_j]
        keep = (i >= 0) & (j >= 0)
        return PairCounts(
            int(ids.size),
            i[keep],
            j[keep],
            self.counts[keep],
            self.weights[keep],
            self.weights_sq[keep],
        )

    def __add__(self, other: object) -> PairCounts:
        """Counts of both sets of battles (for incremental aggregation)."""
        if not isinstance(other, PairCounts):
            return NotImplemented
        if other.n_models != self.n_models:
            raise ValueError("cannot add PairCounts with different n_models")
        n = self.n_models
        key = np.concatenate([self.pair_i * n + self.pair_j, other.pair_i * n + other.pair_j])
        uniq, inv = np.unique(key, return_inverse=True)

        def _sum(x: np.ndarray, y: np.ndarray) -> np.ndarray:
            out = np.zeros((uniq.size, 4), dtype=x.dtype)
            np.add.at(out, inv, np.concatenate([x, y]))
            return out

        return PairCounts(
            n,
            (uniq // n).astype(np.intp),
            (uniq % n).astype(np.intp),
            _sum(self.counts, other.counts),
            _sum(self.weights, other.weights),
            _sum(self.weights_sq, other.weights_sq),
        )

    @classmethod
    def empty(cls, n_models: int) -> PairCounts:
        """Counts with no battles."""
        n_models = n_models_iv(n_models)
        z = np.zeros((0, 4))
        e = np.zeros(0, dtype=np.intp)
        return cls(n_models, e, e.copy(), z.astype(np.int64), z, z.copy())


def aggregate(
    n_models: int,
    model_a: ArrayLike,
    model_b: ArrayLike,
    outcome: ArrayLike,
    weights: ArrayLike | None = None,
    *,
    counts: ArrayLike | None = None,
) -> PairCounts:
    """Count battles per canonical pair and outcome.

    Parameters
    ----------
    n_models : int
        Number of models; ids are ``0 .. n_models - 1``.
    model_a, model_b : array-like of int, shape (n_battles,)
        The models shown in position A and B. A model never battles itself.
    outcome : array-like of int, shape (n_battles,)
        ``A_WINS`` (0), ``B_WINS`` (1), ``TIE`` (2) or ``BOTH_BAD`` (3).
    weights : array-like of float, shape (n_battles,), optional
        Weight of each battle (for example the inverse sampling probability of its pair).
    counts : array-like of int, shape (n_battles,), optional
        Number of identical battles each row stands for (pre-aggregated input such as a
        ``GROUP BY model_a, model_b, outcome`` query). Each of them has weight ``weights[k]``.

    Returns
    -------
    PairCounts

    Raises
    ------
    ValueError
        If a model id is out of range, a model battles itself, an outcome code is unknown,
        or weights/counts are negative or not finite.

    Notes
    -----
    One pass over the battles: a ``np.bincount`` on the key ``(a * n + b) * 4 + outcome``
    (dense, when ``4 * n_models**2`` bins are few enough; otherwise ``np.unique`` on the
    canonical key), then the two orientations of each pair are folded together.
    """
    n, a, b, o, w, c = battles_iv(n_models, model_a, model_b, outcome, weights, counts)
    if a.size == 0:
        return PairCounts.empty(n)
    cnt_w = c
    if w is None:
        w1 = cnt_w
        w2 = cnt_w
    else:
        w1 = w if cnt_w is None else w * cnt_w
        w2 = w * w if cnt_w is None else w * w * cnt_w

    if 4 * n * n <= max(_DENSE_MAX_BINS, 8 * a.size):
        key = a * (4 * n)
        key += b * 4
        key += o
        size = 4 * n * n

        def fold(x: np.ndarray) -> np.ndarray:
            m = x.reshape(n, n, 4)
            # (a, b, outcome) from a's side plus (b, a, swapped outcome) of the reverse order.
            return m + m.transpose(1, 0, 2)[:, :, [1, 0, 2, 3]]

        raw = np.bincount(key, cnt_w, minlength=size)
        raw_f = fold(raw)
        iu, ju = np.triu_indices(n, 1)
        cells = raw_f[iu, ju]
        keep = cells.sum(axis=1) > 0
        pi, pj = iu[keep], ju[keep]
        cnt = np.rint(cells[keep]).astype(np.int64)
        if w is None:
            wt = cnt.astype(np.float64)
            wt2 = wt.copy()
        else:
            wt = fold(np.bincount(key, w1, minlength=size))[pi, pj]
            wt2 = fold(np.bincount(key, w2, minlength=size))[pi, pj]
    else:
        swap = a > b
        lo = np.where(swap, b, a)
        hi = np.where(swap, a, b)
        oc = np.where(swap & (o < 2), 1 - o, o)
        key = (lo * n + hi) * 4 + oc
        uniq, inv = np.unique(key, return_inverse=True)
        pair_key, cell = uniq // 4, uniq % 4
        pairs, pinv = np.unique(pair_key, return_inverse=True)
        pi, pj = (pairs // n).astype(np.intp), (pairs % n).astype(np.intp)

        def cells_of(x: FloatArray | None) -> FloatArray:
            out = np.zeros((pairs.size, 4))
            out[pinv, cell] = np.bincount(inv, x, minlength=uniq.size)
            return out

        cnt = np.rint(cells_of(cnt_w)).astype(np.int64)
        if w is None:
            wt = cnt.astype(np.float64)
            wt2 = wt.copy()
        else:
            wt, wt2 = cells_of(w1), cells_of(w2)
        keep = cnt.sum(axis=1) > 0
        pi, pj, cnt, wt, wt2 = pi[keep], pj[keep], cnt[keep], wt[keep], wt2[keep]
    return PairCounts(n, pi.astype(np.intp), pj.astype(np.intp), cnt, wt, wt2)
