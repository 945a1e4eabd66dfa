"""Celery tasks of the battles domain."""

from celery import shared_task

from arena.battles.services import battle_sweep_age, battle_sweep_stale


@shared_task(name="arena.battles_sweep")
def battles_sweep() -> int:
    """Void the battles a crashed process left streaming (for a beat schedule, see
    CELERY_BEAT_SCHEDULE in settings): how many were voided."""
    return battle_sweep_stale(older_than=battle_sweep_age())
