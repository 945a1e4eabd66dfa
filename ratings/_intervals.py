"""Confidence intervals for fitted ratings: bootstrap and sandwich (robust) estimators.

Both take a :class:`ratings.RatingFit` (Bradley-Terry or Davidson) and return
:class:`Intervals` on the fit's Elo scale (centred at mean 1000, or anchored: then the anchor
model's rating is fixed and the others' intervals are for their gap to it).

**Bootstrap** (:func:`bootstrap`): battles are resampled with replacement, which for aggregated
counts means one exact ``Multinomial(N, cells / N)`` draw of the (pair, outcome) cells per
resample (see :mod:`ratings._resample`). All resamples are solved together: starting from the
point estimate, each resample takes Newton steps with the point estimate's Hessian (a chord
method), which converges linearly at a rate given by the small difference between the
resampled and the original information; while the steps are large, Anderson acceleration
mixes each resample's last few steps, which saves a few iterations. For Bradley-Terry the
steps are Jacobi-scaled per resample (the Hessian's diagonal rescaled to the resample's) and
the gradients are computed in single precision as changes from the point estimate (see
:meth:`_Chord._single_gradient`), accurate to ~1e-7 in log units, so the default
``tol = 1e-6`` needs no double-precision pass. A resample that does not
converge, or that has no finite maximum-likelihood estimate (a model that happens to win or
lose every resampled battle), is refitted on its own by full Newton, with the small prior if
its MLE does not exist; such resamples are counted in ``n_degenerate``. Intervals are
percentile intervals. Resamples are drawn in chunks (of a size set by the data, smaller for
large boards) from generators spawned from ``rng``, so results depend only on ``rng`` and the
data, not on ``workers``.

Weighted battles: the resampled counts are multiplied by each cell's mean weight, which is
exact when the weight is constant within a (pair, outcome) cell, as for inverse pair sampling
probabilities.

**Sandwich** (:func:`ratings.sandwich`, in :mod:`ratings._sandwich`): robust normal intervals.

References
----------
W.-L. Chiang et al., "Chatbot Arena: an open platform for evaluating LLMs by human preference",
ICML 2024 (sandwich and bootstrap intervals). B. Efron and R. Tibshirani, "An introduction to
the bootstrap" (1993).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import TypeVar

import numpy as np

from ._chord import _GROUPS, _MAX_CHORD, _Chord
from ._fit import RatingFit, fitted_pairs
from ._linalg import inv_spd, matmul
from ._resample import MultinomialSampler
from ._solver import (
    DEFAULT_PRIOR,
)
from ._style import StyleFit, StyleProblem
from ._typing import ArrayLike, FloatArray, Seed
from ._validation import alpha_of, confidence_level_iv, positive_int_iv

__all__ = ["Intervals", "bootstrap"]

_T = TypeVar("_T")

_CHUNK = 50  # bootstrap resamples per chunk (one spawned generator each)
# Cells x rounds per chunk at most: a chunk holds a few arrays of this size (int64 draws, their
# float64 copy, the weighted counts), so large boards use smaller chunks (peak memory).
_CHUNK_CELLS = 20_000_000
_STYLE_CHUNK = 10  # style bootstrap resamples per chunk


@dataclass(frozen=True, eq=False)
class Intervals:
    """Confidence intervals for the ratings of a :class:`RatingFit`.

    Attributes
    ----------
    method : {"bootstrap", "sandwich"}
    confidence_level : float
        Intervals have coverage ``confidence_level``.
    lower, upper : ndarray of shape (n_models,)
        Interval bounds on the Elo scale.
    se : ndarray of shape (n_models,)
        Standard errors on the Elo scale (bootstrap standard deviation, or sandwich).
    cov : ndarray of shape (n_models, n_models)
        Covariance of :meth:`RatingFit.gaps` (log-strengths relative to the fit's origin, in
        natural-log units); ``se = SCALE * sqrt(diag(cov))``.
    theta_samples : ndarray of shape (n_resamples, n_models) or None
        Bootstrap log-strengths per resample, mean zero per resample (bootstrap only).
    tie_lower, tie_upper : float or None
        Interval for Davidson's tie parameter ``nu``.
    tie_samples : ndarray of shape (n_resamples,) or None
    n_resamples : int
        Bootstrap resamples (0 for sandwich).
    n_degenerate : int
        Bootstrap resamples that had no finite MLE and were fitted with the prior.
    coef_lower, coef_upper, coef_se : ndarray of shape (n_features,) or None
        Intervals and standard errors of style coefficients (style fits only), in natural-log
        odds per standard deviation of the feature.
    coef_samples : ndarray of shape (n_resamples, n_features) or None
    """

    method: str
    confidence_level: float
    lower: FloatArray
    upper: FloatArray
    se: FloatArray
    cov: FloatArray
    theta_samples: FloatArray | None = None
    tie_lower: float | None = None
    tie_upper: float | None = None
    tie_samples: FloatArray | None = None
    n_resamples: int = 0
    n_degenerate: int = 0
    coef_lower: FloatArray | None = None
    coef_upper: FloatArray | None = None
    coef_se: FloatArray | None = None
    coef_samples: FloatArray | None = None

    def rating_samples(self, fit: RatingFit) -> FloatArray | None:
        """Bootstrap ratings per resample, shape (n_resamples, n_models), on ``fit``'s scale."""
        if self.theta_samples is None:
            return None
        return fit.to_ratings(self.theta_samples)


