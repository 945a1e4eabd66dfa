import asyncio
import itertools
import random
from collections import Counter

import pytest
from channels.db import database_sync_to_async

import ratings
from arena.battles import sampling
from arena.battles.matchmaking import (
    Candidate,
    NotEnoughContestants,
    Roster,
    RosterCache,
    pair_draw,
    pair_probability,
    roster_cache,
)
from arena.models import Category, Contestant
from arena.providers import Endpoint
from tests.factories import make_contestant

WEIGHTS = [1.0, 2.0, 0.5, 0.0, 3.0]


def test_pair_probabilities_sum_to_one_over_eligible_pairs():
    eligible = [i for i, w in enumerate(WEIGHTS) if w > 0]
    total = sum(pair_probability(WEIGHTS, i, j) for i, j in itertools.combinations(eligible, 2))
    assert total == pytest.approx(1.0, abs=1e-12)


def test_pair_probability_matches_brute_force_enumeration():
    # Enumerate both ordered draws explicitly.
    total = sum(WEIGHTS)
    for i, j in itertools.combinations(range(len(WEIGHTS)), 2):
        if not WEIGHTS[i] or not WEIGHTS[j]:
            continue
        brute = 0.0
        for first, second in ((i, j), (j, i)):
            rest = total - WEIGHTS[first]
            brute += WEIGHTS[first] / total * WEIGHTS[second] / rest
        assert pair_probability(WEIGHTS, i, j) == pytest.approx(brute, rel=1e-12)


def test_draws_follow_the_weights_and_never_repeat_a_contestant():
    rng = random.Random(7)
    n = 40_000
    pairs, left = Counter(), Counter()
    for _ in range(n):
        draw = pair_draw(WEIGHTS, rng)
        assert draw.a != draw.b
        assert WEIGHTS[draw.a] > 0 and WEIGHTS[draw.b] > 0
        assert draw.pair_probability == pytest.approx(pair_probability(WEIGHTS, draw.a, draw.b))
        pairs[frozenset((draw.a, draw.b))] += 1
        left[draw.a] += 1
    for pair, count in pairs.items():
        expected = pair_probability(WEIGHTS, *sorted(pair)) * n
        # 5 standard deviations of a binomial count
        assert abs(count - expected) < 5 * (expected * (1 - expected / n)) ** 0.5
    # sides are random: each contestant is on the left about half of its appearances
    appearances = Counter()
    for pair, count in pairs.items():
        for i in pair:
            appearances[i] += count
    for i, count in appearances.items():
        assert abs(left[i] / count - 0.5) < 0.03


def test_it_needs_two_positive_weights():
    with pytest.raises(NotEnoughContestants, match="at least two"):
        pair_draw([1.0, 0.0])


# -- the roster kept in memory ---------------------------------------------------------------


def _make(name: str, **fields) -> Contestant:
    return make_contestant(name=name, kind="openai", model_id=name.lower(), **fields)


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("_db_thread_closed")
async def test_the_roster_is_read_once_for_many_callers_and_kept_for_its_ttl(monkeypatch):
    await database_sync_to_async(_make)("Falcon")
    await database_sync_to_async(_make)("Otter")
    reads = []
    load = Roster.load

    def counted():
        reads.append(1)
        return load()

    monkeypatch.setattr(Roster, "load", staticmethod(counted))
    cache = RosterCache(ttl=0.6)
    rosters = await asyncio.gather(*(cache.get() for _ in range(50)))
    assert len(reads) == 1 and all(r is rosters[0] for r in rosters)
    assert [c.endpoint.name for c in rosters[0].candidates] == ["Falcon", "Otter"]

    # An edit that sends no signal (another process, a bulk update) shows after the TTL.
    await database_sync_to_async(Contestant.objects.filter(name="Otter").update)(active=False)
    assert await cache.get() is rosters[0] and len(reads) == 1
    await asyncio.sleep(0.35)  # past half the TTL: served at once, read again behind
    assert await cache.get() is rosters[0]
    await asyncio.sleep(0.1)
    assert len(reads) == 2
    fresh = await cache.get()
    assert [c.endpoint.name for c in fresh.candidates] == ["Falcon"]


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("_db_thread_closed")
async def test_saving_or_deleting_a_contestant_or_category_here_invalidates_the_roster():
    falcon = await database_sync_to_async(_make)("Falcon")
    otter = await database_sync_to_async(_make)("Otter")
    heron = await database_sync_to_async(_make)("Heron")
    roster = await roster_cache.get()
    assert len(roster.candidates) == 3 and roster.categories == {}

    heron.active = False
    await database_sync_to_async(heron.save)()
    roster = await roster_cache.get()
    assert {c.id for c in roster.candidates} == {falcon.pk, otter.pk}
    for _ in range(50):
        pairing = roster.pair()
        assert heron.pk not in (pairing.a.id, pairing.b.id)
        assert pairing.pair_probability == pytest.approx(1.0)

    category = await database_sync_to_async(Category.objects.create)(slug="maths", name="Maths")
    assert (await roster_cache.get()).categories == {"maths": category.pk}
    await database_sync_to_async(falcon.delete)()
    await database_sync_to_async(category.delete)()
    roster = await roster_cache.get()
    assert len(roster.candidates) == 1 and roster.categories == {}


