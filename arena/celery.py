"""The Celery application. Without REDIS_URL tasks run eagerly in the calling process."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "arena.settings")

app = Celery("arena")
app.config_from_object("django.conf:settings", namespace="CELERY")
# Each domain with work for a worker keeps it in its own tasks.py.
app.autodiscover_tasks(
    [
        "arena.core",
        "arena.battles",
        "arena.evalsets",
        "arena.judging",
        "arena.leaderboards",
        "arena.calibration",
    ]
)
