"""Leaderboard refresh on a worker: one debounced refresh after votes, one at a time."""

import logging
import os

from celery import shared_task
from django.conf import settings
from django.core.cache import cache
from django.db import close_old_connections

from arena.core.tasks import enqueue_beside_request
from arena.leaderboards.refresh import leaderboard_refresh
from arena.leaderboards.schedule import REFRESH_QUEUED, REFRESH_RUNNING, refresh_due
from arena.models import Judge

log = logging.getLogger(__name__)


@shared_task(name="arena.leaderboard_refresh")
def leaderboard_refresh_task(judge_id: int | None = None) -> int:
    """Recompute the boards of human votes (or of one judge); returns snapshots stored.

    One refresh at a time per process group: a second one while the first runs is skipped,
    and the next vote queues a new one.
    """
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
        stored = len(leaderboard_refresh(judge=judge))
        log.info("leaderboard refresh stored %d snapshots in process %d", stored, os.getpid())
        return stored
    finally:
        cache.delete(REFRESH_RUNNING)
        close_old_connections()


def leaderboard_after_vote(battle_id: int | None = None) -> bool:
    """A counted-vote hook, run after the vote commits: enqueue one debounced refresh when due."""
    if not settings.ARENA_REFRESH_AFTER_VOTES or not refresh_due():
        return False
    if not cache.add(REFRESH_QUEUED, 1, timeout=15 * 60):
        return False
    enqueue_beside_request(leaderboard_refresh_task)
    return True
