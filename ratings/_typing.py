"""Array type aliases used in the annotations of ratings (numpy.typing)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal, TypeAlias

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = ["Anchor", "ArrayLike", "BoolArray", "FloatArray", "IntArray", "Prior", "Seed"]

#: Float arrays (ratings, log-strengths, weights, covariances).
FloatArray: TypeAlias = NDArray[np.floating[Any]]
#: Integer arrays (model ids, counts, ranks): int64 or intp.
IntArray: TypeAlias = NDArray[np.integer[Any]]
#: Boolean arrays (masks).
BoolArray: TypeAlias = NDArray[np.bool_]
#: What ``numpy.random.default_rng`` accepts: None, a seed or a Generator.
Seed: TypeAlias = "int | np.random.Generator | np.random.SeedSequence | None"
#: An anchor: ``{model_id: rating}`` (one entry) or ``(model_id, rating)``; None for no anchor.
Anchor: TypeAlias = "Mapping[int, float] | tuple[int, float] | None"
#: A prior: ``"auto"`` or a number of virtual ties per model.
Prior: TypeAlias = "Literal['auto'] | float"
