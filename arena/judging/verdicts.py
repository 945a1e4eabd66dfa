"""A judge's output -> a verdict label -> a score; a judge's stored verdicts combined over
both orders."""

import re
from dataclasses import dataclass

import numpy as np

from arena.judging.prompts import FIVE_LEVELS, THREE_LEVELS
from arena.models import Judgement
from ratings import A_WINS, B_WINS, TIE
from ratings.agreement import (
    combine_orders,
    outcome_scores,
    score_outcomes,
    verdict_scores,
)

_LAST_LINE = re.compile(r"^\s*Verdict:\s*\[\[([^\[\]]{1,8})\]\]\s*$")


class VerdictParseError(ValueError):
    pass


def parse_verdict(output: str, verdict_format: str = "five") -> str:
    """The verdict label on the output's last non-empty line, or VerdictParseError."""
    lines = [line for line in output.strip().splitlines() if line.strip()]
    if not lines:
        raise VerdictParseError("empty output")
    match = _LAST_LINE.match(lines[-1])
    if not match:
        raise VerdictParseError(f"last line is not a verdict: {lines[-1][:80]!r}")
    label = match.group(1).strip()
    allowed = FIVE_LEVELS if verdict_format == "five" else THREE_LEVELS
    canonical = {a.lower(): a for a in allowed}.get(label.lower())
    if canonical is None:
        raise VerdictParseError(f"unknown verdict {label!r}; expected one of {', '.join(allowed)}")
    return canonical


def verdict_score(label: str) -> float:
    """Score of the answer shown first, in [0, 1]: the ratings engine's one mapping."""
    if label in FIVE_LEVELS:
        return float(verdict_scores([label])[0])
    code = {"A": A_WINS, "B": B_WINS, "tie": TIE}[label]
    return float(outcome_scores([code])[0])


@dataclass(frozen=True, eq=False)
class JudgeVerdicts:
    """A judge's parsed verdicts per battle, both orders combined.

    ``ab`` is the score of the battle's side A when A was shown first, ``ba`` the score of side
    B when B was shown first (NaN where that order was not judged or did not parse). ``score``
    is side A's combined score in [0, 1] and ``outcome`` its code (A_WINS, B_WINS, TIE).
    """

    battle_ids: np.ndarray
    ab: np.ndarray
    ba: np.ndarray
    score: np.ndarray
    outcome: np.ndarray
    parse_failures: int


def judge_verdicts(judge, *, battle_ids=None) -> JudgeVerdicts:
    """Read a judge's judgements and combine orders with the judge's inconsistency rule."""
    rows = Judgement.objects.filter(judge=judge)
    if battle_ids is not None:
        rows = rows.filter(battle_id__in=list(battle_ids))
    by_battle: dict[int, list[float]] = {}
    failures = 0
    for battle_id, order, verdict in rows.values_list("battle_id", "order", "verdict"):
        if not verdict:
            failures += 1
            continue
        pair = by_battle.setdefault(battle_id, [np.nan, np.nan])
        pair[0 if order == "ab" else 1] = verdict_score(verdict)
    ids = np.array(sorted(by_battle), dtype=np.int64)
    ab = np.array([by_battle[i][0] for i in ids], dtype=float).reshape(-1)
    ba = np.array([by_battle[i][1] for i in ids], dtype=float).reshape(-1)
    both = ~np.isnan(ab) & ~np.isnan(ba)
    score = np.where(np.isnan(ab), 1.0 - ba, ab)
    if both.any():
        score[both] = combine_orders(ab[both], ba[both], rule=judge.inconsistent_rule)
    outcome = score_outcomes(score) if score.size else np.zeros(0, dtype=np.int64)
    return JudgeVerdicts(ids, ab, ba, score, np.asarray(outcome), failures)
