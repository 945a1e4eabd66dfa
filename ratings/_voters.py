"""Online, per-voter sequential tests of how surprising a voter's votes are under given ratings.

FastChat's ``outlier_detect`` (fastchat/serve/monitor/elo_analysis.py) scores a voter offline by
the summed log-likelihood of their votes under the fitted ratings. Here the same evidence is kept
online as two one-sided CUSUM log-likelihood-ratio statistics per voter (Page's test), each
against a named alternative, so a voter is flagged after the vote that makes them implausible:

* ``random``: the voter picks A or B with probability 1/2 whatever the models. Increment
  ``log(0.5 / p_chosen)``, where ``p_chosen`` is the chosen side's Bradley-Terry win probability.
* ``favourite`` of model m: the voter picks m with probability ``1 - FAVOURITE_SLIP`` whenever
  m is in the battle. Increment ``log((1 - slip) / p_m)`` if m was picked, else
  ``log(slip / (1 - p_m))``; one statistic per model the voter has seen.

Ties and both-bad votes carry no evidence for either alternative and leave the statistics as they
are. A statistic ``S`` moves as ``S = max(0, S + increment)`` and flags at ``S >= THRESHOLD``.
Wald's bound for a test of level alpha is ``log(1 / alpha)``; ``THRESHOLD = log(1000)`` keeps an
honest voter's chance of a false flag small over a few hundred votes (checked by simulation in
tests/test_voters.py and measured in tests/benchmarks/bench_voters.py).
"""

import math
from dataclasses import dataclass, field
from typing import Any

from ._fit import SCALE
from ._outcomes import A_WINS, B_WINS

THRESHOLD = math.log(1000.0)
FAVOURITE_SLIP = 0.05
# Win probabilities are clipped so that one vote against a far stronger model moves S by at most
# log(0.5 / 0.02) ~ 3.2: a single upset never flags a voter on its own.
P_FLOOR = 0.02


def win_probability(rating_a: float, rating_b: float) -> float:
    """Bradley-Terry probability that A beats B, from Elo-scale ratings (``ratings.SCALE``)."""
    p = 1.0 / (1.0 + math.exp((rating_b - rating_a) / SCALE))
    return min(max(p, P_FLOOR), 1.0 - P_FLOOR)


@dataclass
class VoterEvidence:
    """One voter's running statistics; ``as_dict``/``from_dict`` round-trip through JSON."""

    random: float = 0.0
    favourite: dict[str, float] = field(default_factory=dict)  # model key -> statistic
    decisive: int = 0

    def as_dict(self) -> dict[str, object]:
        return {"random": self.random, "favourite": dict(self.favourite), "decisive": self.decisive}

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> "VoterEvidence":
        data = data or {}
        return cls(
            random=float(data.get("random", 0.0)),
            favourite={str(k): float(v) for k, v in (data.get("favourite") or {}).items()},
            decisive=int(data.get("decisive", 0)),
        )

    @property
    def strongest(self) -> tuple[str, float]:
        """The largest statistic and its alternative: ("random", S) or ("favourite:m", S)."""
        best = ("random", self.random)
        for key, value in self.favourite.items():
            if value > best[1]:
                best = (f"favourite:{key}", value)
        return best

    @property
    def flagged(self) -> bool:
        return self.strongest[1] >= THRESHOLD


def observe_vote(
    evidence: VoterEvidence,
    *,
    model_a: str,
    model_b: str,
    rating_a: float | None,
    rating_b: float | None,
    outcome: int,
) -> VoterEvidence:
    """Update ``evidence`` in place with one vote and return it.

    A vote on a model without a rating (new to the board) carries no evidence.
    """
    if outcome not in (A_WINS, B_WINS) or rating_a is None or rating_b is None:
        return evidence
    if not (math.isfinite(rating_a) and math.isfinite(rating_b)):
        return evidence
    p_a = win_probability(rating_a, rating_b)
    a_won = outcome == A_WINS
    p_chosen = p_a if a_won else 1.0 - p_a
    evidence.random = max(0.0, evidence.random + math.log(0.5 / p_chosen))
    slip = FAVOURITE_SLIP
    for key, p_key, picked in ((model_a, p_a, a_won), (model_b, 1.0 - p_a, not a_won)):
        step = math.log((1 - slip) / p_key) if picked else math.log(slip / (1 - p_key))
        evidence.favourite[key] = max(0.0, evidence.favourite.get(key, 0.0) + step)
    # Keep the state small: statistics at zero say nothing.
    evidence.favourite = {k: v for k, v in evidence.favourite.items() if v > 0.0}
    evidence.decisive += 1
    return evidence
