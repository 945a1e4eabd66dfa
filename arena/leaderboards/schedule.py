"""When a refresh of the human boards is due (after N new votes, or T minutes)."""

import datetime as dt

from django.conf import settings
from django.core.cache import cache
from django.utils import timezone

from arena.leaderboards.data import rated_votes
from arena.leaderboards.snapshots import latest_snapshot

REFRESH_QUEUED = "arena:leaderboard-refresh-queued"


REFRESH_RUNNING = "arena:leaderboard-refresh-running"


def refresh_due() -> bool:
    """A human-vote refresh is due after N new counted votes, or T minutes after the last."""
    latest = latest_snapshot()
    since = latest.cutoff_vote_id or 0 if latest else 0
    new = rated_votes().filter(id__gt=since).count()
    if new == 0:
        return False
    if latest is None or new >= settings.ARENA_REFRESH_EVERY_VOTES:
        return True
    age = timezone.now() - (latest.completed_at or latest.created_at)
    return age >= dt.timedelta(minutes=settings.ARENA_REFRESH_MINUTES)


def refresh_state() -> str:
    """What the cache says of a refresh (of the human boards or a judge's): "running",
    "queued" or "". Without Redis the cache is the web process's own, so this sees the
    refreshes that votes start beside requests, not a `manage.py leaderboard refresh`."""
    if cache.get(REFRESH_RUNNING):
        return "running"
    if cache.get(REFRESH_QUEUED):
        return "queued"
    return ""
