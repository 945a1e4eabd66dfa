"""Input validation of the agreement statistics (one ``xxx_iv`` helper per input kind)."""

from __future__ import annotations

import numpy as np

from .._outcomes import N_VERDICTS
from .._typing import ArrayLike, FloatArray, IntArray


def outcomes_iv(x: ArrayLike, name: str) -> IntArray:
    x = np.asarray(x)
    if x.ndim != 1:
        raise ValueError(f"`{name}` must be one-dimensional")
    if x.size and not np.issubdtype(x.dtype, np.integer):
        raise ValueError(f"`{name}` must hold integer outcome codes")
    if x.size and (x.min() < 0 or x.max() >= N_VERDICTS):
        raise ValueError(f"`{name}` must hold A_WINS (0), B_WINS (1) or TIE (2)")
    return x.astype(np.intp)


def items_iv(x: ArrayLike, name: str, size: int, n_items: int | None = None) -> IntArray:
    x = np.asarray(x)
    if x.shape != (size,):
        raise ValueError(f"`{name}` must have shape ({size},)")
    if size == 0:
        raise ValueError(f"`{name}` must not be empty")
    if not np.issubdtype(x.dtype, np.integer) or x.min() < 0:
        raise ValueError(f"`{name}` must hold non-negative integer item ids")
    if n_items is not None and x.max() >= n_items:
        raise ValueError(f"`{name}` must be below n_items={n_items}")
    return x.astype(np.intp)


def scores_iv(x: ArrayLike, name: str) -> FloatArray:
    x = np.asarray(x, dtype=float)
    if x.ndim != 1:
        raise ValueError(f"`{name}` must be one-dimensional")
    if not np.all((x >= 0) & (x <= 1)):
        raise ValueError(f"`{name}` must hold scores in [0, 1]")
    return x


def vector_iv(x: ArrayLike, name: str) -> FloatArray:
    x = np.asarray(x, dtype=float)
    if x.ndim != 1:
        raise ValueError(f"`{name}` must be one-dimensional")
    if not np.all(np.isfinite(x)):
        raise ValueError(f"`{name}` must be finite")
    return x


def no_majority_iv(no_majority: str) -> str:
    if no_majority not in ("tie", "exclude"):
        raise ValueError('`no_majority` must be "tie" or "exclude"')
    return no_majority


def bootstrap_iv(n_resamples: object, confidence_level: float) -> tuple[int, float]:
    if isinstance(n_resamples, bool) or not isinstance(n_resamples, int | np.integer):
        raise ValueError("`n_resamples` must be an integer")
    if n_resamples < 1:
        raise ValueError("`n_resamples` must be positive")
    if not 0 < confidence_level < 1:
        raise ValueError("`confidence_level` must be in (0, 1)")
    return int(n_resamples), float(confidence_level)


def majority_vote_iv(
    n_items: object, items: ArrayLike, votes: ArrayLike, no_majority: str
) -> tuple[int, IntArray, IntArray, str]:
    if isinstance(n_items, bool) or not isinstance(n_items, int | np.integer) or n_items < 1:
        raise ValueError("`n_items` must be a positive integer")
    votes = outcomes_iv(votes, "votes")
    items = items_iv(items, "items", votes.size, int(n_items))
    return int(n_items), items, votes, no_majority_iv(no_majority)


def judge_agreement_iv(
    judge: ArrayLike,
    items: ArrayLike,
    votes: ArrayLike,
    min_votes: object,
    no_majority: str,
    n_resamples: object,
    level: float,
) -> tuple[IntArray, IntArray, IntArray, int, str, int, float]:
    judge = outcomes_iv(judge, "judge")
    if judge.size == 0:
        raise ValueError("`judge` must not be empty")
    votes = outcomes_iv(votes, "votes")
    items = items_iv(items, "items", votes.size, judge.size)
    if isinstance(min_votes, bool) or not isinstance(min_votes, int | np.integer):
        raise ValueError("`min_votes` must be an integer")
    if min_votes < 1:
        raise ValueError("`min_votes` must be at least 1")
    n_resamples, level = bootstrap_iv(n_resamples, level)
    return judge, items, votes, int(min_votes), no_majority_iv(no_majority), n_resamples, level


def human_agreement_iv(
    items: ArrayLike, votes: ArrayLike, no_majority: str, n_resamples: object, level: float
) -> tuple[IntArray, IntArray, str, int, float]:
    votes = outcomes_iv(votes, "votes")
    items = items_iv(items, "items", votes.size)
    n_resamples, level = bootstrap_iv(n_resamples, level)
    return items, votes, no_majority_iv(no_majority), n_resamples, level


def first_position_iv(
    verdicts: ArrayLike, items: ArrayLike | None, n_resamples: object, level: float
) -> tuple[IntArray, IntArray, int, float]:
    verdicts = outcomes_iv(verdicts, "verdicts")
    if verdicts.size == 0:
        raise ValueError("`verdicts` must not be empty")
    if items is None:
        items = np.arange(verdicts.size)
    items = items_iv(items, "items", verdicts.size)
    n_resamples, level = bootstrap_iv(n_resamples, level)
    return verdicts, items, n_resamples, level


