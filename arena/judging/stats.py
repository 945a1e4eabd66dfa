"""How a judge behaves: agreement with itself across orders, first-position preference."""

from dataclasses import dataclass
from decimal import Decimal

import numpy as np
from django.db.models import Count, Q, Sum

from arena.judging.runs import UPSTREAM_ERROR, _chunks
from arena.judging.verdicts import judge_verdicts
from arena.models import Judge, Judgement
from ratings import TIE
from ratings.agreement import (
    Estimate,
    first_position_preference,
    position_consistency,
    score_outcomes,
)


@dataclass(frozen=True)
class JudgeStats:
    """Counts and position statistics of a judge's judgements (on some battles, or all).

    ``consistency``: share of pairs judged in both orders whose two verdicts pick the same
    answer. ``first_position``: share of decided verdicts (both orders pooled) that pick the
    answer shown first. ``None`` when there is nothing to measure.
    """

    judgements: int
    parsed: int
    parse_failures: int
    upstream_failures: int
    pairs_both: int
    consistency: Estimate | None
    first_position: Estimate | None
    decided: int
    latency_ms: int
    tokens_in: int
    tokens_out: int
    cost: Decimal | None


def judge_stats(*, judge: Judge, battle_ids=None, n_resamples: int = 1000) -> JudgeStats:
    """Statistics of ``judge`` on the given battles (all its battles by default)."""
    upstream = Q(verdict="", parse_error__startswith=UPSTREAM_ERROR)
    totals = {"judgements": 0, "parsed": 0, "upstream": 0, "latency": 0, "in": 0, "out": 0}
    costs: list[Decimal] = []
    ab_parts, ba_parts = [], []
    chunks = [None] if battle_ids is None else list(_chunks(list(battle_ids)))
    for chunk in chunks:
        rows = Judgement.objects.filter(judge=judge)
        if chunk is not None:
            rows = rows.filter(battle_id__in=chunk)
        part = rows.aggregate(
            judgements=Count("id"),
            parsed=Count("id", filter=~Q(verdict="")),
            upstream=Count("id", filter=upstream),
            latency=Sum("latency_ms"),
            tokens_in=Sum("tokens_in"),
            tokens_out=Sum("tokens_out"),
            cost=Sum("cost"),
        )
        for key in ("judgements", "parsed", "upstream"):
            totals[key] += part[key]
        totals["latency"] += part["latency"] or 0
        totals["in"] += part["tokens_in"] or 0
        totals["out"] += part["tokens_out"] or 0
        if part["cost"] is not None:
            costs.append(part["cost"])
        verdicts = judge_verdicts(judge, battle_ids=chunk)
        ab_parts.append(verdicts.ab)
        ba_parts.append(verdicts.ba)
    ab, ba = np.concatenate(ab_parts), np.concatenate(ba_parts)
    both = ~np.isnan(ab) & ~np.isnan(ba)
    consistency = None
    if both.any():
        consistency = position_consistency(ab[both], ba[both], n_resamples=n_resamples, rng=0)
    # Every parsed verdict, as the score of the answer shown first; a pair is one item.
    shown_first = np.concatenate([ab, ba])
    items = np.concatenate([np.arange(ab.size)] * 2)
    parsed = ~np.isnan(shown_first)
    codes = score_outcomes(shown_first[parsed]) if parsed.any() else np.zeros(0, dtype=int)
    decided = int((codes != TIE).sum())
    first = None
    if decided:
        first = first_position_preference(
            codes, items=items[parsed], n_resamples=n_resamples, rng=0
        ).first_share
    return JudgeStats(
        judgements=totals["judgements"],
        parsed=totals["parsed"],
        parse_failures=totals["judgements"] - totals["parsed"] - totals["upstream"],
        upstream_failures=totals["upstream"],
        pairs_both=int(both.sum()),
        consistency=consistency,
        first_position=first,
        decided=decided,
        latency_ms=totals["latency"],
        tokens_in=totals["in"],
        tokens_out=totals["out"],
        cost=sum(costs) if costs else None,
    )
