"""Calibration reports on a worker (``arena.calibration_refresh``), queued by the pages when
the data changed since the stored report (:mod:`arena.calibration.store`)."""

import logging

from celery import shared_task
from django.db import close_old_connections, transaction

from arena.calibration.store import (
    PENDING,
    CalibrationState,
    calibration_compute,
    calibration_states,
)
from arena.core.tasks import enqueue_beside_request
from arena.models import CalibrationReport, Judge

log = logging.getLogger(__name__)


@shared_task(name="arena.calibration_refresh")
def calibration_refresh_task(report_id: int) -> str | None:
    """Compute one queued calibration report; returns its status (None: nothing to do)."""
    try:
        row = calibration_compute(report_id)
        return None if row is None else row.status
    finally:
        if not transaction.get_connection().in_atomic_block:  # never under a caller's
            close_old_connections()


def _enqueue(report_id: int) -> None:
    enqueue_beside_request(calibration_refresh_task, report_id)


def calibration_reports(judges: list[Judge]) -> list[CalibrationState]:
    """What to serve per judge; a judge without a current report gets one computation queued,
    enqueued beside the request once queued. When tasks run in the request itself (tests),
    the states are read again after them."""
    states, queued = calibration_states(judges)
    for report_id in queued:
        transaction.on_commit(lambda report_id=report_id: _enqueue(report_id), robust=True)
    if queued and not CalibrationReport.objects.filter(pk__in=queued, status__in=PENDING).exists():
        states, _ = calibration_states(judges)
    return states