def test_recorded_contestants_are_drawn_only_when_they_can_replay_the_prompt():
    endpoint = Endpoint(name="x", kind="openai")
    roster = Roster(
        candidates=(
            Candidate(1, "recorded", 1.0, endpoint),
            Candidate(2, "recorded", 1.0, endpoint),
            Candidate(3, "recorded", 1.0, endpoint),
        ),
        categories={},
        loaded_at=0.0,
    )
    rng = random.Random(3)
    for _ in range(20):
        pairing = roster.pair(replayers={1, 3}, rng=rng)
        assert {pairing.a.id, pairing.b.id} == {1, 3}
    with pytest.raises(NotEnoughContestants, match="only replay their answers"):
        roster.pair(replayers={2}, rng=rng)


def _roster(policy, active=None, kinds=("live",) * 4, weights=(1.0, 1.0, 1.0, 3.0)):
    endpoint = Endpoint(name="x", kind="openai")
    candidates = tuple(
        Candidate(pk, kind, w, endpoint)
        for pk, kind, w in zip((11, 12, 13, 14), kinds, weights, strict=True)
    )
    return Roster(candidates, {}, 0.0, policy, active)


def test_active_policy_draws_pairs_with_their_stated_exact_probability():
    dist = ratings.PairDistribution(4, [0, 0, 1, 2], [1, 2, 3, 3], [0.5, 0.25, 0.125, 0.125])
    active = sampling.ActivePairs([11, 12, 13, 14], dist)
    roster = _roster("active", active)
    rng = random.Random(5)
    seen = Counter()
    for _ in range(4000):
        pairing = roster.pair(rng=rng)
        key = frozenset((pairing.a.id, pairing.b.id))
        expected = {
            frozenset((11, 12)): 0.5,
            frozenset((11, 13)): 0.25,
            frozenset((12, 14)): 0.125,
            frozenset((13, 14)): 0.125,
        }
        assert pairing.pair_probability == pytest.approx(expected[key])
        seen[key] += 1
    assert seen[frozenset((11, 12))] / 4000 == pytest.approx(0.5, abs=0.03)
    # A recorded model that cannot replay the prompt: the distribution conditioned on the rest.
    roster = _roster("active", active, kinds=("live", "live", "recorded", "live"))
    for _ in range(200):
        pairing = roster.pair(rng=rng)
        key = frozenset((pairing.a.id, pairing.b.id))
        assert key in ({11, 12}, {12, 14})
        p = {frozenset((11, 12)): 0.5 / 0.625, frozenset((12, 14)): 0.125 / 0.625}[key]
        assert pairing.pair_probability == pytest.approx(p)


def test_active_falls_back_to_weighted_and_uniform_ignores_weights():
    dist = ratings.PairDistribution(3, [0, 0, 1], [1, 2, 2], [1, 1, 1])
    stale = sampling.ActivePairs([11, 12, 13], dist)  # 14 activated since
    rng = random.Random(2)
    weights = [1.0, 1.0, 1.0, 3.0]
    for policy, active in (("active", stale), ("active", None), ("weighted", None)):
        pairing = _roster(policy, active).pair(rng=rng)
        i, j = pairing.a.id - 11, pairing.b.id - 11
        assert pairing.pair_probability == pytest.approx(pair_probability(weights, i, j))
    for _ in range(20):
        assert _roster("uniform").pair(rng=rng).pair_probability == pytest.approx(1 / 6)
