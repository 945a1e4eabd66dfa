"""The per-vote checks, run on many votes at once (one vote is a list of one).

Each check takes ballots (what it reads of each vote and its battle, in vote id order) and
returns ``{vote id: reason}`` for
the votes that fail it, a reason being ``{"check", "figure", "limit"}``; each reads what it
needs in one or two queries whatever the number of votes. A voter is ``(voter_id,
voter_label)``: the label tells apart the people behind one account's external battles.
Thresholds come from settings (ARENA_QUALITY_*); see README "Vote quality".
"""

import re
from bisect import bisect_right, insort
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db import connection
from django.db.models import Count, F, Q, QuerySet
from django.db.models.expressions import RawSQL
from django.db.models.functions import Coalesce, Length

from arena.battles.counts import of_ids
from arena.models import Battle, Turn, Vote

_SPACE = re.compile(r"\s+")
DAY = timedelta(days=1)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


@dataclass(frozen=True, slots=True)
class Ballot:
    """What the checks and the sequential test read of one vote and its battle."""

    pk: int
    battle_id: int
    voter_id: int
    voter_label: str
    outcome: str
    seconds_to_vote: float | None
    created_at: datetime
    mode: str
    contestant_a_id: int
    contestant_b_id: int
    pair_chars: int  # characters of an eval-set battle's two stored answers


def ballots(votes: QuerySet) -> list[Ballot]:
    """The ballots of ``votes`` in id order, in one query."""
    columns = {
        "battle_id": F("battle_id"),
        "voter_id": F("voter_id"),
        "voter_label": F("voter_label"),
        "outcome": F("outcome"),
        "seconds_to_vote": F("seconds_to_vote"),
        "created_at": F("created_at"),
        "mode": F("battle__mode"),
        "contestant_a_id": F("battle__contestant_a_id"),
        "contestant_b_id": F("battle__contestant_b_id"),
        "pair_chars": Coalesce(Length("battle__answer_a__text"), 0)
        + Coalesce(Length("battle__answer_b__text"), 0),
    }
    rows = votes.order_by("id").values_list("id", *columns.values())
    return [Ballot(*row) for row in rows]


def answers_chars(votes: list[Ballot]) -> dict[int, int]:
    """Battle id -> characters of the two answers the voter saw last (the final round, or the
    eval-set pair)."""
    chars: dict[int, int] = {}
    others = []
    for vote in votes:
        if vote.mode == Battle.Mode.EVALSET:
            chars[vote.battle_id] = vote.pair_chars
        else:
            others.append(vote.battle_id)
    if others:
        last: dict[int, tuple[int, int]] = {}  # battle id -> (index, characters at it)
        rows = of_ids(Turn.objects.current(), "battle_id", others)
        for battle_id, index, n in rows.values_list("battle_id", "index", Length("text")):
            seen = last.get(battle_id)
            if seen is None or index > seen[0]:
                last[battle_id] = (index, n)
            elif index == seen[0]:
                last[battle_id] = (index, seen[1] + n)
        chars.update({battle_id: n for battle_id, (_, n) in last.items()})
    return chars


def too_fast(votes: list[Ballot]) -> dict[int, dict]:
    """Voted sooner after both answers were complete (``Battle.ready_at``) than reading them
    at ARENA_QUALITY_READ_CHARS_PER_SECOND takes, capped at ARENA_QUALITY_MAX_READ_SECONDS.
    Votes without a time to vote (external ones sent without both times) are not checked."""
    timed = [v for v in votes if v.seconds_to_vote is not None]
    chars = answers_chars(timed) if timed else {}
    failed = {}
    for vote in timed:
        needed = min(
            chars.get(vote.battle_id, 0) / settings.ARENA_QUALITY_READ_CHARS_PER_SECOND,
            settings.ARENA_QUALITY_MAX_READ_SECONDS,
        )
        if vote.seconds_to_vote < needed:
            failed[vote.pk] = {
                "check": "too_fast",
                "figure": round(vote.seconds_to_vote, 2),
                "limit": round(needed, 2),
            }
    return failed


def _micros(t: datetime) -> int:
    return (t - _EPOCH) // _MICROSECOND


