"""Davidson's model of ties: an explicit tie parameter instead of "a tie is half a win".

``P(i wins) = pi_i / Z``, ``P(j wins) = pi_j / Z``, ``P(tie) = nu sqrt(pi_i pi_j) / Z`` with
``Z = pi_i + pi_j + nu sqrt(pi_i pi_j)`` and ``pi_i = exp(theta_i)``. Given that the battle was
not a tie, ``P(i beats j) = expit(theta_i - theta_j)`` as in Bradley-Terry, so the Elo scale
(``SCALE = 400 / ln(10)`` per log unit, mean 1000 or anchored) means the same thing. The tie
parameter ``nu`` is estimated jointly (reported as ``RatingFit.tie``); between equal models
``P(tie) = nu / (2 + nu)``. ``both_bad`` votes count as ties by default.

The fit is by Newton's method on ``(theta, log nu)``; the log-likelihood is concave in them.
Degenerate data is handled as in :func:`ratings.fit_bt`; data with no ties (or only
ties) cannot identify ``nu`` and raises :class:`DegenerateDataError`.

References
----------
R. R. Davidson, "On extending the Bradley-Terry model to accommodate ties in paired comparison
experiments", JASA 65 (1970).
"""

from __future__ import annotations

from ._aggregate import PairCounts
from ._fit import RatingFit, fit_pair_model
from ._typing import Anchor, Prior

__all__ = ["fit_davidson"]


def fit_davidson(
    counts: PairCounts,
    *,
    both_bad: str = "tie",
    prior: Prior = "auto",
    anchor: Anchor = None,
    tol: float = 1e-10,
    max_iter: int = 100,
) -> RatingFit:
    """Fit Davidson's tie model to aggregated battle counts.

    Parameters
    ----------
    counts : PairCounts
        Battle counts from :func:`ratings.aggregate`.
    both_bad, prior, anchor, tol, max_iter
        As in :func:`ratings.fit_bt`.

    Returns
    -------
    RatingFit
        With ``method == "davidson"`` and the tie parameter ``tie`` (``nu``).

    Raises
    ------
    DegenerateDataError
        If there are no ties or only ties, or with ``prior=0`` when the MLE does not exist.
    RuntimeError
        If Newton's method does not converge.
    """
    return fit_pair_model(
        "davidson",
        counts,
        both_bad=both_bad,
        prior=prior,
        anchor=anchor,
        tol=tol,
        max_iter=max_iter,
    )
