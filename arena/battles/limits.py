"""Per-user limits on live battles and votes, counted in the database (so they hold across
sockets and server processes) and checked again in the transaction that stores what they
limit, so a refused message stores nothing and a race cannot slip past them.

- ``ARENA_MAX_CONCURRENT_BATTLES`` (3): battles of one user streaming at once.
- ``ARENA_PROMPTS_PER_MINUTE`` (20): rounds one user starts in any 60 s (new battles,
  follow-ups and regenerates).
- ``ARENA_VOTES_PER_DAY`` (500): votes one user casts in any 24 hours (live and eval-set).
"""

from collections import Counter
from datetime import timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db.models import Q
from django.utils import timezone

from arena.core.errors import ArenaError
from arena.models import Battle, Turn, Vote


class LimitExceeded(ArenaError):
    """A per-user limit was reached; the message names the limit's setting."""


def max_concurrent_battles() -> int:
    return int(getattr(settings, "ARENA_MAX_CONCURRENT_BATTLES", 3))


def prompts_per_minute() -> int:
    return int(getattr(settings, "ARENA_PROMPTS_PER_MINUTE", 20))


def votes_per_day() -> int:
    return int(getattr(settings, "ARENA_VOTES_PER_DAY", 500))


def user_lock(*, user) -> None:
    """Inside a transaction: serialize this user's limit checks with the user's row lock (on
    SQLite every write transaction is serialized already)."""
    list(get_user_model().objects.select_for_update().filter(pk=user.pk).values_list("pk"))


def streaming_count(*, user_id: int) -> int:
    return streaming_counts(user_ids=[user_id])[user_id]


def streaming_counts(*, user_ids) -> Counter:
    """``streaming_count`` of several users in one query."""
    return Counter(
        Battle.objects.filter(user_id__in=user_ids, status=Battle.Status.STREAMING).values_list(
            "user_id", flat=True
        )
    )


def rounds_last_minute(*, user_id: int) -> int:
    return rounds_last_minute_many(user_ids=[user_id])[user_id]


def rounds_last_minute_many(*, user_ids) -> Counter:
    """Rounds each user started in the last minute, in two queries: new live battles (whatever
    became of them) and follow-ups and regenerates stored since (a round still streaming is in
    the first count or, for a follow-up, in ``streaming_count``)."""
    since = timezone.now() - timedelta(minutes=1)
    battles = Battle.objects.filter(
        user_id__in=user_ids, mode=Battle.Mode.LIVE, created_at__gte=since
    ).values_list("user_id", flat=True)
    later = (
        Turn.objects.filter(battle__user_id__in=user_ids, side=Turn.Side.A, created_at__gte=since)
        .filter(Q(index__gt=0) | Q(attempt__gt=0))
        .values_list("battle__user_id", flat=True)
    )
    return Counter(battles) + Counter(later)


def round_check(*, user_id: int, streaming: int | None = None, started: int | None = None) -> None:
    """Raise LimitExceeded when the user may not start another round now. ``streaming`` and
    ``started`` are the counts when the caller has them (several battles stored at once)."""
    limit = max_concurrent_battles()
    if streaming is None:
        streaming = streaming_count(user_id=user_id)
    if streaming >= limit:
        raise LimitExceeded(
            f"You already have {streaming} battles streaming; the limit is {limit} at once "
            "(ARENA_MAX_CONCURRENT_BATTLES). Wait until one has finished."
        )
    limit = prompts_per_minute()
    if started is None:
        started = rounds_last_minute(user_id=user_id)
    if started >= limit:
        raise LimitExceeded(
            f"You have started {started} rounds in the last minute; the limit is {limit} "
            "(ARENA_PROMPTS_PER_MINUTE). Wait a moment and send your prompt again."
        )


def vote_check(*, user) -> None:
    limit = votes_per_day()
    since = timezone.now() - timedelta(days=1)
    cast = Vote.objects.filter(voter_id=user.pk, created_at__gte=since).count()
    if cast >= limit:
        raise LimitExceeded(
            f"You have cast {cast} votes in the last 24 hours; the limit is {limit} "
            "(ARENA_VOTES_PER_DAY). Your vote was not recorded; try again later."
        )


def rounds_refused(user_ids: list) -> list:
    """For each user id (one per new round, repeats allowed), None or the LimitExceeded that
    refuses that round, counting the rounds before it in the same list: a few queries for all."""
    streaming = streaming_counts(user_ids=set(user_ids))
    started = rounds_last_minute_many(user_ids=set(user_ids))
    results: list = []
    for user_id in user_ids:
        try:
            round_check(user_id=user_id, streaming=streaming[user_id], started=started[user_id])
        except LimitExceeded as exc:
            results.append(exc)
            continue
        streaming[user_id] += 1
        started[user_id] += 1
        results.append(None)
    return results