def fit_iv(fit: object) -> RatingFit:
    if not isinstance(fit, RatingFit):
        raise TypeError("`fit` must be a RatingFit from ratings.fit_bt or ratings.fit_davidson")
    return fit


def _percentile_intervals(
    fit: RatingFit,
    theta_samples: ArrayLike,
    *,
    confidence_level: float,
    eta_samples: ArrayLike | None = None,
    n_degenerate: int = 0,
) -> Intervals:
    """Percentile :class:`Intervals` from log-strength samples of shape (n_resamples, n_models)."""
    alpha = alpha_of(confidence_level)
    theta_samples = np.asarray(theta_samples, dtype=np.float64)
    r = fit.to_ratings(theta_samples)
    lower, upper = np.quantile(r, [alpha / 2, 1 - alpha / 2], axis=0)
    gaps = fit.gaps(theta_samples)
    n = r.shape[1]
    if len(gaps) > 1:
        dev = gaps - gaps.mean(axis=0)
        cov = matmul(dev.T, dev) / (len(gaps) - 1)
    else:
        cov = np.zeros((n, n))
    tie_lo = tie_hi = tie_s = None
    if eta_samples is not None:
        tie_s = np.exp(np.asarray(eta_samples, dtype=np.float64))
        tie_lo, tie_hi = (float(v) for v in np.quantile(tie_s, [alpha / 2, 1 - alpha / 2]))
    return Intervals(
        method="bootstrap",
        confidence_level=confidence_level,
        lower=lower,
        upper=upper,
        se=r.std(axis=0, ddof=1) if len(r) > 1 else np.zeros(r.shape[1]),
        cov=cov,
        theta_samples=theta_samples,
        tie_lower=tie_lo,
        tie_upper=tie_hi,
        tie_samples=tie_s,
        n_resamples=len(r),
        n_degenerate=n_degenerate,
    )


