"""The bootstrap's solver: many resampled data sets solved at once by a chord method from the
point estimate (see :mod:`ratings._intervals` for the method and its accuracy)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp
from scipy.special import expit

from ._fit import RatingFit, fitted_pairs
from ._linalg import inv_spd, matmul
from ._solver import (
    DEFAULT_PRIOR,
    DegenerateDataError,
    PairData,
    degeneracy_notes,
    information,
    newton_fit,
    newton_fit_bt_batch,
    pair_terms,
    prior_terms,
)
from ._typing import BoolArray, FloatArray, IntArray

__all__: list[str] = []

_MAX_CHORD = 40
_SINGLE_TOL = 1e-6  # single precision finishes the Bradley-Terry chord down to this tol
_STRAGGLE = 12
_GROUPS = 8  # interleaved groups of pairs in the single-precision scatter
_SURE = 60  # battles scored (or conceded) from which a resample surely has some
# Anderson acceleration of the chord only while its steps are above single precision's noise
# (a few 1e-7), with the mixing coefficients bounded (a safeguard; typically |gamma| < 1).
_ACCELERATE_ABOVE = 2e-6
_GAMMA_LIMIT = 4.0
_ANDERSON = 3  # previous iterates mixed


def _round(counts: Sequence[FloatArray], r: int) -> FloatArray:
    """Round ``r``'s counts, (n_pairs, 3), from the three (n_pairs, R) count arrays."""
    return np.column_stack([c[:, r] for c in counts])


@dataclass(frozen=True)
class _Rounds:
    """Single-precision Bradley-Terry terms of a set of rounds: the double-precision
    gradient at the point estimate ``g0`` (n, R), ``a = 2 h0 * battles`` (P, R) and the
    chord's Jacobi scaling (n, R)."""

    g0: FloatArray
    a: npt.NDArray[np.float32]
    scale: npt.NDArray[np.float32]


