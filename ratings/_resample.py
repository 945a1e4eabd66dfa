"""Exact multinomial resampling of aggregated counts, many rounds at once.

Resampling ``N`` battles with replacement gives cell counts ``X ~ Multinomial(N, counts / N)``.
``Generator.multinomial`` draws that with one binomial per cell whose parameters change at
every call, which costs about 140 ns per cell and round. Here each round first draws
independent ``Poisson(s * counts)`` cells (the Poisson bootstrap, with ``s = 1 - 3 / sqrt(N)``
for large ``N`` so that ``T < N`` in all but about 0.1% of rounds); given their total ``T``
these are exactly ``Multinomial(T, counts / N)`` whatever ``s``. The total is then corrected
exactly: when ``T > N``, ``T - N`` of the drawn battles are removed uniformly at random
without replacement; when ``T < N``, ``N - T`` battles are added, each drawn from
``counts / N``. Both corrections keep the law multinomial, so every round is an exact
``Multinomial(N, counts / N)`` draw.

The Poisson draws use inversion of the cumulative distribution with a guide table, built once
per distinct count (counts are integers, so cells with equal counts share a table); the tables
cover the support up to a tail mass below 1e-16 and are exact up to floating-point rounding.
Cells with very large counts (or when the tables would be too big) use
``Generator.poisson``; empty cells stay empty. The cells are drawn in increasing order of
count (neighbouring cells share neighbouring tables, which stay in cache) and written to their
own rows, so callers choose the row order.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
from scipy.special import gammaln

from ._typing import ArrayLike, IntArray

__all__: list[str] = []

_EPS = np.finfo(np.float64).eps
_GUIDE = 4  # guide-table buckets per support point (2: 11% slower, 8: no faster)
_TABLE_LIMIT = 4_000_000  # total support points over all tables
_LAMBDA_LIMIT = 200_000  # counts above this use Generator.poisson
_BLOCK = 100_000  # cells x rounds per block when sampling (2048 cells at 50 rounds)
_SHIFT_MIN = 10_000  # totals from which the Poisson means are shifted below the counts


def _support(lam: IntArray, scale: float = 1.0) -> tuple[IntArray, IntArray]:
    """Support ``[lo, lo + size)`` holding all but < 1e-16 of Poisson(scale * lam)'s mass
    (``scale <= 1``)."""
    half = np.ceil(9.3 * np.sqrt(lam) + 12).astype(np.int64)
    lo = np.maximum(0, lam - half - np.ceil((1.0 - scale) * lam).astype(np.int64))
    return lo, lam + half + 10 - lo + 1


class PoissonTables:
    """Inverse-CDF tables for ``Poisson(lam)`` at a set of distinct integer ``lam``."""

    def __init__(self, lam_values: ArrayLike, scale: float = 1.0) -> None:
        lam_values = np.asarray(lam_values, dtype=np.int64)
        lo, size = _support(lam_values, scale)
        n_vals = lam_values.size
        cdf_parts: list[np.ndarray] = [np.zeros(0)] * n_vals
        guide_parts: list[np.ndarray] = [np.zeros(0)] * n_vals
        n_guide = _GUIDE * size
        bucket = np.ceil(np.log2(size)).astype(np.int64)
        for b in np.unique(bucket):
            rows = np.flatnonzero(bucket == b)
            width = 1 << int(b)
            k = lo[rows, None] + np.arange(width)
            lam = scale * lam_values[rows, None].astype(np.float64)
            valid = np.arange(width) < size[rows, None]
            with np.errstate(divide="ignore", invalid="ignore"):
                logpmf = k * np.log(lam) - lam - gammaln(k + 1.0)
            # Poisson(0) is 0 with certainty (cells the data never saw stay empty).
            logpmf = np.where(lam > 0, logpmf, np.where(k == 0, 0.0, -np.inf))
            cdf = np.cumsum(np.where(valid, np.exp(logpmf), 0.0), axis=1)
            np.minimum(cdf, 1.0, out=cdf)
            g = n_guide[rows]
            # guide[q] = index of the first support point with cdf > q / G, or a lower bound
            # of it (the search then walks upwards), so it is safe under rounding.
            first = np.floor(cdf * g[:, None] * (1.0 - 4 * _EPS)).astype(np.int64) + 1
            first = np.where(valid, np.minimum(first, g[:, None]), g[:, None])
            span = int(g.max()) + 1
            key = (np.arange(rows.size)[:, None] * span + first).ravel()
            hist = np.bincount(key, minlength=rows.size * span).reshape(rows.size, span)
            guide = np.cumsum(hist, axis=1)
            for q, r in enumerate(rows):
                c = cdf[q, : size[r]].copy()
                c[-1] = 1.0
                cdf_parts[r] = c
                guide_parts[r] = guide[q, : g[q]]
        self.lo = lo
        self.size = size
        self.cdf_off = np.concatenate([[0], np.cumsum(size)])
        self.guide_off = np.concatenate([[0], np.cumsum(n_guide)])
        self.n_guide = n_guide
        self.cdf = np.concatenate(cdf_parts) if n_vals else np.zeros(0)
        guide = np.concatenate(guide_parts) if n_vals else np.zeros(0, dtype=np.int64)
        # Stored as global indices into ``cdf``.
        self.guide = (guide + np.repeat(self.cdf_off[:-1], n_guide)).astype(np.int32)


def _table_cells(counts: IntArray) -> tuple[IntArray, IntArray, IntArray, IntArray]:
    """Cells that use tables, in increasing order of count (neighbouring cells then share
    neighbouring tables), the distinct counts with each table cell's index into them, and
    the cells left to Generator.poisson. Empty cells are neither: they stay empty."""
    use = (counts > 0) & (counts <= _LAMBDA_LIMIT)
    vals = np.unique(counts[use])
    _, size = _support(vals)
    if size.sum() > _TABLE_LIMIT:
        keep = np.cumsum(size) <= _TABLE_LIMIT  # smallest counts first
        limit = vals[keep][-1] if keep.any() else 0
        use &= counts <= limit
        vals = np.unique(counts[use])
    cells = np.flatnonzero(use)
    cells = cells[np.argsort(counts[cells], kind="stable")]
    return cells, vals, np.searchsorted(vals, counts[cells]), np.flatnonzero(~use & (counts > 0))


class MultinomialSampler:
    """Draw exact ``Multinomial(N, counts / N)`` resamples of integer ``counts``, by rounds.

    Draws have the layout (n_cells, rounds): one column per round, int32 (int64 when the
    total needs it).
    """

    def __init__(self, counts: ArrayLike) -> None:
        counts = np.asarray(counts, dtype=np.int64)
        self.counts = counts
        self.total = int(counts.sum())
        self.cum = np.cumsum(counts)
        self.table_cells, vals, inv, self.other_cells = _table_cells(counts)
        # Draws fit in int32 unless the total does not.
        self.dtype = np.int32 if self.total < 2**31 else np.int64
        # Poisson means a little below the counts (by 3 standard deviations of the total), so
        # that a round's total almost always falls short of N: adding the missing battles
        # from counts / N is cheap, removing surplus ones needs the round's cumulative sums.
        # Given its total every Poisson draw is multinomial whatever the scale, so the
        # corrected draw is exact either way.
        self.scale = 1.0 - 3.0 / np.sqrt(self.total) if self.total >= _SHIFT_MIN else 1.0
        t = PoissonTables(vals, self.scale)
        self.tables = t
        self._lo = (t.lo - t.cdf_off[:-1])[inv][:, None]
        self._g = t.n_guide[inv].astype(np.float64)[:, None]
        self._goff = t.guide_off[:-1][inv][:, None]

    def _poisson(
        self, rng: np.random.Generator, rounds: int, dtype: npt.DTypeLike | None = None
    ) -> npt.NDArray[Any]:
        out = np.zeros((self.counts.size, rounds), dtype=self.dtype if dtype is None else dtype)
        if self.other_cells.size:
            lam = self.scale * self.counts[self.other_cells].astype(np.float64)
            out[self.other_cells] = rng.poisson(lam[:, None], size=(lam.size, rounds))
        cdf, guide = self.tables.cdf, self.tables.guide
        cells = self.table_cells
        # Blocks of cells (in increasing order of count) keep the tables they touch in cache;
        # fewer rounds, more cells per block (a few numpy calls per block).
        block = max(256, _BLOCK // max(1, rounds))
        for c0 in range(0, cells.size, block):
            c1 = min(cells.size, c0 + block)
            u = rng.random((c1 - c0, rounds))
            q = (u * self._g[c0:c1]).astype(np.intp)
            q += self._goff[c0:c1]
            idx = guide[q].ravel()
            flat_u = u.ravel()
            step = cdf[idx] <= flat_u
            idx += step
            pos = np.flatnonzero(step)
            while pos.size:
                pos = pos[cdf[idx[pos]] <= flat_u[pos]]
                idx[pos] += 1
            out[cells[c0:c1]] = idx.reshape(u.shape) + self._lo[c0:c1]
        return out

    def draw(
        self, rng: np.random.Generator, rounds: int, dtype: npt.DTypeLike | None = None
    ) -> npt.NDArray[Any]:
        """Return an array of shape (n_cells, rounds) whose columns sum to N: integers, or
        of ``dtype`` (``float32`` is exact while N < 2**24 and saves the solver a cast)."""
        if dtype is not None and np.dtype(dtype) == np.float32 and self.total >= 2**24:
            dtype = np.float64
        x = self._poisson(rng, rounds, dtype)
        total = self.total
        diff = total - x.sum(axis=0, dtype=np.float64).astype(np.int64)  # whole numbers
        short = np.flatnonzero(diff > 0)
        if short.size:  # too few: add the missing battles, each drawn from counts / N
            k = diff[short]
            balls = rng.integers(0, total, size=int(k.sum()))
            # Sorted within each round: the look-ups then walk the cumulative counts in
            # order, and a cell drawn more than once appears in a run.
            balls += np.repeat(np.arange(short.size, dtype=np.int64) * total, k)
            balls.sort()
            balls -= np.repeat(np.arange(short.size, dtype=np.int64) * total, k)
            at = np.searchsorted(self.cum, balls, "right") * rounds + np.repeat(short, k)
            first = np.flatnonzero(np.diff(at, prepend=-1))
            x.reshape(-1)[at[first]] += np.diff(first, append=at.size).astype(x.dtype)
        # Too many (rare): remove the surplus battles, uniformly without replacement; a
        # round's column in place (a strided view) instead of transposing the whole chunk.
        for r in np.flatnonzero(diff < 0).tolist():
            col = x[:, r]
            pos = rng.choice(total - int(diff[r]), size=-int(diff[r]), replace=False, shuffle=False)
            pos.sort()
            np.subtract.at(col, np.searchsorted(np.cumsum(col), pos, side="right"), 1)
        return x
