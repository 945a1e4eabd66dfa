"""Judging on a worker: runs, and single battles judged after their vote. Transient upstream
errors are retried with backoff; a retry never stores a verdict twice."""

import logging
import time

from celery import shared_task
from django.db import transaction

from arena.core.tasks import enqueue_beside_request
from arena.judging.runs import (
    MAX_RETRIES,
    NotJudgeable,
    judge_battle,
    judge_run_create,
    judge_run_execute,
    retry_delay,
)
from arena.models import Battle, Judge, Run
from arena.providers import ProviderError

logger = logging.getLogger(__name__)


def judge_after_vote(battle_id: int) -> None:
    """Have every judge with ``auto_judge`` judge this battle (a counted-vote hook, run after
    the vote commits)."""
    judge_after_votes([battle_id])


def judge_after_votes(battle_ids: list[int]) -> None:
    """``judge_after_vote`` for many battles: the judges are read once."""
    judges = Judge.objects.filter(auto_judge=True, contestant__isnull=False)
    for judge_id in judges.values_list("id", flat=True):
        for battle_id in battle_ids:
            enqueue_beside_request(judge_battle_task, judge_id, battle_id)


def _retry(task, exc: ProviderError):
    """Retry the task after :func:`retry_delay`. Eager tasks (no broker) retry in this process:
    Celery would propagate the ``Retry`` there, as it propagates every eager exception."""
    countdown = retry_delay(task.request.retries)
    if not task.request.is_eager:
        raise task.retry(exc=exc, countdown=countdown)
    time.sleep(countdown)
    retried = task.apply(
        args=task.request.args,
        kwargs=task.request.kwargs,
        retries=task.request.retries + 1,
        throw=True,
    )
    return retried.result


@shared_task(bind=True, name="arena.judge_run", max_retries=MAX_RETRIES, acks_late=True)
def judge_run_task(self, run_id: int) -> dict | None:
    """Execute a judge run; retry the pairs left pending by a transient upstream error."""
    run = Run.objects.filter(pk=run_id, kind=Run.Kind.JUDGE).first()
    if run is None:
        logger.warning("Judge run %s does not exist; nothing to do.", run_id)
        return None
    final = self.request.retries >= self.max_retries
    attempt = judge_run_execute(run=run, final_attempt=final)
    if attempt.pending:
        return _retry(self, attempt.error)
    run.refresh_from_db()
    return {"run": run.pk, "status": run.status, "done": run.done, "failed": run.failed}


@shared_task(bind=True, name="arena.judge_battle", max_retries=MAX_RETRIES, acks_late=True)
def judge_battle_task(self, judge_id: int, battle_id: int) -> list[str] | None:
    """Judge one battle in both orders (automatic judging after a vote)."""
    judge = Judge.objects.select_related("contestant").filter(pk=judge_id).first()
    battle = (
        Battle.objects.select_related("prompt_item", "answer_a", "answer_b")
        .filter(pk=battle_id)
        .first()
    )
    if judge is None or battle is None:
        logger.warning("Judge %s or battle %s does not exist; nothing to do.", judge_id, battle_id)
        return None
    final = self.request.retries >= self.max_retries
    try:
        rows = judge_battle(judge=judge, battle=battle, final_attempt=final)
    except ProviderError as exc:
        return _retry(self, exc)
    except NotJudgeable as exc:
        logger.warning("Not judging battle %s: %s", battle_id, exc)
        return None
    return [row.verdict for row in rows]


def judge_run_start(
    *, judge: Judge, battle_ids: list[int], source: str, user=None, limit: int | None = None
) -> Run:
    """Create a run and enqueue :func:`judge_run_task` once the run row is committed: on a
    worker, or without one on a thread beside the request, so the run page can follow it."""
    with transaction.atomic():
        run = judge_run_create(
            judge=judge, battle_ids=battle_ids, source=source, user=user, limit=limit
        )
        transaction.on_commit(lambda: enqueue_beside_request(judge_run_task, run.pk), robust=True)
    return run
