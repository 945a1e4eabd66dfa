"""Calibration reports kept in memory for a few minutes, keyed by what they were computed from."""

from __future__ import annotations

import copy
import time

from django.db.models import Count, Max, Q

from arena.calibration.report import (
    BOARD_RESAMPLES,
    _cache,
    _cache_lock,
    _judge_report,
    calibration_report,
)
from arena.models import (
    Answer,
    BattleCategory,
    Judge,
    Judgement,
    Turn,
    Vote,
)

_CACHE_SECONDS = 300


_CACHE_SIZE = 16


def _fingerprint(judge: Judge) -> tuple:
    """What a report depends on, cheaply: changes whenever a vote, verdict, answer or category
    is added, voided, parsed or deleted. Timestamps tell apart rows that reuse an id after a
    rollback. An in-place edit of an existing row is caught only by the time limit."""

    def summary(queryset, *filters):
        extra = {f"n{k}": Count("id", filter=q) for k, q in enumerate(filters)}
        row = queryset.aggregate(
            last_id=Max("id"), last_at=Max("created_at"), n=Count("id"), **extra
        )
        return tuple(row[k] for k in sorted(row))

    votes = summary(Vote.objects.all(), Q(void_reason=""))
    verdicts = summary(Judgement.objects.filter(judge=judge), ~Q(verdict=""))
    others = (
        summary(Answer.objects.all()),
        summary(Turn.objects.current()),
        tuple(BattleCategory.objects.aggregate(last_id=Max("id"), n=Count("id")).values()),
    )
    return (
        judge.pk,
        judge.name,
        judge.created_at,
        judge.inconsistent_rule,
        votes,
        verdicts,
        *others,
    )


def cached_calibration_report(
    *, judge=None, rng=0, n_resamples: int = 1000, board_resamples: int = BOARD_RESAMPLES
) -> dict:
    """:func:`calibration_report`, kept per process for a few minutes while the data stays
    the same (see ``_fingerprint``). Returns a copy the caller may change."""
    if not isinstance(rng, int):
        return calibration_report(
            judge=judge, rng=rng, n_resamples=n_resamples, board_resamples=board_resamples
        )
    if isinstance(judge, str):
        judge = Judge.objects.get(name=judge)
    judges = list(Judge.objects.order_by("name")) if judge is None else [judge]
    memo: dict = {}
    reports = []
    now = time.monotonic()
    for j in judges:
        key = (j.pk, rng, n_resamples, board_resamples)
        fingerprint = _fingerprint(j)
        with _cache_lock:
            hit = _cache.get(key)
        if hit is not None and hit[0] == fingerprint and now - hit[1] < _CACHE_SECONDS:
            report = hit[2]
        else:
            report = _judge_report(j, rng, n_resamples, board_resamples, memo)
            with _cache_lock:
                _cache[key] = (fingerprint, time.monotonic(), report)
                while len(_cache) > _CACHE_SIZE:
                    del _cache[min(_cache, key=lambda k: _cache[k][1])]
        reports.append(copy.deepcopy(report))
    return {"judges": reports} if judge is None else reports[0]


def clear_calibration_cache() -> None:
    with _cache_lock:
        _cache.clear()
