"""Bradley-Terry maximum-likelihood ratings with ties counted as half a win.

Model: ``P(i beats j) = expit(theta_i - theta_j)``. A tie counts as half a win for each side
(the Chatbot Arena convention), so a pair's log-likelihood is
``s_ij log expit(d) + (n_ij - s_ij) log expit(-d)`` with ``s_ij = wins_i + ties / 2``.
``both_bad`` votes count as ties by default (``both_bad="drop"`` leaves them out).

Scale: ``SCALE = 400 / ln(10)`` Elo points per natural-log unit, centred so the mean rating is
1000, or anchored (``anchor={model: rating}``).

Degenerate data (a model that only won or only lost, a comparison graph in disconnected pieces,
a model with no battles) has no finite maximum-likelihood estimate. With ``prior="auto"`` (the
default) such data gets a small prior, one virtual tie per model against a reference of
strength 0, and the fit's ``notes`` name the models concerned; with ``prior=0`` a
:class:`DegenerateDataError` names them instead. Data whose MLE exists is fitted exactly.

Typical use::

    counts = ratings.aggregate(n_models, model_a, model_b, outcome)
    fit = ratings.fit_bt(counts)
    fit.ratings            # (n_models,) Elo-scale ratings
"""

from __future__ import annotations

from ._aggregate import PairCounts, aggregate
from ._fit import RatingFit, fit_pair_model
from ._typing import Anchor, ArrayLike, Prior

__all__ = ["fit_bt", "bradley_terry"]


def fit_bt(
    counts: PairCounts,
    *,
    both_bad: str = "tie",
    prior: Prior = "auto",
    anchor: Anchor = None,
    tol: float = 1e-10,
    max_iter: int = 100,
    bias_reduction: bool = False,
) -> RatingFit:
    """Fit Bradley-Terry ratings to aggregated battle counts.

    Parameters
    ----------
    counts : PairCounts
        Battle counts from :func:`ratings.aggregate`.
    both_bad : {"tie", "drop"}, default "tie"
        Count ``both_bad`` votes as ties, or leave them out.
    prior : "auto" or float >= 0, default "auto"
        Virtual ties per model against a reference of strength 0. ``"auto"`` uses 0 (the exact
        MLE) when the MLE exists and :data:`ratings.DEFAULT_PRIOR` otherwise; ``0`` raises
        on degenerate data.
    anchor : mapping {model: rating}, optional
        Pin one model's rating instead of centring the mean at 1000.
    tol : float, default 1e-10
        Convergence tolerance on the Newton step, in natural-log units.
    max_iter : int, default 100
    bias_reduction : bool, default False
        Firth's bias-reduced strengths instead of the maximum-likelihood ones: the MLE puts
        models with few votes too far from the centre by O(1 / votes); this removes that term
        (with battle weights, under the sandwich covariance; see ``ratings._firth``).

    Returns
    -------
    RatingFit
        ``theta`` (n_models,) log-strengths with mean zero, ``ratings`` (n_models,) Elo scale.

    Raises
    ------
    DegenerateDataError
        With ``prior=0`` when the MLE does not exist; the message names the models.
    RuntimeError
        If Newton's method does not converge.

    References
    ----------
    R. A. Bradley and M. E. Terry, "Rank analysis of incomplete block designs", Biometrika
    39 (1952). W.-L. Chiang et al., "Chatbot Arena", ICML 2024.
    """
    return fit_pair_model(
        "bt",
        counts,
        both_bad=both_bad,
        prior=prior,
        anchor=anchor,
        tol=tol,
        max_iter=max_iter,
        bias_reduction=bias_reduction,
    )


def bradley_terry(
    n_models: int,
    model_a: ArrayLike,
    model_b: ArrayLike,
    outcome: ArrayLike,
    weights: ArrayLike | None = None,
    *,
    both_bad: str = "tie",
    prior: Prior = "auto",
    anchor: Anchor = None,
    tol: float = 1e-10,
    max_iter: int = 100,
    bias_reduction: bool = False,
) -> RatingFit:
    """Aggregate raw battles and fit Bradley-Terry ratings (see :func:`fit_bt`).

    Parameters
    ----------
    n_models : int
    model_a, model_b : array-like of int, shape (n_battles,)
    outcome : array-like of int, shape (n_battles,)
        ``A_WINS``, ``B_WINS``, ``TIE`` or ``BOTH_BAD``.
    weights : array-like of float, shape (n_battles,), optional
    both_bad, prior, anchor, tol, max_iter, bias_reduction
        As in :func:`fit_bt`.
    """
    return fit_bt(
        aggregate(n_models, model_a, model_b, outcome, weights),
        both_bad=both_bad,
        prior=prior,
        anchor=anchor,
        tol=tol,
        max_iter=max_iter,
        bias_reduction=bias_reduction,
    )
