"""Input validation shared by the public functions (one ``_xxx_iv`` helper per input kind)."""

from __future__ import annotations

import numbers
from collections.abc import Mapping
from typing import Any, cast

import numpy as np

from ._outcomes import N_OUTCOMES
from ._typing import Anchor, ArrayLike, FloatArray, IntArray

__all__: list[str] = []


def n_models_iv(n_models: object) -> int:
    if isinstance(n_models, bool) or not isinstance(n_models, numbers.Integral):
        raise TypeError(f"`n_models` must be an integer, got {type(n_models).__name__}")
    n_models = int(n_models)
    if n_models < 1:
        raise ValueError(f"`n_models` must be at least 1, got {n_models}")
    return n_models


def int_array_iv(values: ArrayLike, name: str) -> IntArray:
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise ValueError(f"`{name}` must be one-dimensional, got shape {arr.shape}")
    if arr.dtype.kind == "b" or (arr.dtype.kind not in "iu" and arr.size):
        if arr.dtype.kind == "f" and np.all(np.isfinite(arr)) and np.all(arr == np.round(arr)):
            return arr.astype(np.intp)
        raise TypeError(f"`{name}` must hold integers, got dtype {arr.dtype}")
    return arr.astype(np.intp, copy=False)


def float_array_iv(values: ArrayLike, name: str, n: int, *, allow_zero: bool = True) -> FloatArray:
    arr = np.asarray(values, dtype=np.float64)
    if arr.shape != (n,):
        raise ValueError(f"`{name}` must have shape ({n},), got {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"`{name}` must be finite")
    bad = arr < 0 if allow_zero else arr <= 0
    if np.any(bad):
        k = int(np.flatnonzero(bad)[0])
        sign = "non-negative" if allow_zero else "positive"
        raise ValueError(f"`{name}` must be {sign}; element {k} is {arr[k]!r}")
    return arr


def battles_iv(
    n_models: object,
    model_a: ArrayLike,
    model_b: ArrayLike,
    outcome: ArrayLike,
    weights: ArrayLike | None = None,
    counts: ArrayLike | None = None,
) -> tuple[int, IntArray, IntArray, IntArray, FloatArray | None, FloatArray | None]:
    """Validate raw battle arrays; return ``(n_models, a, b, outcome, weights, counts)``."""
    n_models = n_models_iv(n_models)
    a = int_array_iv(model_a, "model_a")
    b = int_array_iv(model_b, "model_b")
    o = int_array_iv(outcome, "outcome")
    n = a.size
    if b.size != n or o.size != n:
        raise ValueError(
            "`model_a`, `model_b` and `outcome` must have the same length, got "
            f"{a.size}, {b.size} and {o.size}"
        )
    if n:
        for name, arr in (("model_a", a), ("model_b", b)):
            lo, hi = int(arr.min()), int(arr.max())
            if lo < 0 or hi >= n_models:
                k = int(np.flatnonzero((arr < 0) | (arr >= n_models))[0])
                raise ValueError(
                    f"`{name}` must hold model ids in [0, {n_models}); element {k} is {int(arr[k])}"
                )
        same = a == b
        if same.any():
            k = int(np.flatnonzero(same)[0])
            raise ValueError(
                f"`model_a` and `model_b` must differ; battle {k} pits model {int(a[k])} "
                "against itself"
            )
        if int(o.min()) < 0 or int(o.max()) >= N_OUTCOMES:
            k = int(np.flatnonzero((o < 0) | (o >= N_OUTCOMES))[0])
            raise ValueError(
                "`outcome` must hold codes A_WINS=0, B_WINS=1, TIE=2 or BOTH_BAD=3; "
                f"element {k} is {int(o[k])}"
            )
    if weights is not None:
        weights = float_array_iv(weights, "weights", n)
    if counts is not None:
        counts = float_array_iv(counts, "counts", n)
        if np.any(counts != np.round(counts)):
            raise ValueError("`counts` must hold whole numbers of battles")
    return n_models, a, b, o, weights, counts


def choice_iv(value: object, name: str, choices: tuple[str, ...]) -> str:
    if value not in choices:
        allowed = ", ".join(repr(c) for c in choices)
        raise ValueError(f"`{name}` must be one of {allowed}; got {value!r}")
    return value


def confidence_level_iv(confidence_level: float) -> float:
    confidence_level = float(confidence_level)
    if not 0.0 < confidence_level < 1.0:
        raise ValueError(
            f"`confidence_level` must lie strictly between 0 and 1, got {confidence_level}"
        )
    return confidence_level


def alpha_of(confidence_level: float) -> float:
    """``alpha = 1 - confidence_level``: intervals run from the ``alpha / 2`` to the
    ``1 - alpha / 2`` quantile. Rounded to 12 decimals so that a level such as 0.95 gives
    exactly ``alpha = 0.05`` (``1 - 0.95`` is 0.050000000000000044 in binary floating point,
    which would move the discontinuous rank quantiles off their exact order statistics)."""
    return round(1.0 - confidence_level, 12)


def anchor_iv(anchor: Anchor, n_models: int) -> tuple[int, float] | None:
    """``anchor`` is ``None`` or a one-entry mapping ``{model_id: rating}``."""
    if anchor is None:
        return None
    items: list[tuple[Any, Any]]
    if isinstance(anchor, tuple) and len(anchor) == 2:
        items = [anchor]
    else:
        try:
            items = list(dict(cast("Mapping[Any, Any]", anchor)).items())
        except (TypeError, ValueError):
            raise TypeError("`anchor` must be a mapping {model_id: rating}") from None
    if len(items) != 1:
        raise ValueError(f"`anchor` must name exactly one model, got {len(items)}")
    model, rating = items[0]
    if isinstance(model, bool) or not isinstance(model, numbers.Integral):
        raise TypeError(f"`anchor` model must be an integer id, got {model!r}")
    if not 0 <= int(model) < n_models:
        raise ValueError(f"`anchor` model must be in [0, {n_models}), got {model}")
    rating = float(rating)
    if not np.isfinite(rating):
        raise ValueError("`anchor` rating must be finite")
    return int(model), rating


def positive_int_iv(value: object, name: str, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"`{name}` must be an integer, got {value!r}")
    if value < minimum:
        raise ValueError(f"`{name}` must be at least {minimum}, got {value}")
    return int(value)
