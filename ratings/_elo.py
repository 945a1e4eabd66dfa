"""Online Elo ratings, for comparison with the maximum-likelihood fits.

Each battle updates both ratings in the order given:
``r_a += k * w * (s - e)``, ``r_b -= k * w * (s - e)`` with the expected score
``e = 1 / (1 + base ** ((r_b - r_a) / scale))`` and ``s`` = 1 (A wins), 0 (B wins) or 1/2
(tie; ``both_bad`` too unless dropped). The result depends on the order of the battles and on
``k``; it is not an estimate of anything stable, which is why the leaderboard uses
Bradley-Terry. Defaults (k=4, initial 1000, base 10, scale 400) follow FastChat and Evalica.
"""

from __future__ import annotations

import numpy as np

from ._outcomes import BOTH_BAD, SCORE_OF_A
from ._typing import ArrayLike, FloatArray
from ._validation import battles_iv, choice_iv

__all__ = ["online_elo"]


def online_elo(
    n_models: int,
    model_a: ArrayLike,
    model_b: ArrayLike,
    outcome: ArrayLike,
    weights: ArrayLike | None = None,
    *,
    k: float = 4.0,
    initial: float = 1000.0,
    scale: float = 400.0,
    base: float = 10.0,
    both_bad: str = "tie",
) -> FloatArray:
    """Online (sequential) Elo ratings.

    Parameters
    ----------
    n_models : int
    model_a, model_b : array-like of int, shape (n_battles,)
    outcome : array-like of int, shape (n_battles,)
        ``A_WINS``, ``B_WINS``, ``TIE`` or ``BOTH_BAD``, in the order the battles happened.
    weights : array-like of float, shape (n_battles,), optional
        Multiplies ``k`` per battle.
    k, initial, scale, base : float
    both_bad : {"tie", "drop"}

    Returns
    -------
    ndarray of shape (n_models,)
        Final ratings; models without battles keep ``initial``.
    """
    n, a, b, o, w, _ = battles_iv(n_models, model_a, model_b, outcome, weights)
    both_bad = choice_iv(both_bad, "both_bad", ("tie", "drop"))
    for name, value in (("k", k), ("scale", scale), ("base", base), ("initial", initial)):
        if not np.isfinite(value):
            raise ValueError(f"`{name}` must be finite")
    if scale <= 0 or base <= 1:
        raise ValueError("`scale` must be positive and `base` greater than 1")
    score = np.array(SCORE_OF_A)[o]
    keep = np.ones(a.size, dtype=bool) if both_bad == "tie" else o != BOTH_BAD
    step = np.full(a.size, float(k)) if w is None else float(k) * w
    ratings = [float(initial)] * n
    log_base = float(np.log(base)) / float(scale)
    exp = np.exp
    for ai, bi, s, kk, use in zip(
        a.tolist(), b.tolist(), score.tolist(), step.tolist(), keep.tolist(), strict=True
    ):
        if not use:
            continue
        ra, rb = ratings[ai], ratings[bi]
        e = 1.0 / (1.0 + exp(log_base * (rb - ra)))
        delta = kk * (s - e)
        ratings[ai] = ra + delta
        ratings[bi] = rb - delta
    return np.array(ratings)
