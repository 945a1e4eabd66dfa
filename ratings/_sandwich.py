"""Sandwich (robust) confidence intervals for fitted ratings.

``V = H^+ M H^+`` with ``H`` the observed information and ``M`` the sum over battles of the outer
products of the per-battle scores (with squared weights), restricted to mean-zero strengths. It
is robust to the model's variance being wrong, which is the case for ties counted as half a win.
Intervals are ``rating +/- z * se`` with ``z = Phi^-1((1 + confidence_level) / 2)``, on the fit's
Elo scale, as :class:`ratings.Intervals` (see :mod:`ratings._intervals` for the bootstrap).

References
----------
H. White, "A heteroskedasticity-consistent covariance matrix estimator", Econometrica 48 (1980).
W.-L. Chiang et al., "Chatbot Arena: an open platform for evaluating LLMs by human preference",
ICML 2024.
"""

from __future__ import annotations

import numpy as np
from scipy.special import expit, ndtri

from ._fit import SCALE, RatingFit, fit_w2, fitted_pairs
from ._intervals import Intervals, fit_iv
from ._linalg import matmul
from ._solver import PairData, constrained_inverse, information
from ._style import StyleFit, StyleProblem
from ._typing import FloatArray
from ._validation import alpha_of, confidence_level_iv

__all__ = ["sandwich"]


def _style_sandwich(fit: StyleFit, confidence_level: float) -> Intervals:
    prob: StyleProblem = fit.problem
    n = fit.n_models
    theta, beta = np.asarray(fit.theta), np.asarray(fit.coef)
    kmat = constrained_inverse(prob.information(theta, beta), n, fit.prior)
    e = prob.eta(theta, beta)
    resid2 = (prob.w * (prob.y - expit(e))) ** 2
    meat = prob.assemble(resid2, with_penalty=False, theta=theta)
    v = matmul(matmul(kmat, meat), kmat)
    cov = fit.transform_cov(v[:n, :n])
    se = SCALE * np.sqrt(np.clip(np.diag(cov), 0, None))
    z = float(ndtri(1 - alpha_of(confidence_level) / 2))
    coef_se = np.sqrt(np.clip(np.diag(v)[n:], 0, None))
    return Intervals(
        method="sandwich",
        confidence_level=confidence_level,
        lower=fit.ratings - z * se,
        upper=fit.ratings + z * se,
        se=se,
        cov=cov,
        coef_lower=beta - z * coef_se,
        coef_upper=beta + z * coef_se,
        coef_se=coef_se,
    )


def _score_outer(
    kind: str, data: PairData, theta: FloatArray, eta: float, w2: FloatArray
) -> FloatArray:
    """Meat ``M = sum_battles w^2 score score'`` on (theta[, eta]) from per-cell squared weights."""
    n = data.n
    d = data.diff(theta)
    if kind == "bt":
        p = expit(d)
        # Per-outcome score w.r.t. d: i wins 1 - p, j wins -p, tie 1/2 - p.
        m = w2[:, 0] * (1 - p) ** 2 + w2[:, 1] * p**2 + w2[:, 2] * (0.5 - p) ** 2
        return data.laplacian(m)
    a = 0.5 * d
    log_z = np.logaddexp(np.logaddexp(a, -a), eta)
    pi, pj, pt = np.exp(a - log_z), np.exp(-a - log_z), np.exp(eta - log_z)
    diff = pi - pj
    sd = np.column_stack([0.5 * (1 - diff), 0.5 * (-1 - diff), -0.5 * diff])
    se = np.column_stack([-pt, -pt, 1 - pt])
    m = np.empty((n + 1, n + 1))
    m[:n, :n] = data.laplacian((w2 * sd * sd).sum(axis=1))
    cross = data.scatter((w2 * sd * se).sum(axis=1))
    m[:n, n] = cross
    m[n, :n] = cross
    m[n, n] = (w2 * se * se).sum()
    return m


def sandwich(fit: RatingFit, *, confidence_level: float = 0.95) -> Intervals:
    """Sandwich (robust) intervals ``rating +/- z * se`` with ``V = H^+ M H^+``.

    Parameters
    ----------
    fit : RatingFit
        A Bradley-Terry or Davidson fit.
    confidence_level : float, default 0.95
        Intervals have coverage ``confidence_level``.

    Returns
    -------
    Intervals

    References
    ----------
    H. White, "A heteroskedasticity-consistent covariance matrix estimator", Econometrica 48
    (1980); W.-L. Chiang et al., "Chatbot Arena", ICML 2024.
    """
    fit = fit_iv(fit)
    confidence_level = confidence_level_iv(confidence_level)
    if isinstance(fit, StyleFit):
        return _style_sandwich(fit, confidence_level)
    n = fit.n_models
    data, _ = fitted_pairs(fit)
    kind = fit.method
    eta = fit.log_tie if fit.log_tie is not None else 0.0
    w2 = fit_w2(fit.counts, fit.both_bad)
    info = information(kind, data, np.asarray(fit.theta), eta, fit.prior)
    k = constrained_inverse(info, n, fit.prior)
    v = matmul(matmul(k, _score_outer(kind, data, np.asarray(fit.theta), eta, w2)), k)
    cov = fit.transform_cov(v[:n, :n])
    se = SCALE * np.sqrt(np.clip(np.diag(cov), 0, None))
    z = float(ndtri(1 - alpha_of(confidence_level) / 2))
    tie_lo = tie_hi = None
    if kind == "davidson":
        se_eta = float(np.sqrt(max(v[n, n], 0.0)))
        tie_lo, tie_hi = float(np.exp(eta - z * se_eta)), float(np.exp(eta + z * se_eta))
    return Intervals(
        method="sandwich",
        confidence_level=confidence_level,
        lower=fit.ratings - z * se,
        upper=fit.ratings + z * se,
        se=se,
        cov=cov,
        tie_lower=tie_lo,
        tie_upper=tie_hi,
    )
