"""The arena's domain. See ../shared/DESIGN.md for the picture these rows make together.

One app label (``arena``), one module per part of the schema. Modules here import each other
directly (``arena.models.battles``), never this package, so that no import goes in a circle.
"""

from arena.models.api import ApiToken, ExternalBattleKey
from arena.models.battles import (
    Answer,
    Battle,
    BattleCategory,
    BattleQuerySet,
    PromptItem,
    PromptSet,
    Round,
    Turn,
    TurnQuerySet,
    Vote,
    VoteQuerySet,
)
from arena.models.contestants import Category, Contestant, validate_env_var_name
from arena.models.counts import DayCount, PairCount
from arena.models.invites import Invite
from arena.models.judging import Judge, Judgement, Run
from arena.models.quality import VoteReview, VoterStanding
from arena.models.reports import CalibrationReport, LeaderboardSnapshot
from arena.models.sampling import SamplingSettings

__all__ = [
    "Answer",
    "ApiToken",
    "Battle",
    "BattleCategory",
    "BattleQuerySet",
    "CalibrationReport",
    "Category",
    "Contestant",
    "DayCount",
    "Invite",
    "ExternalBattleKey",
    "Judge",
    "Judgement",
    "LeaderboardSnapshot",
    "PairCount",
    "PromptItem",
    "PromptSet",
    "Round",
    "Run",
    "SamplingSettings",
    "Turn",
    "TurnQuerySet",
    "Vote",
    "VoteQuerySet",
    "VoteReview",
    "VoterStanding",
    "validate_env_var_name",
]
