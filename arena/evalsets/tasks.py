"""Answer generation on a worker: a run is queued after commit and claimed by its task."""

import logging

from celery import shared_task
from django.db import transaction

from arena.evalsets.generation import generation_run_execute, run_finish
from arena.models import Run

logger = logging.getLogger(__name__)


@shared_task(name="arena.generate_answers")
def generate_answers_task(run_id: int) -> dict | None:
    result = generation_run_execute(run_id=run_id)
    if result is None:
        return None
    return {"total": result.total, "done": result.done, "failed": result.failed}


def generation_run_enqueue(*, run: Run) -> None:
    """Queue the run's task once the current transaction commits (at once outside one)."""
    transaction.on_commit(lambda: _enqueue(run.pk))


def _enqueue(run_id: int) -> None:
    try:
        generate_answers_task.delay(run_id)
    except Exception as exc:  # broker down; or, when eager, the run itself failed (recorded)
        logger.exception("Generation run %s failed to start", run_id)
        run_finish(run_id, Run.Status.FAILED, f"Could not start: {exc}", only_if=Run.Status.QUEUED)
