"""The fitted-ratings result shared by the Bradley-Terry and Davidson fits, and the scale."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from ._aggregate import PairCounts
from ._firth import firth_fit
from ._solver import (
    DEFAULT_PRIOR,
    DegenerateDataError,
    PairData,
    degeneracy_notes,
    newton_fit,
    pair_terms,
)
from ._typing import Anchor, ArrayLike, BoolArray, FloatArray, IntArray, Prior
from ._validation import anchor_iv, choice_iv

__all__ = ["RatingFit", "SCALE", "CENTER"]

#: Elo points per natural-log unit of strength: a 400-point gap means 10:1 odds.
SCALE = 400.0 / math.log(10.0)
#: Mean rating of the fitted models when no anchor is given.
CENTER = 1000.0


@dataclass(frozen=True, eq=False)
class RatingFit:
    """A fitted rating model.

    Attributes
    ----------
    method : {"bt", "davidson"}
    n_models : int
    theta : ndarray of shape (n_models,)
        Log-strengths in natural-log units, mean zero: ``P(i beats j) = expit(theta_i -
        theta_j)`` for Bradley-Terry (ties counted as half a win).
    ratings : ndarray of shape (n_models,)
        Elo-scale ratings: ``CENTER + SCALE * theta`` (mean 1000), or anchored so that the
        anchor model has the given rating.
    tie : float or None
        Davidson's tie parameter ``nu`` (None for Bradley-Terry): between equal models
        ``P(tie) = nu / (2 + nu)``.
    log_tie : float or None
        ``log(nu)`` as fitted (None for Bradley-Terry): the parameter the Davidson fit and its
        intervals work with.
    loglik : float
        Log-likelihood at the estimate (without the prior).
    n_iter : int
        Newton iterations used.
    prior : float
        Virtual ties per model against a reference of strength 0 that were added to keep the
        fit finite; 0.0 means the exact maximum-likelihood estimate.
    notes : tuple of str
        Why a prior was needed (degenerate data), empty otherwise.
    anchor : tuple (model, rating) or None
    both_bad : {"tie", "drop"}
    counts : PairCounts
        The data the fit was computed from (see :func:`fitted_pairs` for the pairs as fitted).
    bias_reduced : bool
        Firth's bias-reduced strengths (Bradley-Terry only) instead of the maximum-likelihood
        ones; ``loglik`` is then the log-likelihood at them.
    """

    method: str
    n_models: int
    theta: FloatArray
    ratings: FloatArray
    tie: float | None
    log_tie: float | None
    loglik: float
    n_iter: int
    prior: float
    notes: tuple[str, ...]
    anchor: tuple[int, float] | None
    both_bad: str
    counts: PairCounts = field(repr=False)
    bias_reduced: bool

    def __post_init__(self) -> None:
        self.theta.flags.writeable = False
        self.ratings.flags.writeable = False

    def to_ratings(self, theta: ArrayLike) -> FloatArray:
        """Map log-strengths of shape (..., n_models) to this fit's Elo scale and origin."""
        return elo_scale(theta, self.anchor)

    def gaps(self, theta: ArrayLike) -> FloatArray:
        """Log-strengths of shape (..., n) relative to this fit's origin: centred, or minus
        the anchor model's (``ratings = origin + SCALE * gaps``)."""
        t = np.asarray(theta, dtype=np.float64)
        if self.anchor is None:
            return t - t.mean(axis=-1, keepdims=True)
        model = self.anchor[0]
        return t - t[..., model : model + 1]

    def transform_cov(self, v: ArrayLike) -> FloatArray:
        """Covariance of :meth:`gaps` given the covariance ``v`` (n, n) of the strengths."""
        c = np.asarray(v, dtype=np.float64)
        if self.anchor is None:
            out = c - c.mean(axis=0)
            return out - out.mean(axis=1, keepdims=True)
        a = self.anchor[0]
        return c - c[:, a : a + 1] - c[a : a + 1, :] + c[a, a]


def elo_scale(theta: ArrayLike, anchor: tuple[int, float] | None) -> FloatArray:
    """Log-strengths of shape (..., n) on the Elo scale: mean 1000, or ``anchor``'s rating."""
    t = np.asarray(theta, dtype=np.float64)
    if anchor is None:
        return CENTER + SCALE * (t - t.mean(axis=-1, keepdims=True))
    model, rating = anchor
    return rating + SCALE * (t - t[..., model : model + 1])


def fitted_pairs(fit: RatingFit) -> tuple[PairData, IntArray]:
    """The pairs as ``fit`` used them (those with battles after ``both_bad``): the fit-ready
    weighted counts, and the raw battle counts of shape (n_pairs, 3): i wins, j wins, ties."""
    return pair_data(fit.counts, fit.both_bad)


def fit_w2(counts: PairCounts, both_bad: str) -> FloatArray:
    """Per-pair sums of squared battle weights as fitted, shape (n_pairs, 3)."""
    keep, _, _ = fit_cells(counts, both_bad)
    w2 = counts.weights_sq
    tie = w2[:, 2] + (w2[:, 3] if both_bad == "tie" else 0.0)
    return np.column_stack([w2[:, 0], w2[:, 1], tie])[keep]


