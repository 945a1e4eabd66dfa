"""The sampling policy's operator pieces: the admin override, per-category distributions, the
exposure cap per provider, and eval-set pairs served by the same policy."""

import random
from collections import Counter

import numpy as np
import pytest
from django.contrib.auth import get_user_model
from django.core.cache import cache

import ratings
from arena.battles import sampling
from arena.battles.matchmaking import Roster
from arena.battles.services import battle_draw
from arena.evalsets.voting import evalset_next_battle
from arena.leaderboards.refresh import leaderboard_refresh
from arena.models import (
    Answer,
    Battle,
    BattleCategory,
    Category,
    PromptItem,
    PromptSet,
    SamplingSettings,
    Vote,
)
from tests.factories import make_contestant

pytestmark = pytest.mark.django_db
User = get_user_model()


@pytest.fixture(autouse=True)
def _empty_cache():
    cache.clear()
    yield
    cache.clear()


def test_the_admin_setting_beats_the_environment(settings, client, bob):
    settings.ARENA_SAMPLING_POLICY = "weighted"
    make_contestant(name="M1")
    make_contestant(name="M2")
    assert sampling.current_policy() == "weighted"  # no row yet
    client.force_login(bob)
    add = client.get("/admin/arena/samplingsettings/add/")
    assert add.status_code == 200
    response = client.post(
        "/admin/arena/samplingsettings/add/",
        {"policy": "uniform", "exposure_cap": "0.3", "cap_per": "model"},
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    assert SamplingSettings.objects.get().pk == 1
    assert sampling.current_policy() == "uniform"
    assert Roster.load().policy == "uniform"
    # One row only: no second "add", no delete; a blank policy gives the environment back.
    assert client.get("/admin/arena/samplingsettings/add/").status_code == 403
    row = SamplingSettings.current()
    row.policy = ""
    row.save()
    assert sampling.current_policy() == "weighted" and Roster.load().policy == "weighted"


def _roster_with(overall, by_category):
    row = SamplingSettings(policy="active")
    row.save()
    sampling.store(overall)
    for category_id, active in by_category.items():
        sampling.store(active, category_id)
    cache.set(f"{sampling.CACHE_KEY}:categories", list(by_category), 60)
    return Roster.load()


def test_a_voter_category_draws_from_its_own_distribution():
    models = [make_contestant(name=f"M{k}") for k in range(3)]
    ids = [m.pk for m in models]
    maths = Category.objects.create(slug="maths", name="Maths")
    other = Category.objects.create(slug="other", name="Other")
    overall = sampling.ActivePairs(
        ids, ratings.PairDistribution(3, [0, 0, 1], [1, 2, 2], [8, 1, 1])
    )
    in_maths = sampling.ActivePairs(
        ids, ratings.PairDistribution(3, [0, 0, 1], [1, 2, 2], [1, 1, 8])
    )
    roster = _roster_with(overall, {maths.pk: in_maths})
    assert roster.policy == "active" and set(roster.by_category) == {maths.pk}
    rng = random.Random(4)
    for slug, expected in (
        ("maths", {(1, 2): 0.8}),
        ("other", {(0, 1): 0.8}),
        (None, {(0, 1): 0.8}),
    ):
        seen = Counter()
        for _ in range(2000):
            draw = battle_draw(roster=roster, category_slug=slug, rng=rng)
            pair = tuple(sorted(ids.index(c.id) for c in (draw.pairing.a, draw.pairing.b)))
            stated = expected.get(pair, 0.1)
            assert draw.pairing.pair_probability == pytest.approx(stated)
            seen[pair] += 1
        ((top, share),) = expected.items()
        assert seen[top] / 2000 == pytest.approx(share, abs=0.04), slug
    assert other.pk not in roster.by_category


def _vote(a, b, outcome, category=None, probability=0.5):
    battle = Battle.objects.create(
        contestant_a=a,
        contestant_b=b,
        mode=Battle.Mode.IMPORTED,
        status=Battle.Status.VOTED,
        pair_probability=probability,
    )
    Vote.objects.create(battle=battle, outcome=outcome)
    if category is not None:
        BattleCategory.objects.create(
            battle=battle, category=category, assigner=BattleCategory.Assigner.VOTER
        )


def test_refresh_stores_a_distribution_per_category_and_caps_providers(settings):
    settings.ARENA_MIN_VOTES = 1
    settings.ARENA_LEADERBOARD_ROUNDS = 20
    SamplingSettings(policy="active", exposure_cap=0.6, cap_per="provider").save()
    acme = [make_contestant(name=f"Acme {k}", organisation="Acme") for k in range(3)]
    others = [make_contestant(name="Solo"), make_contestant(name="Indie", organisation="Indie")]
    models = acme + others
    maths = Category.objects.create(slug="maths", name="Maths")
    rng = np.random.default_rng(0)
    strength = [2.0, 1.9, 1.8, 0.0, -0.5]  # the Acme models lead: the design wants them
    for _ in range(400):
        i, j = sorted(rng.choice(5, 2, replace=False))
        win = rng.random() < 1 / (1 + np.exp(strength[j] - strength[i]))
        _vote(models[i], models[j], "a" if win else "b", maths if rng.random() < 0.5 else None)
    leaderboard_refresh()
    overall, in_maths = sampling.load(), sampling.load(maths.pk)
    assert overall is not None and in_maths is not None
    assert not np.allclose(overall.dist.prob, in_maths.dist.prob)  # scored on its own votes
    groups = sampling.provider_groups(overall.contestant_ids.tolist())
    assert len(set(groups.tolist())) == 3  # Acme, Indie, and Solo on its own
    for active in (overall, in_maths):
        acme_group = groups[list(active.contestant_ids).index(acme[0].pk)]
        assert active.dist.exposure(groups)[acme_group] <= 0.6 + 1e-9
    # Without the provider cap the same design gives Acme more than that.
    uncapped = ratings.active_pairs(
        np.array(strength) * ratings.SCALE, np.full((5, 5), 20.0) - 20 * np.eye(5), cap=None
    )
    assert uncapped.exposure(groups)[groups[0]] > 0.6


@pytest.fixture
def prompt_set():
    contestants = [make_contestant(name=n, kind="recorded") for n in ("Heron", "Marten", "Lynx")]
    prompt_set = PromptSet.objects.create(name="Support replies")
    for i in range(2):
        item = PromptItem.objects.create(prompt_set=prompt_set, external_id=f"p{i}", text=f"P{i}")
        for c in contestants:
            Answer.objects.create(item=item, contestant=c, text=f"{c.pk} says hi to {i}")
    return prompt_set, contestants


def test_evalset_pairs_follow_the_active_policy_with_exact_probabilities(prompt_set):
    prompt_set, contestants = prompt_set
    ids = [c.pk for c in contestants]
    SamplingSettings(policy="active").save()
    prob = [0.7, 0.2, 0.1]  # (0, 1), (0, 2), (1, 2)
    dist = ratings.PairDistribution(3, [0, 0, 1], [1, 2, 2], prob)
    sampling.store(sampling.ActivePairs(ids, dist))
    rng = random.Random(7)
    seen = Counter()
    for k in range(300):  # a fresh voter each time: every pair is left
        voter = User.objects.create(username=f"v{k}")  # no password: hashing is slow
        battle = evalset_next_battle(voter=voter, prompt_set=prompt_set, rng=rng)
        pair = tuple(sorted((ids.index(battle.contestant_a_id), ids.index(battle.contestant_b_id))))
        k_pair = [(0, 1), (0, 2), (1, 2)].index(pair)
        assert battle.pair_probability == pytest.approx(prob[k_pair])
        seen[pair] += 1
    assert seen[(0, 1)] / 300 == pytest.approx(0.7, abs=0.08)
    # A voter who has seen both prompts of (0, 1): the distribution conditioned on the rest.
    voter = User.objects.create(username="seen-all")
    for item in prompt_set.items.all():
        answers = {a.contestant_id: a.pk for a in item.answers.all()}
        Battle.evalset_pair(
            item_id=item.pk, answers=answers, a=ids[0], b=ids[1], user=voter, pair_probability=1
        ).save()
        Battle.objects.filter(user=voter).update(status=Battle.Status.VOTED)
    left = {(0, 2): 2, (1, 2): 2}  # prompts left per pair
    for _ in range(4):
        battle = evalset_next_battle(voter=voter, prompt_set=prompt_set, rng=rng)
        pair = tuple(sorted((ids.index(battle.contestant_a_id), ids.index(battle.contestant_b_id))))
        assert pair in left
        mass = {(0, 2): 0.2, (1, 2): 0.1}
        assert battle.pair_probability == pytest.approx(mass[pair] / sum(mass[p] for p in left))
        left[pair] -= 1
        if not left[pair]:
            del left[pair]
        battle.status = Battle.Status.VOTED
        battle.save()
    # Another policy: the fewest-votes rule again (probability 1 / number of tied pairs).
    SamplingSettings(policy="weighted").save()
    battle = evalset_next_battle(voter=User.objects.create(username="w"), prompt_set=prompt_set)
    assert battle.pair_probability == pytest.approx(1 / 6)  # no votes yet: all 6 tie
