"""Percentile bootstrap over items, shared by the pair-level statistics."""

from __future__ import annotations

from typing import Any

import numpy as np

from .._typing import ArrayLike, FloatArray
from ._results import Estimate


def bootstrap_weights(rng: np.random.Generator, n: int, n_resamples: int) -> FloatArray:
    """How often each of ``n`` units is drawn in each resample, shape (n_resamples, n)."""
    draws = rng.integers(0, n, size=(n_resamples, n))
    offsets = np.arange(n_resamples)[:, None] * n
    return (
        np.bincount((draws + offsets).ravel(), minlength=n_resamples * n)
        .reshape(n_resamples, n)
        .astype(float)
    )


def safe_ratio(num: ArrayLike, den: ArrayLike) -> Any:
    num = np.asarray(num, dtype=float)
    den = np.asarray(den, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.where(den > 0, num / den, np.nan)
    return out if out.ndim else float(out)


def percentile_estimate(value: float, boot: ArrayLike, confidence_level: float) -> Estimate:
    """Point value and percentile interval, ignoring resamples where the statistic is nan."""
    b = np.asarray(boot, dtype=float)
    b = b[np.isfinite(b)]
    if b.size == 0:
        return Estimate(float(value), float("nan"), float("nan"))
    alpha = (1.0 - confidence_level) / 2.0
    lower, upper = np.quantile(b, [alpha, 1.0 - alpha])
    return Estimate(float(value), float(lower), float(upper))


def ratio_estimate(
    sums: FloatArray, n_resamples: int, confidence_level: float, rng: np.random.Generator
) -> Estimate:
    """Ratio of two per-item sums, ``sums`` of shape (n_items, 2), with its interval."""
    weights = bootstrap_weights(rng, sums.shape[0], n_resamples)
    boot = weights @ sums
    return percentile_estimate(
        safe_ratio(sums[:, 0].sum(), sums[:, 1].sum()),
        safe_ratio(boot[:, 0], boot[:, 1]),
        confidence_level,
    )