def bootstrap(
    fit: RatingFit,
    *,
    n_resamples: int = 1000,
    rng: Seed = None,
    confidence_level: float = 0.95,
    workers: int | None = None,
    tol: float = 1e-6,
) -> Intervals:
    """Percentile bootstrap intervals by multinomial resampling of the battles.

    Parameters
    ----------
    fit : RatingFit
        A Bradley-Terry or Davidson fit.
    n_resamples : int, default 1000
        Number of bootstrap resamples.
    rng : None, int, numpy.random.Generator
        Seed or generator (``numpy.random.default_rng(rng)``).
    confidence_level : float, default 0.95
        Intervals have coverage ``confidence_level``.
    workers : int, optional
        Threads used to resample and solve chunks of resamples; default: the CPUs available to
        this process (at most 4). Results do not depend on it.
    tol : float, default 1e-6
        Convergence tolerance of each resample's solve, in natural-log units (1e-6 is 0.0002
        Elo points).

    Returns
    -------
    Intervals
        With ``theta_samples`` of shape (n_resamples, n_models).

    Notes
    -----
    A Davidson resample without ties (or with only ties) gets one virtual tie and one virtual
    decisive battle, spread over the pairs; it is counted in ``n_degenerate``.
    """
    fit = fit_iv(fit)
    rounds = positive_int_iv(n_resamples, "n_resamples")
    confidence_level = confidence_level_iv(confidence_level)
    rng = np.random.default_rng(rng)
    workers = _workers_iv(workers)
    if isinstance(fit, StyleFit):
        return _style_bootstrap(fit, rounds, rng, confidence_level, workers, tol)
    n = fit.n_models
    data, cells = fitted_pairs(fit)  # cells: (P, 3) raw counts
    n_pairs = cells.shape[0]
    if n_pairs == 0:
        zeros = np.zeros((rounds, n))
        return _percentile_intervals(fit, zeros, confidence_level=confidence_level)
    # Pairs in _GROUPS interleaved groups, each in the canonical (i, j) order (the solver's
    # sparse products then read the rows of one model together), cells laid out
    # outcome-major: each round's draw reshapes to (3, n_pairs) without copies.
    perm = np.concatenate([np.arange(k, n_pairs, _GROUPS) for k in range(_GROUPS)])
    flat = cells[perm].T.ravel()
    sampler = MultinomialSampler(flat)
    mean_w = None
    if fit.counts.weighted:
        wsum = data.w[perm].T.ravel()
        mean_w = np.divide(wsum, flat, out=np.zeros_like(wsum), where=flat > 0)[:, None]
    chord = _Chord(fit, tol, perm)

    chunk = max(8, min(_CHUNK, _CHUNK_CELLS // flat.size))
    sizes = [min(chunk, rounds - s) for s in range(0, rounds, chunk)]
    child = rng.spawn(len(sizes))

    def work(k: int) -> tuple[FloatArray, FloatArray | None, int]:
        x = sampler.draw(child[k], sizes[k], np.float32 if fit.method == "bt" else None)
        if mean_w is not None:
            x = x * mean_w
        w = x.reshape(3, n_pairs, sizes[k])
        return chord.solve(w[0], w[1], w[2])

    results = _run(work, len(sizes), workers)
    theta = np.concatenate([r[0] for r in results])
    eta = np.concatenate([r[1] for r in results]) if fit.method == "davidson" else None
    return _percentile_intervals(
        fit,
        theta,
        confidence_level=confidence_level,
        eta_samples=eta,
        n_degenerate=sum(r[2] for r in results),
    )


def _workers_iv(workers: int | None) -> int:
    if workers is None:
        try:
            workers = len(os.sched_getaffinity(0))
        except AttributeError:  # pragma: no cover - not Linux
            workers = os.cpu_count() or 1
        workers = min(workers, 4)
    return positive_int_iv(workers, "workers")


def _run(work: Callable[[int], _T], n_jobs: int, workers: int) -> list[_T]:
    if workers > 1 and n_jobs > 1:
        with ThreadPoolExecutor(max_workers=min(workers, n_jobs)) as pool:
            return list(pool.map(work, range(n_jobs)))
    return [work(k) for k in range(n_jobs)]


def _style_bootstrap(
    fit: StyleFit,
    rounds: int,
    rng: np.random.Generator,
    confidence_level: float,
    workers: int,
    tol: float,
) -> Intervals:
    """Bootstrap of a style fit: battles resampled with replacement (exact multinomial)."""
    prob: StyleProblem = fit.problem
    n, k = fit.n_models, prob.k
    n_battles = prob.a.size
    theta0, beta0 = np.asarray(fit.theta), np.asarray(fit.coef)
    k_inv = inv_spd(prob.shifted(prob.information(theta0, beta0)))
    has = np.bincount(prob.a, minlength=n) + np.bincount(prob.b, minlength=n) > 0
    sizes = [min(_STYLE_CHUNK, rounds - s) for s in range(0, rounds, _STYLE_CHUNK)]
    child = rng.spawn(len(sizes))

    def one(g: np.random.Generator) -> tuple[FloatArray, FloatArray, int]:
        mult = np.bincount(g.integers(0, n_battles, n_battles), minlength=n_battles)
        w = prob.w * mult
        if fit.prior <= 0:
            # Per ordered pair (a, b): A's points and B's points in this resample.
            pts_a = np.bincount(prob.key, w * prob.y, n * n).reshape(n, n)
            pts_b = np.bincount(prob.key, w, n * n).reshape(n, n) - pts_a
            scored = pts_a.sum(axis=1) + pts_b.sum(axis=0)
            conceded = pts_b.sum(axis=1) + pts_a.sum(axis=0)
            if np.any(((scored <= 0) | (conceded <= 0)) & has):
                p2 = prob.with_prior(max(fit.prior, DEFAULT_PRIOR))
                th, be, _ = p2.newton(np.zeros(n), np.zeros(k), w=w, tol=tol)
                return th, be, 1
        theta, beta = theta0.copy(), beta0.copy()
        single = True  # single-precision logistic until the steps are below 1e-6
        for _ in range(_MAX_CHORD):
            step = k_inv @ prob.gradient(theta, beta, w, single=single)
            theta += step[:n]
            beta += step[n:]
            size = np.max(np.abs(step))
            if single:
                single = not size < max(tol, 1e-6)
            elif size < tol:
                return theta - theta.mean(), beta, 0
        th, be, _ = prob.newton(theta, beta, w=w, tol=tol)
        return th, be, 0

    def work(c: int) -> tuple[FloatArray, FloatArray, int]:
        out = [one(child[c]) for _ in range(sizes[c])]
        return (
            np.array([o[0] for o in out]),
            np.array([o[1] for o in out]),
            sum(o[2] for o in out),
        )

    results = _run(work, len(sizes), workers)
    theta = np.concatenate([r[0] for r in results])
    beta = np.concatenate([r[1] for r in results])
    out = _percentile_intervals(
        fit, theta, confidence_level=confidence_level, n_degenerate=sum(r[2] for r in results)
    )
    alpha = alpha_of(confidence_level)
    lo, hi = np.quantile(beta, [alpha / 2, 1 - alpha / 2], axis=0)
    return replace(
        out,
        coef_lower=lo,
        coef_upper=hi,
        coef_se=beta.std(axis=0, ddof=1) if rounds > 1 else np.zeros(k),
        coef_samples=beta,
    )
