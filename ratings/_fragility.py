"""Fragility of a leaderboard's order: the fewest votes whose removal changes it.

Approximation (then checked by refits):

1. Fit Bradley-Terry (ties and both-bad count half a win each) and take the Fisher information
   ``H`` at the estimate. Removing a vote with score ``s`` between ``i`` and ``j`` moves the
   log-strengths by about ``-pinv(H) (s - p_ij) (e_i - e_j)`` (one Newton step, the classic
   influence function), so it moves the gap of two models by a known amount.
2. For each order that could flip (the top model against every other; for the top-k order, each
   of the k adjacent pairs from the top), take votes most-helpful-first until the predicted
   gap change exceeds the gap: the greedy count.
3. Verify the smallest candidates by refitting without those votes, searching from the greedy
   count (galloping, then bisection) for a count that changes the order while one fewer does
   not. The reported count is always one whose removal was seen to change the order in a
   refit (an upper bound on the true minimum; it equals brute force on the small boards in
   the tests).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ._aggregate import aggregate
from ._bradley_terry import fit_bt
from ._outcomes import A_WINS, B_WINS
from ._typing import ArrayLike, IntArray

__all__ = ["Fragility", "fragility"]

_VERIFY = 3  # candidate flips checked by refits


@dataclass(frozen=True)
class Fragility:
    """``votes``: fewest removals seen to change the order (None: none found within reach);
    ``approx``: the greedy first-order count before verification; ``pair``: the two models
    whose order flips; ``removed``: (model_a, model_b, outcome, count) of the removed votes."""

    votes: int | None
    approx: int | None
    pair: tuple[int, int] | None
    removed: tuple[tuple[int, int, int, int], ...]


def _cells(n: int, a: IntArray, b: IntArray, o: IntArray) -> tuple[IntArray, IntArray]:
    """Distinct (a, b, outcome) cells and their counts, as codes ``(a * n + b) * 4 + o``."""
    code = (a.astype(np.int64) * n + b) * 4 + o
    keys, counts = np.unique(code, return_counts=True)
    return keys, counts


def _decode(n: int, keys: IntArray) -> tuple[IntArray, IntArray, IntArray]:
    return (keys // 4) // n, (keys // 4) % n, keys % 4


def _order(n: int, keys: IntArray, counts: IntArray) -> IntArray | None:
    ca, cb, co = _decode(n, keys)
    keep = counts > 0
    if not keep.any():
        return None
    pc = aggregate(n, ca[keep], cb[keep], co[keep], counts=counts[keep])
    fit = fit_bt(pc, prior="auto")
    played = pc.votes() > 0
    r = np.where(played, fit.ratings, -np.inf)
    return np.argsort(-r, kind="stable")


def _changed(before: IntArray, after: IntArray | None, k: int) -> bool:
    return after is None or not np.array_equal(before[:k], after[:k])


def _boundary(flips_at: Callable[[int], bool], guess: int, most: int) -> int | None:
    """A size whose removal flips the order while one vote fewer does not, searched from the
    first-order guess by galloping (1, 2, 4, ... votes away) then bisection: about
    2 log2(distance) refits instead of one per vote. None when even ``most`` does not flip."""
    guess = min(max(guess, 1), most)
    if flips_at(guess):
        hi, step = guess, 1
        while True:  # down until a size that does not flip (0 never does)
            lo = max(hi - step, 0)
            if lo == 0 or not flips_at(lo):
                break
            hi, step = lo, step * 2
    else:
        lo, step = guess, 1
        while True:  # up until a size that flips
            hi = min(lo + step, most)
            if flips_at(hi):
                break
            if hi == most:
                return None
            lo, step = hi, step * 2
    while hi - lo > 1:  # flips_at(hi) and not flips_at(lo)
        mid = (lo + hi) // 2
        if flips_at(mid):
            hi = mid
        else:
            lo = mid
    return hi


def fragility(
    n_models: int, model_a: ArrayLike, model_b: ArrayLike, outcome: ArrayLike, *, k: int = 1
) -> Fragility:
    """Fewest votes whose removal changes the top model (``k=1``) or the top-``k`` order."""
    n = int(n_models)
    a, b, o = (np.asarray(x, dtype=np.int64) for x in (model_a, model_b, outcome))
    if not (a.shape == b.shape == o.shape):
        raise ValueError("`model_a`, `model_b` and `outcome` must have the same length")
    if k < 1:
        raise ValueError("`k` must be at least 1")
    keys, counts = _cells(n, a, b, o)
    base = _order(n, keys, counts)
    if base is None or np.unique(np.concatenate([a, b])).size < k + 1:
        return Fragility(None, None, None, ())
    pc = aggregate(n, a, b, o)
    fit = fit_bt(pc, prior="auto")
    theta = fit.theta
    ca, cb, co = _decode(n, keys)
    score = np.where(co == A_WINS, 1.0, np.where(co == B_WINS, 0.0, 0.5))
    p = 1 / (1 + np.exp(theta[cb] - theta[ca]))
    pair_n = np.zeros((n, n))
    np.add.at(pair_n, (ca, cb), counts)
    pair_n += pair_n.T
    pij = 1 / (1 + np.exp(theta[None, :] - theta[:, None]))
    w = pair_n * pij * (1 - pij)
    h = np.diag(w.sum(axis=1)) - w
    center = np.eye(n) - 1.0 / n
    cov = np.linalg.pinv(
        center @ h @ center + fit.prior * np.eye(n) + 1e-9 * center, hermitian=True
    )
    # Gap-to-flip candidates: (higher, lower) in the current order.
    if k == 1:
        flips = [(int(base[0]), int(s)) for s in base[1:] if pc.votes()[s] > 0]
    else:
        flips = [(int(base[r]), int(base[r + 1])) for r in range(k)]
    candidates = []
    for hi, lo in flips:
        gap = theta[hi] - theta[lo]
        # Predicted change of the gap from removing one vote of each cell.
        cd = (cov[hi, ca] - cov[hi, cb]) - (cov[lo, ca] - cov[lo, cb])
        delta = -(score - p) * cd
        helps = np.flatnonzero(delta < 0)
        sort = helps[np.argsort(delta[helps], kind="stable")]
        # Votes most-helpful-first, a cell's votes alike: the first cell whose votes reach
        # the gap, and how many of its votes are needed.
        cum = np.cumsum(delta[sort] * counts[sort])
        reach = np.flatnonzero(cum <= -gap)
        if reach.size:
            c = reach[0]
            before = cum[c - 1] if c else 0.0
            need = np.ceil((-gap - before) / delta[sort[c]] - 1e-9)
            m = float(counts[sort[:c]].sum() + max(need, 1))
        else:
            m = np.inf
        candidates.append((m, hi, lo, sort))
    candidates.sort(key=lambda c: c[0])
    best: Fragility | None = None
    approx = candidates[0][0] if np.isfinite(candidates[0][0]) else None
    for m_est, hi, lo, sort in candidates[:_VERIFY]:
        if not np.isfinite(m_est):
            continue
        seq = np.repeat(sort, counts[sort])  # cell index of each removed vote, in order

        def flips_at(size: int, seq: IntArray = seq) -> bool:
            left = counts - np.bincount(seq[:size], minlength=counts.size)
            return _changed(base, _order(n, keys, left), k)

        size = _boundary(flips_at, int(m_est), seq.size)
        if size is None:
            continue
        if best is None or best.votes is None or size < best.votes:
            cells, removed = np.unique(seq[:size], return_counts=True)
            rows = tuple(
                (int(ca[c]), int(cb[c]), int(co[c]), int(r))
                for c, r in zip(cells, removed, strict=True)
            )
            best = Fragility(size, int(approx) if approx else None, (hi, lo), rows)
    if best is None:
        return Fragility(None, int(approx) if approx else None, None, ())
    return best