def position_consistency_iv(
    ab: ArrayLike, ba: ArrayLike, n_resamples: object, level: float
) -> tuple[FloatArray, FloatArray, int, float]:
    ab, ba, _ = combine_orders_iv(ab, ba, "tie")
    if ab.size == 0:
        raise ValueError("`ab` must not be empty")
    n_resamples, level = bootstrap_iv(n_resamples, level)
    return ab, ba, n_resamples, level


def combine_orders_iv(
    ab: ArrayLike, ba: ArrayLike, rule: str
) -> tuple[FloatArray, FloatArray, str]:
    ab = scores_iv(ab, "ab")
    ba = scores_iv(ba, "ba")
    if ab.shape != ba.shape:
        raise ValueError("`ab` and `ba` must have the same shape")
    if rule not in ("tie", "average"):
        raise ValueError('`rule` must be "tie" or "average"')
    return ab, ba, rule


def length_bias_iv(
    verdicts: ArrayLike,
    len_a: ArrayLike,
    len_b: ArrayLike,
    items: ArrayLike | None,
    n_resamples: object,
    level: float,
) -> tuple[IntArray, FloatArray, FloatArray, IntArray, int, float]:
    verdicts = outcomes_iv(verdicts, "verdicts")
    if verdicts.size == 0:
        raise ValueError("`verdicts` must not be empty")
    len_a = vector_iv(len_a, "len_a")
    len_b = vector_iv(len_b, "len_b")
    for name, x in (("len_a", len_a), ("len_b", len_b)):
        if x.shape != verdicts.shape:
            raise ValueError(f"`{name}` must have shape ({verdicts.size},)")
        if (x < 0).any():
            raise ValueError(f"`{name}` must be non-negative")
    if items is None:
        items = np.arange(verdicts.size)
    items = items_iv(items, "items", verdicts.size)
    n_resamples, level = bootstrap_iv(n_resamples, level)
    return verdicts, len_a, len_b, items, n_resamples, level


def rank_correlation_iv(
    scores: ArrayLike, reference_scores: ArrayLike
) -> tuple[FloatArray, FloatArray]:
    scores = vector_iv(scores, "scores")
    reference_scores = vector_iv(reference_scores, "reference_scores")
    if scores.shape != reference_scores.shape:
        raise ValueError("`scores` and `reference_scores` must have the same shape")
    if scores.size < 2:
        raise ValueError("`scores` must describe at least two models")
    return scores, reference_scores


def intervals_iv(
    lower: ArrayLike, upper: ArrayLike, lower_name: str, upper_name: str
) -> tuple[FloatArray, FloatArray]:
    lower = vector_iv(lower, lower_name)
    upper = vector_iv(upper, upper_name)
    if lower.shape != upper.shape:
        raise ValueError(f"`{lower_name}` and `{upper_name}` must have the same shape")
    if (lower > upper).any():
        raise ValueError(f"`{lower_name}` must not exceed `{upper_name}`")
    return lower, upper


def mean_var_iv(
    mean: ArrayLike, var: ArrayLike, mean_name: str, var_name: str
) -> tuple[FloatArray, FloatArray]:
    mean = vector_iv(mean, mean_name)
    var = vector_iv(var, var_name)
    if mean.shape != var.shape:
        raise ValueError(f"`{mean_name}` and `{var_name}` must have the same shape")
    if (var < 0).any():
        raise ValueError(f"`{var_name}` must be non-negative")
    return mean, var


def agreement_with_ci_iv(
    scores: ArrayLike,
    lower: ArrayLike,
    upper: ArrayLike,
    reference_scores: ArrayLike,
    reference_lower: ArrayLike,
    reference_upper: ArrayLike,
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray, FloatArray, FloatArray]:
    scores, reference_scores = rank_correlation_iv(scores, reference_scores)
    lower, upper = intervals_iv(lower, upper, "lower", "upper")
    reference_lower, reference_upper = intervals_iv(
        reference_lower, reference_upper, "reference_lower", "reference_upper"
    )
    if lower.shape != scores.shape:
        raise ValueError("`lower` and `upper` must have the shape of `scores`")
    if reference_lower.shape != scores.shape:
        raise ValueError("`reference_lower` and `reference_upper` must have the shape of `scores`")
    return scores, lower, upper, reference_scores, reference_lower, reference_upper


def brier_score_iv(
    mean: ArrayLike, var: ArrayLike, reference_scores: ArrayLike, reference_var: ArrayLike | None
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray | None]:
    mean, var = mean_var_iv(mean, var, "mean", "var")
    if mean.size < 2:
        raise ValueError("`mean` must describe at least two models")
    reference_scores = vector_iv(reference_scores, "reference_scores")
    if reference_scores.shape != mean.shape:
        raise ValueError("`reference_scores` must have the shape of `mean`")
    if reference_var is not None:
        reference_scores, reference_var = mean_var_iv(
            reference_scores, reference_var, "reference_scores", "reference_var"
        )
    return mean, var, reference_scores, reference_var
