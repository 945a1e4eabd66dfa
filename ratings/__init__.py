"""Ratings engine for pairwise preference battles: pure numpy/scipy, no Django.

Models are integer ids ``0 .. n_models - 1`` (the caller maps names at the boundary). Battle
outcomes are coded :data:`A_WINS`, :data:`B_WINS`, :data:`TIE`, :data:`BOTH_BAD`.

Typical use::

    import ratings
    board = ratings.leaderboard(n_models, model_a, model_b, outcome, rng=0)
    board.rows()          # per model: rating, lower, upper, rank, rank_ub, votes, ...

or step by step: :func:`aggregate` -> :func:`fit_bt` / :func:`fit_davidson` ->
:func:`bootstrap` / :func:`sandwich` -> :func:`rank_stats`, :func:`pairwise`.

One vocabulary throughout, as in scipy.stats: ``confidence_level`` (coverage of every interval
and rank range, default 0.95), ``n_resamples`` (bootstrap resamples) and ``lower``/``upper``
(interval bounds). Everything public is importable from ``ratings``; :mod:`ratings.agreement`
(judge-human and benchmark agreement) and :mod:`ratings.cli` are the public submodules, every
other module is private.
"""

from . import agreement
from ._aggregate import PairCounts, aggregate
from ._board import Leaderboard
from ._bradley_terry import bradley_terry, fit_bt
from ._categories import CategoryLeaderboards, leaderboards_by_category
from ._davidson import fit_davidson
from ._elo import online_elo
from ._fit import CENTER, SCALE, RatingFit
from ._fragility import Fragility, fragility
from ._intervals import Intervals, bootstrap
from ._leaderboard import leaderboard, leaderboard_from_counts
from ._outcomes import A_WINS, B_WINS, BOTH_BAD, OUTCOMES, TIE
from ._pairwise import Pairwise, pairwise
from ._ranks import Ranks, rank_stats
from ._sampling import PairDistribution, active_pairs, draw_pair, ipw_weights, uniform_pairs
from ._sandwich import sandwich
from ._solver import DEFAULT_PRIOR, DegenerateDataError
from ._style import (
    FEATURES,
    StyleFeatures,
    StyleFit,
    answer_features,
    battle_features,
    estimate_tokens,
    fit_style,
)
from ._voters import THRESHOLD as VOTER_THRESHOLD
from ._voters import VoterEvidence, observe_vote

__all__ = [
    "VOTER_THRESHOLD",
    "VoterEvidence",
    "observe_vote",
    "A_WINS",
    "B_WINS",
    "TIE",
    "BOTH_BAD",
    "OUTCOMES",
    "SCALE",
    "CENTER",
    "DEFAULT_PRIOR",
    "DegenerateDataError",
    "PairCounts",
    "aggregate",
    "RatingFit",
    "fit_bt",
    "bradley_terry",
    "fit_davidson",
    "online_elo",
    "Intervals",
    "bootstrap",
    "sandwich",
    "Ranks",
    "rank_stats",
    "Pairwise",
    "pairwise",
    "FEATURES",
    "StyleFeatures",
    "StyleFit",
    "answer_features",
    "battle_features",
    "estimate_tokens",
    "fit_style",
    "Leaderboard",
    "leaderboard",
    "leaderboard_from_counts",
    "CategoryLeaderboards",
    "leaderboards_by_category",
    "agreement",
    "Fragility",
    "fragility",
    "PairDistribution",
    "active_pairs",
    "uniform_pairs",
    "draw_pair",
    "ipw_weights",
]
