"""Celery tasks. A task takes ids, fetches rows and calls a service."""

import logging
import os
import socket

from celery import shared_task

log = logging.getLogger(__name__)


def enqueue_beside_request(task, *args) -> None:
    """Queue a task for a worker; without one (eager mode), run it on a daemon thread so the
    request that triggered it (a vote) does not wait for it."""
    from django.conf import settings

    if settings.CELERY_TASK_ALWAYS_EAGER and settings.ARENA_EAGER_TASKS_IN_BACKGROUND:
        import threading

        threading.Thread(target=task.apply, args=(args,), daemon=True).start()
    else:
        task.delay(*args)  # eager and not in background: runs here and now (tests)


@shared_task(name="arena.ping")
def ping(token: str) -> dict:
    """Answer with who ran the task: proves the broker/worker wiring end to end."""
    return {"token": token, "pid": os.getpid(), "host": socket.gethostname()}


@shared_task(name="arena.leaderboard_refresh")
def leaderboard_refresh_task(judge_id: int | None = None) -> int:
    """Recompute the boards of human votes (or of one judge); returns snapshots stored.

    One refresh at a time per process group: a second one while the first runs is skipped,
    and the next vote queues a new one.
    """
    from django.core.cache import cache
    from django.db import close_old_connections

    from arena.leaderboards import REFRESH_QUEUED, REFRESH_RUNNING, leaderboard_refresh
    from arena.models import Judge

    cache.delete(REFRESH_QUEUED)
    if not cache.add(REFRESH_RUNNING, 1, timeout=30 * 60):
        log.info("leaderboard refresh already running; skipped")
        return 0
    try:
        judge = None
        if judge_id is not None:
            judge = Judge.objects.filter(pk=judge_id).first()
            if judge is None:
                log.warning("leaderboard refresh: judge %s no longer exists", judge_id)
                return 0
        return len(leaderboard_refresh(judge=judge))
    finally:
        cache.delete(REFRESH_RUNNING)
        close_old_connections()
