"""Calibration reports computed off the request and stored, so every process shares them.

A report takes seconds on real data (the LLMFAO demo: 2-4 s per judge), so the pages never
compute one. :func:`calibration_states` says, per judge, what can be served now: the latest
complete :class:`~arena.models.CalibrationReport` and whether it is *current* (computed from
the data as it is: same fingerprint) or *stale*; when no current report exists it queues one
computation (at most one pending per judge: a partial unique constraint), which the caller
enqueues (:func:`arena.calibration.tasks.calibration_reports`). :func:`calibration_compute`
is the work itself, run by the task ``arena.calibration_refresh``.

Fingerprint
    What a report depends on, cheaply: ids, counts and latest timestamps of the votes (and how
    many count), the judge's verdicts (and how many parsed), the answers, the current turns and
    the category links, plus the judge's name and combining rule and the report's settings. It
    changes whenever one of those rows is added, voided, parsed or deleted. An in-place edit of
    an existing row (an outcome changed in the admin) is not seen: a report older than
    ``ARENA_CALIBRATION_MAX_AGE`` seconds (300) is still served, and recomputed beside it.

Failures
    A computation that raises is stored as failed with its message and shown; the same data is
    not tried again before ``RETRY_AFTER`` seconds. A pending computation that has not finished
    after ``RETRY_AFTER`` (its worker died) is given up and queued again.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
from dataclasses import dataclass

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Count, Max, Q
from django.utils import timezone

from arena.calibration.report import BOARD_RESAMPLES, STEPS, _judge_report
from arena.models import (
    Answer,
    BattleCategory,
    CalibrationReport,
    Judge,
    Judgement,
    Turn,
    Vote,
)

log = logging.getLogger(__name__)

MAX_AGE = 300  # seconds; settings.ARENA_CALIBRATION_MAX_AGE


RETRY_AFTER = 15 * 60  # seconds before a failed or abandoned computation is tried again


PENDING = (CalibrationReport.Status.QUEUED, CalibrationReport.Status.RUNNING)


def report_settings() -> dict:
    """The settings every stored report is computed with."""
    return {
        "rng": 0,
        "n_resamples": int(getattr(settings, "ARENA_CALIBRATION_RESAMPLES", 1000)),
        "board_resamples": int(
            getattr(settings, "ARENA_CALIBRATION_BOARD_RESAMPLES", BOARD_RESAMPLES)
        ),
    }


def _summary(queryset, *filters) -> tuple:
    extra = {f"n{k}": Count("id", filter=q) for k, q in enumerate(filters)}
    row = queryset.aggregate(last_id=Max("id"), last_at=Max("created_at"), n=Count("id"), **extra)
    return tuple(row[k] for k in sorted(row))


def _shared_summary() -> tuple:
    """The part of every judge's fingerprint that does not depend on the judge."""
    return (
        _summary(Vote.objects.all(), Q(void_reason="")),
        _summary(Answer.objects.all()),
        _summary(Turn.objects.current()),
        tuple(BattleCategory.objects.aggregate(last_id=Max("id"), n=Count("id")).values()),
    )


def report_fingerprint(judge: Judge, params: dict, shared: tuple | None = None) -> str:
    """A hash of what ``judge``'s report computed with ``params`` depends on (module doc)."""
    shared = _shared_summary() if shared is None else shared
    verdicts = _summary(Judgement.objects.filter(judge=judge), ~Q(verdict=""))
    key = (
        judge.pk,
        str(judge.name),
        judge.created_at.isoformat() if judge.created_at else None,
        str(judge.inconsistent_rule),  # a plain str: an enum member's repr differs
        verdicts,
        shared,
        sorted(params.items()),
    )
    return hashlib.sha256(repr(key).encode()).hexdigest()


@dataclass(frozen=True)
class CalibrationState:
    """What can be served for one judge.

    ``report`` is the latest complete report (None before the first), ``current`` whether it
    was computed from the data as it is now, ``pending`` the computation under way (None when
    none is), ``error`` the message of the last failed computation when nothing is pending.
    """

    judge: Judge
    report: dict | None
    computed_at: dt.datetime | None
    current: bool
    pending: CalibrationReport | None
    error: str = ""

    @property
    def state(self) -> str:
        """``current``, ``updating`` (a stale report shown while a new one computes),
        ``computing`` (nothing to show yet), ``stale`` or ``failed`` (nothing pending)."""
        if self.current:
            return "current"
        if self.pending is not None:
            return "updating" if self.report is not None else "computing"
        return "failed" if self.error else "stale"


