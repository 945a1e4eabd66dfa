"""Result types of the agreement statistics."""

from __future__ import annotations

from dataclasses import dataclass

from .._typing import IntArray


@dataclass(frozen=True)
class Estimate:
    """A point estimate with a percentile bootstrap interval.

    Attributes
    ----------
    value : float
        The statistic on the full data (``nan`` if undefined, e.g. no non-tie verdicts).
    lower, upper : float
        Percentile bootstrap interval at the requested ``confidence_level``.
    """

    value: float
    lower: float
    upper: float


@dataclass(frozen=True, eq=False)
class Agreement:
    """Agreement of one rater with a reference over 3-way verdicts.

    Attributes
    ----------
    agreement : Estimate
        Share of comparisons where the rater's verdict equals the reference (ties included).
    agreement_no_ties : Estimate
        The same over comparisons where neither side is ``TIE``.
    kappa : Estimate
        Cohen's kappa over the three outcomes.
    confusion : ndarray of shape (3, 3)
        Counts; rows are the reference outcome, columns the rater's, both indexed by
        ``A_WINS, B_WINS, TIE``.
    n_items : int
        Items that entered the statistic (the bootstrap resamples these).
    n_comparisons : int
        Compared verdicts (``confusion.sum()``): one per item for a judge, one per vote for the
        human leave-one-out baseline.
    """

    agreement: Estimate
    agreement_no_ties: Estimate
    kappa: Estimate
    confusion: IntArray
    n_items: int
    n_comparisons: int


@dataclass(frozen=True)
class PositionPreference:
    """How often the answer shown first is picked.

    Attributes
    ----------
    first_share : Estimate
        ``n_first / (n_first + n_second)``: share of non-tie verdicts that pick the first-shown
        answer (0.5 means no position preference).
    n_first, n_second, n_ties : int
        Verdicts for the first-shown answer, for the second-shown answer, and ties.
    """

    first_share: Estimate
    n_first: int
    n_second: int
    n_ties: int


@dataclass(frozen=True)
class LengthBias:
    """How strongly verdicts follow answer length.

    Attributes
    ----------
    longer_share : Estimate
        Share of non-tie verdicts on answers of unequal length that pick the longer answer.
    slope : Estimate
        Logistic-regression slope of ``P(A wins | not a tie)`` on the relative length difference
        ``d = (len_a - len_b) / (len_a + len_b + 1)`` (in ``(-1, 1)``), with an intercept that
        absorbs position preference. It is the change in log-odds of picking A from equal
        lengths (``d = 0``) to "only A says anything" (``d -> 1``); 0 means no length bias.
    n_used : int
        Non-tie verdicts used by the regression.
    """

    longer_share: Estimate
    slope: Estimate
    n_used: int


@dataclass(frozen=True)
class RankCorrelation:
    """Rank correlation of two score vectors.

    Attributes
    ----------
    spearman : float
        Spearman's rho.
    kendall : float
        Kendall's tau-b.
    n_models : int
        Number of models compared.
    """

    spearman: float
    kendall: float
    n_models: int


@dataclass(frozen=True)
class CIAgreement:
    """Agreement with confidence intervals over the pairs the reference separates.

    Attributes
    ----------
    agreement : float
        ``(n_same + 0.5 * n_overlap) / n_separated`` (``nan`` when ``n_separated == 0``).
    n_separated : int
        Model pairs whose reference intervals do not overlap.
    n_same : int
        Of those, pairs that the benchmark separates in the same order.
    n_overlap : int
        Pairs whose benchmark intervals overlap (half a point each).
    n_opposite : int
        Pairs that the benchmark separates in the opposite order.
    """

    agreement: float
    n_separated: int
    n_same: int
    n_overlap: int
    n_opposite: int