class _Chord:
    """Solve many resampled data sets at once, warm-started at the point estimate.

    Arrays are laid out (n_pairs, R) / (n_models, R): one column per round. Each iteration
    is a Newton step with the point estimate's Hessian (the chord method). For Bradley-Terry
    the iterations run in single precision down to ``max(tol, 1e-6)`` (all rounds together,
    then the few stragglers on their own), and in double precision below that, so the result
    is accurate to ``tol``. Pairs are best ordered so that each of the ``_GROUPS`` consecutive
    groups of rows holds some of every model's pairs (as :func:`bootstrap` orders them): the
    single-precision sums are taken per group.
    """

    def __init__(self, fit: RatingFit, tol: float, perm: IntArray) -> None:
        self.fit = fit
        self.kind = fit.method
        d, cells = fitted_pairs(fit)
        self.data = PairData(d.n, d.i[perm], d.j[perm], d.w[perm])
        self.prior = fit.prior
        self.tol = tol
        n = fit.n_models
        self.dav = self.kind == "davidson"
        self.theta0 = np.asarray(fit.theta)
        self.eta0 = fit.log_tie if fit.log_tie is not None else 0.0
        # Point fit's information (with the 11'/n shift that pins the mean when unpenalised).
        info = information(self.kind, self.data, self.theta0, self.eta0, self.prior)
        if self.prior <= 0:
            info[:n, :n] += 1.0 / n
        # Single precision: K only scales the steps (the fixed point is g = 0 whatever K).
        self.k32 = inv_spd(info).astype(np.float32)
        inc = self.data.inc
        # Only models that scored or conceded fewer than _SURE battles can, in a resample,
        # score or concede none (else the odds are below e^-_SURE); the chord does not
        # settle a round of any other such model, so its refit still finds it.
        c = cells[perm]
        fwd, bwd = c[:, 0] + c[:, 2], c[:, 1] + c[:, 2]
        pos, neg = (inc > 0).astype(np.float64), (inc < 0).astype(np.float64)
        scored = pos.T @ fwd + neg.T @ bwd
        conceded = pos.T @ bwd + neg.T @ fwd
        few_points = (np.minimum(scored, conceded) < _SURE) & (scored + conceded > 0)
        self.watch = np.flatnonzero(few_points)
        # Single precision (0/1 entries) so that float32 counts are not converted; a positive
        # sum stays positive.
        self.inc_pos_t = pos.T.tocsr()[self.watch].astype(np.float32)
        self.inc_neg_t = neg.T.tocsr()[self.watch].astype(np.float32)
        if self.kind == "bt":
            # Per pair at the point estimate, for gradients taken as changes from it.
            d0 = self.data.diff(self.theta0)
            self.p0 = expit(d0)
            self.h2 = (2.0 * self.p0 * (1.0 - self.p0)).astype(np.float32)[:, None]
            self.tau = np.tanh(0.5 * d0).astype(np.float32)[:, None]
            self.half32 = (0.5 * inc).astype(np.float32)
            # The scatter in groups of pairs (consecutive rows; bootstrap orders the pairs so
            # that each group has some of every model's pairs), summed in double precision:
            # each single-precision sum has fewer, smaller terms (a model's sum over all its
            # pairs at once would carry a rounding error of ~1e-6 into the steps).
            inc_t32 = self.data.inc_t.astype(np.float32).tocsc()
            edges = np.cumsum([0, *(len(range(k, self.data.P, _GROUPS)) for k in range(_GROUPS))])
            self.groups = [slice(a, b) for a, b in zip(edges[:-1], edges[1:], strict=True) if b > a]
            self.scatter32 = [inc_t32[:, grp].tocsr() for grp in self.groups]
            # The gradient at the point estimate per count of each outcome: i wins, j wins, tie.
            coef = np.column_stack([1.0 - self.p0, -self.p0, 0.5 - self.p0])
            self.g_data = self.data.scatter((self.data.w * coef).sum(axis=1))
            self.count_scatter32 = [
                [
                    (inc_t32[:, grp] @ sp.diags(coef[grp, k].astype(np.float32))).tocsr()
                    for grp in self.groups
                ]
                for k in range(3)
            ]
            w = self.data.w
            self.whole = bool(np.all(w == np.round(w)) and (w.size == 0 or w.max() < 2**24))
            self.base32 = w.astype(np.float32)
            self.abs32_t = abs(inc_t32).tocsr()
            degree2 = self.abs32_t @ (w.sum(axis=1) * self.h2[:, 0])
            self.degree2 = np.where(degree2 > 0, degree2, 1.0)[:, None]

    def unscored(self, w0: FloatArray, w1: FloatArray, w2: FloatArray) -> BoolArray:
        """Rounds in which a model that has battles scored nothing or conceded nothing (so
        the round has no finite MLE)."""
        if not self.watch.size:
            return np.zeros(w0.shape[1], dtype=bool)
        fwd, bwd = w0 + w2, w1 + w2
        scored = self.inc_pos_t @ fwd + self.inc_neg_t @ bwd
        conceded = self.inc_pos_t @ bwd + self.inc_neg_t @ fwd
        return ((scored <= 0) | (conceded <= 0)).any(axis=0)

    def _start(self, w0: FloatArray, w1: FloatArray, w2: FloatArray) -> _Rounds:
        """Per-round terms of the single-precision Bradley-Terry gradient."""
        # The gradient at the point estimate is linear in the counts and that of the data is
        # known (double precision), so each round's is that plus the effect of its changes
        # of the counts: small numbers (about the square root of a cell's count), whose sums
        # single precision holds to ~1e-8 of the steps.
        g0 = np.repeat(self.g_data[:, None], w0.shape[1], axis=1)
        for k, w in enumerate((w0, w1, w2)):
            base = self.data.w[:, k, None]
            if w.dtype == np.float32 and self.whole:  # whole counts: exact in single precision
                dev = np.subtract(w, self.base32[:, k, None])
            elif np.issubdtype(w.dtype, np.integer) and self.whole:
                dev = np.subtract(w, base, dtype=np.float32)
            else:
                dev = np.subtract(w, base).astype(np.float32)
            for grp, part in zip(self.groups, self.count_scatter32[k], strict=True):
                g0 += part @ dev[grp]
        a = np.add(w0, w1, dtype=np.float32)  # only scales the changes: ~6e-8 is fine
        a += w2
        a *= self.h2
        # Jacobi scaling of the chord per round: the point estimate's Hessian with its
        # diagonal rescaled to the round's (the fixed point is the same; ~1 pass fewer).
        ratio = (self.abs32_t @ a) / self.degree2
        scale = 1.0 / np.sqrt(np.clip(ratio, 0.1, 10.0))
        return _Rounds(g0, a, scale.astype(np.float32))

    def _single_gradient(self, theta: FloatArray, rounds: _Rounds) -> FloatArray:
        """Bradley-Terry gradient in single precision, for rounds with terms ``rounds``.

        With ``t = tanh(delta / 2)`` for the change ``delta`` of a pair's strength difference
        from the point estimate, ``expit(d0 + delta) - expit(d0) = 2 h0 t / (1 + tanh(d0 / 2)
        t)`` (``h0 = p0 (1 - p0)``): its single-precision error is relative to the change, so
        the gradient, taken as that at the point estimate (double precision) minus the
        changes, stays good to ~1e-8 in log units, not the few 1e-7 of expit in single
        precision, and the chord can finish at ``tol >= 1e-6`` in single precision.
        """
        t = self.half32 @ (theta - self.theta0[:, None]).astype(np.float32)
        np.tanh(t, out=t)
        den = np.multiply(t, self.tau)
        den += 1.0
        t *= rounds.a
        t /= den
        g = rounds.g0.copy()
        for grp, part in zip(self.groups, self.scatter32, strict=True):
            g -= part @ t[grp]
        if self.prior > 0:
            g += prior_terms(theta, self.prior)[1]
        return g

    def _gradient(
        self, theta: FloatArray, eta: FloatArray, w: tuple[FloatArray, ...]
    ) -> FloatArray:
        if self.kind == "bt":
            # In place with numpy's vectorised exp (scipy's expit is several times slower
            # on large arrays); exp(-d) = inf gives p = 0, the right limit.
            s, tot = w
            e = self.data.diff(theta)
            np.negative(e, out=e)
            with np.errstate(over="ignore"):
                np.exp(e, out=e)
            e += 1.0
            p = np.divide(tot, e, out=e)
            g = self.data.scatter(np.subtract(s, p, out=p))
        else:
            d = self.data.diff(theta)
            terms = pair_terms(self.kind, d, eta, w, hessian=False, loglik=False)
            g = np.vstack([self.data.scatter(terms["gd"]), terms["ge"]])
        if self.prior > 0:
            g[: self.fit.n_models] += prior_terms(theta, self.prior)[1]
        return g

    @staticmethod
    def _accelerate(
        x: FloatArray,
        step: FloatArray,
        history: list[tuple[FloatArray, FloatArray]],
        use: BoolArray,
    ) -> FloatArray:
        """The move from ``x``: the chord ``step``, or in columns ``use`` its Anderson
        extrapolation with the previous iterates ``history`` (``(x, step)`` pairs).

        The chord iteration ``x + K g(x)`` is a fixed-point iteration converging linearly
        (each round's error shrinks by about 0.1 to 0.15 per step); Anderson acceleration
        mixes the last few steps per round (a small least-squares problem each) to cancel the
        slowest directions, which saves some of the (P, R)-sized gradient evaluations. It
        changes the path only: rounds still stop when the plain chord step is below ``tol``.
        """
        if not history or not use.any():
            return step
        d_x = np.stack([x - h[0] for h in history], axis=1)  # (n, m, R)
        d_f = np.stack([step - h[1] for h in history], axis=1)
        gram = np.einsum("imr,ikr->rmk", d_f, d_f)
        rhs = np.einsum("imr,ir->rm", d_f, step)
        m = gram.shape[1]
        scale = np.trace(gram, axis1=1, axis2=2)[:, None, None]
        gram += 1e-10 * scale * np.eye(m) + (scale == 0) * np.eye(m)  # ridge: a safeguard
        gamma = np.linalg.solve(gram, rhs[:, :, None])[:, :, 0].T  # (m, R)
        gamma = np.where(use, np.nan_to_num(np.clip(gamma, -_GAMMA_LIMIT, _GAMMA_LIMIT)), 0.0)
        return step - np.einsum("imr,mr->ir", d_x + d_f, gamma)

    def _iterate(
        self,
        theta: FloatArray,
        eta: FloatArray,
        pending: BoolArray,
        tol: float,
        few: int,
        it: int,
        *,
        rounds: _Rounds | None = None,
        w: tuple[FloatArray, ...] | None = None,
    ) -> int:
        """Chord iterations, in place on ``theta`` / ``eta`` / ``pending`` (rounds not
        pending at the start are skipped), until at most ``few`` rounds have a step of
        ``tol`` or more (single precision, with ``rounds``; ``few = 0`` iterates to the
        end) or until done (double precision, with ``w``).
        Returns the iteration count (continued from ``it``)."""
        n = self.fit.n_models
        skip = ~pending
        history: list[tuple[FloatArray, FloatArray]] = []
        while it < _MAX_CHORD:
            it += 1
            if rounds is not None:
                g = self._single_gradient(theta, rounds).astype(np.float32)
                step = (rounds.scale * matmul(self.k32, rounds.scale * g)).astype(np.float64)
            else:
                assert w is not None
                g = self._gradient(theta, eta, w)
                step = matmul(self.k32, g.astype(np.float32)).astype(np.float64)
            step[:, skip] = 0.0
            size = np.nan_to_num(np.max(np.abs(step), axis=0), nan=np.inf)
            x = np.vstack([theta, eta]) if self.dav else theta
            # Converged rounds take the plain step (their answer is not extrapolated).
            use = size >= max(_ACCELERATE_ABOVE, tol)
            move = self._accelerate(x, step, history, use)
            history = [*history[1 - _ANDERSON :], (x.copy(), step)]
            theta += move[:n]
            if self.dav:
                eta += move[n]
            pending[:] = size >= tol
            left = int(pending.sum())
            if not left:
                break
            if rounds is not None:  # single precision: stop for the stragglers
                if left <= few or (few and it >= _STRAGGLE):
                    break
            # Bradley-Terry stragglers are cheap to finish by batched Newton (solve).
            elif it >= _STRAGGLE and (left <= few or self.kind == "bt"):
                break
        return it

    def solve(
        self, w0: FloatArray, w1: FloatArray, w2: FloatArray
    ) -> tuple[FloatArray, FloatArray | None, int]:
        """Return (theta (R, n), eta (R,) or None, n_degenerate) for counts of shape (P, R)."""
        n_rounds = w0.shape[1]
        theta = np.repeat(self.theta0[:, None], n_rounds, axis=1)
        eta = np.full(n_rounds, self.eta0)
        unscored = self.unscored(w0, w1, w2)
        # Rounds without a finite MLE: fitted with the prior, not by the chord (whose fit
        # has no prior). Counted in n_degenerate, as are those the single refit finds.
        bad = unscored if self.prior <= 0 else np.zeros(n_rounds, dtype=bool)
        flagged = unscored.copy()
        if self.prior > 0 and self.kind == "bt" and self.fit.notes:
            flagged[:] = True  # the data has no finite MLE, so no resample of it has one
        pending = ~bad
        few = max(1, n_rounds // 20)  # stragglers iterated on their own, then Newton
        it = 0
        if self.kind == "bt":
            # Single precision first (to tol, or to 1e-6 when tol is below that): all rounds
            # together, then the few stragglers on their own.
            switch = max(self.tol, _SINGLE_TOL)
            rounds = self._start(w0, w1, w2)
            it = self._iterate(theta, eta, pending, switch, few, 0, rounds=rounds)
            if pending.any():
                cols = np.flatnonzero(pending)
                sub, sub_eta, sub_pending = theta[:, cols], eta[cols], pending[cols]
                tail = _Rounds(rounds.g0[:, cols], rounds.a[:, cols], rounds.scale[:, cols])
                it = self._iterate(sub, sub_eta, sub_pending, switch, 0, it, rounds=tail)
                theta[:, cols], pending[cols] = sub, sub_pending
            del rounds
            if self.tol < switch:  # double precision for the rest
                pending = ~bad
                w = (w0 + 0.5 * w2, w0 + w1 + w2)
                self._iterate(theta, eta, pending, self.tol, few, 0, w=w)
        else:
            self._iterate(theta, eta, pending, self.tol, few, 0, w=(w0, w1, w2))
        active = np.flatnonzero(pending)
        redo = np.union1d(np.flatnonzero(bad), active)
        counts = (w0, w1, w2)
        if self.kind == "bt":
            # Bradley-Terry rounds the chord did not settle are fitted all together, as the
            # single refit below would: those without a finite MLE with the prior, from zero;
            # the stragglers from where the chord left them (the optimum is unique, so the
            # start changes nothing but the time). A round the batch cannot settle goes
            # through the single refit. With a prior below the default a straggler's prior
            # depends on its own degeneracy, so those stay single.
            stragglers = np.setdiff1d(active, np.flatnonzero(bad))
            batches = [(np.flatnonzero(bad), max(self.prior, DEFAULT_PRIOR), False)]
            if self.prior <= 0 or self.prior >= DEFAULT_PRIOR:
                batches.append((stragglers, self.prior, True))
            for cols, prior, warm in batches:
                if not cols.size:
                    continue
                start = None
                if warm:
                    start = theta[:, cols].copy()
                    start[:, ~np.isfinite(start).all(axis=0)] = 0.0
                fitted, ok = newton_fit_bt_batch(
                    self.data,
                    (w0[:, cols], w1[:, cols], w2[:, cols]),
                    prior=prior,
                    tol=self.tol,
                    theta0=start,
                )
                theta[:, cols[ok]] = fitted[:, ok]
                redo = np.setdiff1d(redo, cols[ok])
                if prior > 0 and warm:  # converged with a prior: had the round an MLE?
                    for r in cols[ok][~flagged[cols[ok]]]:
                        data = PairData(self.data.n, self.data.i, self.data.j, _round(counts, r))
                        flagged[r] = bool(degeneracy_notes(data))
        for r in redo:
            theta[:, r], eta_r, degenerate = self._refit(_round(counts, r), theta[:, r], eta[r])
            eta[r] = eta_r if eta_r is not None else 0.0
            flagged[r] |= degenerate
        theta -= theta.mean(axis=0)
        return theta.T, (eta if self.dav else None), int(flagged.sum())

    def _refit(
        self, w_round: FloatArray, theta0: FloatArray, eta0: float
    ) -> tuple[FloatArray, float | None, bool]:
        tie_fix = False
        if self.dav and not 0 < w_round[:, 2].sum() < w_round.sum():
            # No ties (or only ties) in this resample: add one virtual tie and one virtual
            # decisive battle, spread over the pairs in proportion to their battles.
            share = w_round.sum(axis=1) / max(w_round.sum(), 1e-300)
            w_round = w_round + np.column_stack([0.5 * share, 0.5 * share, share])
            tie_fix = True
        data = PairData(self.data.n, self.data.i, self.data.j, w_round)
        degenerate = bool(degeneracy_notes(data))
        prior = max(self.prior, DEFAULT_PRIOR) if degenerate else self.prior
        ok = np.all(np.isfinite(theta0)) and np.isfinite(eta0)
        start = theta0 if ok and not degenerate else None
        eta_start = eta0 if ok else self.eta0
        try:
            theta, eta, _, _ = newton_fit(
                self.kind, data, prior=prior, theta0=start, eta0=eta_start, tol=self.tol
            )
        except DegenerateDataError:  # diverging (Davidson): use the prior after all
            if prior > 0:
                raise
            degenerate = True
            theta, eta, _, _ = newton_fit(
                self.kind, data, prior=DEFAULT_PRIOR, eta0=self.eta0, tol=self.tol
            )
        return theta, eta, degenerate or tie_fix
