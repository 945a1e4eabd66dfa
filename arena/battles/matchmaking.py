"""Choosing who battles: a weighted draw of two distinct contestants and random sides.

The probability of the unordered pair is stored on the battle so that ratings can re-weight
votes by 1 / P(pair) when some pairs are drawn far more often than others.

Live battles draw from the ``Roster`` of active contestants and categories that each process
keeps in memory (``roster_cache``): starting a battle then needs no database read before both
upstream requests go out.
"""

import asyncio
import random
import threading
import time
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field

from channels.db import database_sync_to_async
from django.db import transaction
from django.db.models.signals import post_delete, post_migrate, post_save

from arena.battles import sampling
from arena.models import Category, Contestant
from arena.providers import Endpoint


class NotEnoughContestants(Exception):
    pass


@dataclass(frozen=True)
class Draw:
    a: int  # index into the candidates, shown on the left
    b: int  # shown on the right
    pair_probability: float


def pair_probability(weights: Sequence[float], i: int, j: int) -> float:
    """P({i, j}) when drawing two without replacement, each draw proportional to weight."""
    total = float(sum(weights))
    wi, wj = weights[i], weights[j]
    return wi / total * wj / (total - wi) + wj / total * wi / (total - wj)


def pair_draw(weights: Sequence[float], rng: random.Random | None = None) -> Draw:
    """Draw two distinct candidates by weight, then put them on random sides.

    Raises NotEnoughContestants when fewer than two candidates have a positive weight.
    """
    rng = rng or random.SystemRandom()
    eligible = [i for i, w in enumerate(weights) if w > 0]
    if len(eligible) < 2:
        raise NotEnoughContestants(
            "The arena needs at least two active models with a positive sampling weight."
        )
    first = rng.choices(eligible, weights=[weights[i] for i in eligible])[0]
    rest = [i for i in eligible if i != first]
    second = rng.choices(rest, weights=[weights[i] for i in rest])[0]
    a, b = (first, second) if rng.random() < 0.5 else (second, first)
    return Draw(a=a, b=b, pair_probability=pair_probability(weights, first, second))


# -- the roster: who can be drawn, kept in memory -------------------------------------------

ROSTER_TTL = 5.0  # seconds a roster is used before it is read again (other processes' edits)


@dataclass(frozen=True)
class Candidate:
    """An active contestant as a live battle needs it: no database access to use it."""

    id: int
    kind: str
    sampling_weight: float
    endpoint: Endpoint


@dataclass(frozen=True)
class Pairing:
    a: Candidate
    b: Candidate
    pair_probability: float


@dataclass(frozen=True)
class Roster:
    """Active contestants (by pk) and category ids by slug, as read at ``loaded_at``."""

    candidates: tuple[Candidate, ...]
    categories: dict[str, int]
    loaded_at: float  # time.monotonic() when the read began
    policy: str = "weighted"
    active: sampling.ActivePairs | None = None  # overall
    by_category: dict[int, sampling.ActivePairs] = field(default_factory=dict)

    @classmethod
    def load(cls) -> "Roster":
        """Read it from the database now (three queries)."""
        started = time.monotonic()
        contestants = Contestant.objects.filter(active=True).order_by("pk")
        candidates = tuple(
            Candidate(
                id=c.pk,
                kind=str(c.kind),
                sampling_weight=c.sampling_weight,
                endpoint=Endpoint.from_contestant(c),
            )
            for c in contestants
        )
        categories = dict(Category.objects.values_list("slug", "pk"))
        policy = sampling.current_policy()
        active = sampling.load_all() if policy == "active" else {}
        overall = active.pop(None, None)
        return cls(candidates, categories, started, policy, overall, active)

    @property
    def recorded_ids(self) -> list[int]:
        """Recorded (demo) contestants: they can only replay stored answers."""
        return [c.id for c in self.candidates if c.kind == Contestant.Kind.RECORDED]

    def pair(
        self,
        replayers: Collection[int] = (),
        rng: random.Random | None = None,
        category_id: int | None = None,
    ) -> Pairing:
        """Draw a battle's pair; recorded contestants take part only when in ``replayers``
        (those with a stored answer to the prompt), so a demo battle is never drawn that is
        bound to fail. The active policy draws from the voter's category's distribution when
        there is one. Raises NotEnoughContestants with a message for the user."""
        candidates = [
            c for c in self.candidates if c.kind != Contestant.Kind.RECORDED or c.id in replayers
        ]
        if len(candidates) < 2 and any(c.kind == Contestant.Kind.RECORDED for c in self.candidates):
            raise NotEnoughContestants(
                "No two models here can answer this prompt: the recorded (demo) models only "
                "replay their answers to the suggested prompts, word for word."
            )
        active = self.by_category.get(category_id) if category_id else None
        active = active or self.active
        if self.policy == "active" and active is not None:
            rng = rng or random.SystemRandom()
            ids = [c.id for c in candidates if c.sampling_weight > 0]  # 0: switched off
            drawn = active.draw(ids, rng.random())
            if drawn is not None:
                by_id = {c.id: c for c in candidates}
                x, y, p = drawn
                if rng.random() < 0.5:
                    x, y = y, x
                return Pairing(by_id[x], by_id[y], p)
        if self.policy == "uniform":
            draw = pair_draw([float(c.sampling_weight > 0) for c in candidates], rng)
        else:  # weighted, and the fallback of active (see arena.battles.sampling)
            draw = pair_draw([c.sampling_weight for c in candidates], rng)
        return Pairing(candidates[draw.a], candidates[draw.b], draw.pair_probability)