def _stamps():
    """A vote's ``created_at`` as the query reads it, and the same for a Python time: on
    PostgreSQL integer microseconds (exact), since reading thousands of times through Django's
    time zone-aware loader costs more than the rest of the check."""
    if connection.vendor != "postgresql":
        return F("created_at"), lambda t: t
    column = f"{connection.ops.quote_name(Vote._meta.db_table)}.created_at"
    return RawSQL(f"(EXTRACT(EPOCH FROM {column}) * 1000000)::bigint", []), _micros


def too_many_today(votes: list[Ballot]) -> dict[int, dict]:
    """More than ARENA_QUALITY_VOTES_PER_DAY votes by this voter in the 24 hours up to it
    (counted among votes up to its id, so the answer does not depend on the order reviews
    run in)."""
    limit = settings.ARENA_QUALITY_VOTES_PER_DAY
    wanted = {v.pk: v for v in votes}
    first, last = min(wanted), max(wanted)
    earliest = min(v.created_at for v in votes)
    # Each vote's window is (its time - a day, its time]; the latest opening:
    high = max(v.created_at for v in votes) - DAY
    voters = {(v.voter_id, v.voter_label) for v in votes}
    rows = Vote.objects.filter(
        voter_id__in={v for v, _ in voters},
        voter_label__in={label for _, label in voters},
        created_at__gt=earliest - DAY,
    ).order_by()
    older = rows.filter(id__lt=first)  # before every vote under review
    stamp, of = _stamps()
    # Older votes inside every window are only counted: a busy voter's day is not read row
    # by row at each review. The rest of the older ones are read, with all the later ones.
    settled: dict = {}
    if high < earliest:
        settled = {
            (voter, label): n
            for voter, label, n in older.filter(created_at__gt=high, created_at__lte=earliest)
            .values_list("voter_id", "voter_label")
            .annotate(n=Count("id"))
        }
        older = older.filter(Q(created_at__lte=high) | Q(created_at__gt=earliest))
    before = defaultdict(list)
    for voter, label, created in older.values_list("voter_id", "voter_label", stamp):
        before[voter, label].append(created)
    later = defaultdict(list)  # from the first vote under review on, in id order
    for voter, label, pk, created in rows.filter(id__gte=first, id__lte=last).values_list(
        "voter_id", "voter_label", "id", stamp
    ):
        later[voter, label].append((pk, created))
    failed = {}
    for voter in voters:
        times = sorted(before[voter])
        base = settled.get(voter, 0)
        seen: list = []
        for pk, created in sorted(later[voter]):
            insort(seen, created)
            vote = wanted.get(pk)
            if vote is not None:
                since, until = of(vote.created_at - DAY), of(vote.created_at)
                n = base + bisect_right(times, until) - bisect_right(times, since)
                n += bisect_right(seen, until) - bisect_right(seen, since)
                if n > limit:
                    failed[pk] = {"check": "votes_per_day", "figure": n, "limit": limit}
    return failed


def normalized_prompt(text: str) -> str:
    return _SPACE.sub(" ", text).strip().casefold()


def repeated_prompt(votes: list[Ballot]) -> dict[int, dict]:
    """A live battle opened with a prompt this voter already voted on
    ARENA_QUALITY_PROMPT_REPEATS times before (case and spacing ignored)."""
    live = {v.pk: v for v in votes if v.mode == Battle.Mode.LIVE}
    if not live:
        return {}
    limit = settings.ARENA_QUALITY_PROMPT_REPEATS
    earlier = Turn.objects.filter(
        index=0,
        attempt=0,
        side=Turn.Side.A,
        battle__vote__voter_id__in={v.voter_id for v in live.values()},
        battle__vote__id__lte=max(live),
        battle__mode=Battle.Mode.LIVE,
    ).values_list("battle__vote__voter_id", "battle__vote__id", "prompt")
    by_voter = defaultdict(list)
    for voter, pk, prompt in earlier.iterator():
        by_voter[voter].append((pk, normalized_prompt(prompt)))
    failed = {}
    for seen in by_voter.values():
        seen.sort()
        times: dict[str, int] = defaultdict(int)  # prompt -> votes on it so far
        for pk, prompt in seen:
            if pk in live and prompt:
                n = times[prompt]
                if n >= limit:
                    failed[pk] = {"check": "repeated_prompt", "figure": n, "limit": limit}
            times[prompt] += 1
    return failed


CHECKS = (too_fast, too_many_today, repeated_prompt)
