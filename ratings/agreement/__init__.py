"""Agreement statistics: does an LLM judge (or a benchmark) agree with humans?

Two levels are covered.

Pair level: verdicts on single comparisons, coded with ratings' outcome codes
:data:`ratings.A_WINS` (0), :data:`ratings.B_WINS` (1) and :data:`ratings.TIE` (2), where A is the
answer shown first (left) and B the answer shown second (right); ``BOTH_BAD`` is not a verdict.
Items (compared pairs) are integers ``0..n_items-1``. Human votes come as two parallel arrays
``items`` and ``votes``; a judge gives one verdict per item. Every statistic comes with a
percentile bootstrap interval that resamples *items*, so the several votes on one item move
together.

Leaderboard level: score vectors of ``n_models`` models, indexed ``0..n_models-1`` in the same
order for the benchmark and the reference (for example Chatbot Arena), with their confidence
intervals, compared as in lmarena/arena-hard-auto: Spearman/Kendall correlation, separability,
agreement with confidence intervals and the Brier score of predicted win probabilities.

Everything public is imported from here; the private modules hold the verdict scales
(``_scales``), agreement with humans (``_humans``), position and length bias (``_bias``), the
leaderboard level (``_boards``), the item bootstrap (``_bootstrap``), the result types
(``_results``) and input validation (``_validation``).

References
----------
.. [1] T. Li, W.-L. Chiang, E. Frick, L. Dunlap, T. Wu, B. Zhu, J. E. Gonzalez, I. Stoica,
   "From Crowdsourced Data to High-Quality Benchmarks: Arena-Hard and BenchBuilder Pipeline",
   arXiv:2406.11939, 2024 (notebook ``benchmark_for_benchmarks.ipynb`` in lmarena/arena-hard-auto).
.. [2] J. Cohen, "A coefficient of agreement for nominal scales", Educational and Psychological
   Measurement 20(1), 37-46, 1960.
.. [3] L. Zheng et al., "Judging LLM-as-a-Judge with MT-Bench and Chatbot Arena", NeurIPS 2023
   Datasets and Benchmarks (position and verbosity bias, judging both orders).
"""

from ._bias import combine_orders, first_position_preference, length_bias, position_consistency
from ._boards import (
    agreement_with_ci,
    brier_score,
    intervals_overlap,
    rank_correlation,
    separability,
    win_probabilities,
)
from ._humans import NO_MAJORITY, human_agreement, judge_agreement, majority_vote
from ._results import (
    Agreement,
    CIAgreement,
    Estimate,
    LengthBias,
    PositionPreference,
    RankCorrelation,
)
from ._scales import VERDICT_LABELS, outcome_scores, score_outcomes, verdict_scores

__all__ = [
    "NO_MAJORITY",
    "VERDICT_LABELS",
    "Estimate",
    "Agreement",
    "PositionPreference",
    "LengthBias",
    "RankCorrelation",
    "CIAgreement",
    "verdict_scores",
    "outcome_scores",
    "score_outcomes",
    "majority_vote",
    "judge_agreement",
    "human_agreement",
    "first_position_preference",
    "position_consistency",
    "combine_orders",
    "length_bias",
    "rank_correlation",
    "intervals_overlap",
    "separability",
    "agreement_with_ci",
    "win_probabilities",
    "brier_score",
]
