"""The per-vote checks: each returns a reason dict (check, figure, limit) or None.

Thresholds come from settings (ARENA_QUALITY_*); see README "Vote quality".
"""

import re
from datetime import timedelta

from django.conf import settings

from arena.models import Battle, Turn, Vote

_SPACE = re.compile(r"\s+")


def _answers_chars(battle: Battle) -> int:
    """Characters of the two answers the voter saw last (the final round, or the eval-set pair)."""
    if battle.mode == Battle.Mode.EVALSET:
        texts = [a.text for a in (battle.answer_a, battle.answer_b) if a is not None]
        return sum(len(t) for t in texts)
    last = Turn.objects.current().filter(battle=battle).order_by("-index").first()
    if last is None:
        return 0
    texts = Turn.objects.current().filter(battle=battle, index=last.index)
    return sum(len(t) for t in texts.values_list("text", flat=True))


def too_fast(vote: Vote) -> dict | None:
    """Voted sooner after both answers were complete (``Battle.ready_at``) than reading them
    at ARENA_QUALITY_READ_CHARS_PER_SECOND takes, capped at ARENA_QUALITY_MAX_READ_SECONDS."""
    if vote.seconds_to_vote is None:
        return None
    needed = min(
        _answers_chars(vote.battle) / settings.ARENA_QUALITY_READ_CHARS_PER_SECOND,
        settings.ARENA_QUALITY_MAX_READ_SECONDS,
    )
    if vote.seconds_to_vote >= needed:
        return None
    return {
        "check": "too_fast",
        "figure": round(vote.seconds_to_vote, 2),
        "limit": round(needed, 2),
    }


def too_many_today(vote: Vote) -> dict | None:
    """More than ARENA_QUALITY_VOTES_PER_DAY votes by this voter in the 24 hours up to it
    (counted by id, so the answer does not depend on the order reviews run in)."""
    since = vote.created_at - timedelta(days=1)
    n = Vote.objects.filter(voter_id=vote.voter_id, created_at__gt=since, id__lte=vote.id).count()
    limit = settings.ARENA_QUALITY_VOTES_PER_DAY
    return {"check": "votes_per_day", "figure": n, "limit": limit} if n > limit else None


def normalized_prompt(text: str) -> str:
    return _SPACE.sub(" ", text).strip().casefold()


def repeated_prompt(vote: Vote) -> dict | None:
    """A live battle opened with a prompt this voter already voted on
    ARENA_QUALITY_PROMPT_REPEATS times before (case and spacing ignored)."""
    if vote.battle.mode != Battle.Mode.LIVE:
        return None
    first = Turn.objects.filter(battle=vote.battle, index=0).values_list("prompt", flat=True)
    prompt = normalized_prompt(first.first() or "")
    if not prompt:
        return None
    earlier = Turn.objects.filter(
        index=0,
        attempt=0,
        side=Turn.Side.A,
        battle__vote__voter_id=vote.voter_id,
        battle__vote__id__lt=vote.id,
        battle__mode=Battle.Mode.LIVE,
    ).values_list("prompt", flat=True)
    n = sum(1 for p in earlier.iterator() if normalized_prompt(p) == prompt)
    limit = settings.ARENA_QUALITY_PROMPT_REPEATS
    return {"check": "repeated_prompt", "figure": n, "limit": limit} if n >= limit else None


PER_VOTE_CHECKS = (too_fast, too_many_today, repeated_prompt)