class RosterCache:
    """The roster of this process, read again after ``ttl`` seconds or when a contestant or
    category is saved or deleted here (other processes' edits show after ``ttl`` at most).

    ``await get()`` touches no database while the roster is fresh. Once it is half its age,
    one read starts in the background and the current roster is served meanwhile; past
    ``ttl`` (or after an invalidation) callers wait, all of them for that one read.
    """

    def __init__(self, ttl: float = ROSTER_TTL):
        self.ttl = ttl
        self._roster: Roster | None = None
        self._generation = 0  # bumped by every invalidation
        self._lock = threading.Lock()
        self._reading: tuple[asyncio.AbstractEventLoop, int, asyncio.Task] | None = None

    def invalidate(self) -> None:
        with self._lock:
            self._generation += 1
            self._roster = None

    async def get(self, max_age: float | None = None) -> Roster:
        """The roster, at most ``max_age`` (default: ``ttl``) seconds old."""
        max_age = self.ttl if max_age is None else min(max_age, self.ttl)
        roster = self._roster
        if roster is not None:
            age = time.monotonic() - roster.loaded_at
            if age < max_age:
                if age >= self.ttl / 2:
                    self._read()  # ahead of time; this caller does not wait for it
                return roster
        return await asyncio.shield(self._read())

    def _read(self) -> asyncio.Task:
        loop = asyncio.get_running_loop()
        generation = self._generation
        reading = self._reading
        if reading is not None:
            read_loop, read_generation, task = reading
            if read_loop is loop and read_generation == generation and not task.done():
                return task
        task = loop.create_task(self._load(generation))
        self._reading = (loop, generation, task)
        return task

    async def _load(self, generation: int) -> Roster:
        roster = await database_sync_to_async(Roster.load)()
        with self._lock:
            if generation == self._generation:  # not invalidated while it was read
                self._roster = roster
        return roster


roster_cache = RosterCache()


def _invalidate_roster(**kwargs) -> None:
    roster_cache.invalidate()
    # A save inside a transaction is seen by other connections only once it commits; a read
    # in between would cache the old rows, so invalidate again then.
    transaction.on_commit(roster_cache.invalidate, using=kwargs.get("using"))


for _model in (Contestant, Category):
    post_save.connect(_invalidate_roster, sender=_model, dispatch_uid=f"roster-{_model.__name__}")
    post_delete.connect(
        _invalidate_roster, sender=_model, dispatch_uid=f"roster-del-{_model.__name__}"
    )
# Migrations and flushes (tests) change rows without saving models one by one.
post_migrate.connect(lambda **kw: roster_cache.invalidate(), weak=False, dispatch_uid="roster-mig")
