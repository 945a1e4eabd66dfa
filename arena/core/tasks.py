"""Celery tasks. A task takes ids, fetches rows and calls a service."""

import logging
import os
import socket

from celery import Task, shared_task

log = logging.getLogger(__name__)


def enqueue_beside_request(task: Task, *args: object) -> None:
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