def pair_data(counts: PairCounts, both_bad: str) -> tuple[PairData, IntArray]:
    """:func:`fitted_pairs` of a fit to ``counts`` with ``both_bad``."""
    keep, wf, cf = fit_cells(counts, both_bad)
    data = PairData(counts.n_models, counts.pair_i[keep], counts.pair_j[keep], wf[keep])
    return data, cf[keep].astype(np.int64)


def fit_cells(counts: PairCounts, both_bad: str) -> tuple[BoolArray, FloatArray, IntArray]:
    """Fit-ready weighted counts and raw counts, shape (n_pairs, 3): i wins, j wins, ties."""
    w, c = counts.weights, counts.counts
    if both_bad == "tie":
        wf = np.column_stack([w[:, 0], w[:, 1], w[:, 2] + w[:, 3]])
        cf = np.column_stack([c[:, 0], c[:, 1], c[:, 2] + c[:, 3]])
    else:
        wf, cf = w[:, :3].copy(), c[:, :3].copy()
    keep = cf.sum(axis=1) > 0
    return keep, wf, cf


def fit_pair_model(
    kind: str,
    counts: PairCounts,
    *,
    both_bad: str = "tie",
    prior: Prior = "auto",
    anchor: Anchor = None,
    tol: float = 1e-10,
    max_iter: int = 100,
    bias_reduction: bool = False,
) -> RatingFit:
    """Common implementation of :func:`ratings.fit_bt` and :func:`ratings.fit_davidson`."""
    if not isinstance(counts, PairCounts):
        raise TypeError("`counts` must be a PairCounts (see ratings.aggregate)")
    both_bad = choice_iv(both_bad, "both_bad", ("tie", "drop"))
    anchor = anchor_iv(anchor, counts.n_models)
    data, _ = pair_data(counts, both_bad)
    notes = degeneracy_notes(data)
    value = prior_value(prior, notes)
    eta0 = 0.0
    if kind == "davidson":
        ties = float(data.w[:, 2].sum())
        total = float(data.w.sum())
        if ties <= 0 or ties >= total:
            which = "no ties" if ties <= 0 else "only ties"
            raise DegenerateDataError(
                f"the Davidson tie parameter cannot be estimated from data with {which}"
            )
        # Start at the tie share between equal models: P(tie) = nu / (2 + nu).
        share = ties / total
        eta0 = float(np.log(2.0 * share / (1.0 - share)))
    try:
        theta, eta, loglik, n_iter = newton_fit(
            kind, data, prior=value, eta0=eta0, tol=tol, max_iter=max_iter
        )
    except DegenerateDataError as exc:
        # Davidson's MLE can diverge where the ties-count-half condition holds (the strengths
        # and the tie parameter grow together); "auto" then falls back to the prior.
        if prior != "auto" or value > 0:
            raise
        value = DEFAULT_PRIOR
        notes = [str(exc)]
        theta, eta, loglik, n_iter = newton_fit(
            kind, data, prior=value, eta0=eta0, tol=tol, max_iter=max_iter
        )
    if bias_reduction:
        if kind != "bt":
            raise ValueError("bias_reduction is available for Bradley-Terry only")
        w2 = fit_w2(counts, both_bad).sum(axis=1) if counts.weighted else None
        if prior == "auto" and value > 0:
            # Firth's estimate is finite where the MLE is not (a model that never lost): with
            # a win added to either side of every pair, only unconnected data stay degenerate.
            both = PairData(data.n, data.i, data.j, data.w + np.array([0.5, 0.5, 0.0]))
            if not degeneracy_notes(both):
                value, notes = 0.0, []
        theta, rounds = firth_fit(data, w2, prior=value, theta0=theta, tol=tol, max_iter=max_iter)
        n_iter += rounds
        w = (data.w[:, 0], data.w[:, 1], data.w[:, 2])
        loglik = float(pair_terms(kind, data.diff(theta), None, w)["ll"])
    return RatingFit(
        method=kind,
        n_models=counts.n_models,
        theta=theta,
        ratings=elo_scale(theta, anchor),
        tie=None if eta is None else float(np.exp(eta)),
        log_tie=eta,
        loglik=loglik,
        n_iter=n_iter,
        prior=value,
        notes=tuple(notes) if value > 0 else (),
        anchor=anchor,
        both_bad=both_bad,
        counts=counts,
        bias_reduced=bool(bias_reduction),
    )


def prior_value(prior: Prior, notes: Sequence[str]) -> float:
    """The prior to fit with: ``"auto"`` adds one only when the MLE does not exist (``notes``);
    an explicit 0 on such data raises, naming the models."""
    if isinstance(prior, str):
        choice_iv(prior, "prior", ("auto",))
        return DEFAULT_PRIOR if notes else 0.0
    value = float(prior)
    if not (np.isfinite(value) and value >= 0):
        raise ValueError(f"`prior` must be 'auto' or a non-negative number, got {prior!r}")
    if value == 0 and notes:
        raise DegenerateDataError(
            "the maximum-likelihood ratings do not exist: "
            + "; ".join(notes)
            + ". Pass prior='auto' or a positive prior to regularise."
        )
    return value