def calibration_states(judges: list[Judge]) -> tuple[list[CalibrationState], list[int]]:
    """Per judge, the report to serve; and the ids of computations queued by this call, which
    the caller enqueues (after commit) for ``arena.calibration_refresh``."""
    params = report_settings()
    shared = _shared_summary()
    now = timezone.now()
    max_age = dt.timedelta(seconds=float(getattr(settings, "ARENA_CALIBRATION_MAX_AGE", MAX_AGE)))
    states, queued = [], []
    for judge in judges:
        fingerprint = report_fingerprint(judge, params, shared)
        rows = CalibrationReport.objects.filter(judge=judge)
        latest = (
            rows.filter(status=CalibrationReport.Status.COMPLETE)
            .order_by("-computed_at", "-id")
            .first()
        )
        current = latest is not None and latest.fingerprint == fingerprint
        pending = rows.filter(status__in=PENDING).first()
        error = ""
        too_old = current and latest is not None and now - latest.computed_at > max_age
        abandoned = (not current or too_old) and _abandoned(pending, now)
        if abandoned:
            pending = None
        if pending is None and (not current or too_old):
            failed = None
            if not abandoned:
                failed = rows.filter(
                    status=CalibrationReport.Status.FAILED,
                    fingerprint=fingerprint,
                    created_at__gte=now - dt.timedelta(seconds=RETRY_AFTER),
                ).first()
            if failed is not None and not current:
                error = failed.message or "The computation failed."
            elif failed is None:
                pending = _queue(judge, fingerprint, params)
                if pending is not None and pending.status == CalibrationReport.Status.QUEUED:
                    queued.append(pending.pk)
        states.append(
            CalibrationState(
                judge=judge,
                report=latest.report if latest else None,
                computed_at=latest.computed_at if latest else None,
                current=current,
                pending=None if current else pending,
                error=error,
            )
        )
    return states, queued


def _abandoned(pending: CalibrationReport | None, now: dt.datetime) -> bool:
    """Give up a pending computation that has not finished in ``RETRY_AFTER`` seconds."""
    if pending is None:
        return False
    if now - (pending.started_at or pending.created_at) < dt.timedelta(seconds=RETRY_AFTER):
        return False
    CalibrationReport.objects.filter(pk=pending.pk, status__in=PENDING).update(
        status=CalibrationReport.Status.FAILED,
        message="Abandoned: it did not finish in time; computing again.",
    )
    return True


def _queue(judge: Judge, fingerprint: str, params: dict) -> CalibrationReport | None:
    """A new queued computation, or the one another request queued meanwhile."""
    try:
        with transaction.atomic():
            return CalibrationReport.objects.create(
                judge=judge,
                fingerprint=fingerprint,
                settings=params,
                steps_total=len(STEPS),
            )
    except IntegrityError:  # one is pending already (the partial unique constraint)
        return CalibrationReport.objects.filter(judge=judge, status__in=PENDING).first()


def calibration_compute(report_id: int) -> CalibrationReport | None:
    """Compute a queued report and store it; returns the row (None when there was nothing to
    do: no such row, or another worker claimed it). The fingerprint stored is the one read
    just before the computation, so votes that land meanwhile make it stale at once."""
    claimed = CalibrationReport.objects.filter(
        pk=report_id, status=CalibrationReport.Status.QUEUED
    ).update(status=CalibrationReport.Status.RUNNING, started_at=timezone.now())
    if not claimed:
        log.info("calibration report %s is not queued (done or taken); skipped", report_id)
        return None
    row = CalibrationReport.objects.select_related("judge").get(pk=report_id)
    running = CalibrationReport.objects.filter(
        pk=report_id, status=CalibrationReport.Status.RUNNING
    )
    params = row.settings
    try:
        fingerprint = report_fingerprint(row.judge, params)
        report = _judge_report(
            row.judge,
            params["rng"],
            params["n_resamples"],
            params["board_resamples"],
            {},
            progress=lambda n: running.update(steps_done=n),
        )
    except Exception as exc:
        log.exception("calibration report %s of judge %s failed", report_id, row.judge_id)
        running.update(
            status=CalibrationReport.Status.FAILED,
            message=f"The computation failed: {exc!r}"[:500],
        )
        row.refresh_from_db()
        return row
    with transaction.atomic():
        stored = running.update(
            status=CalibrationReport.Status.COMPLETE,
            fingerprint=fingerprint,
            report=report,
            steps_done=len(STEPS),
            computed_at=timezone.now(),
        )
        if stored:  # older reports and failures of this judge are of no more use
            CalibrationReport.objects.filter(judge_id=row.judge_id).exclude(pk=report_id).exclude(
                status__in=PENDING
            ).delete()
    row.refresh_from_db()
    return row
