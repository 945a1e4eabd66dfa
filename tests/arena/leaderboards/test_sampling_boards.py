"""Boards under a non-uniform policy: IPW weights from the stored pair probabilities, the active
distribution stored after a refresh, fragility and the policy on the page."""

import numpy as np
import pytest
from django.urls import reverse

import ratings
from arena.battles import sampling
from arena.leaderboards.refresh import leaderboard_refresh
from arena.models import Battle, LeaderboardSnapshot, Vote
from tests.factories import make_contestant

pytestmark = pytest.mark.django_db

STRENGTH = [1.0, 0.4, 0.0, -0.8]


def _votes(probabilities):
    rng = np.random.default_rng(3)
    models = [make_contestant(name=f"M{k}", kind="recorded") for k in range(4)]
    pairs = [(i, j) for i in range(4) for j in range(i + 1, 4)]
    rows = []
    for _ in range(300):
        k = rng.choice(len(pairs), p=probabilities)
        i, j = pairs[k]
        win = rng.random() < 1 / (1 + np.exp(STRENGTH[j] - STRENGTH[i]))
        battle = Battle.objects.create(
            contestant_a=models[i],
            contestant_b=models[j],
            mode=Battle.Mode.IMPORTED,
            status=Battle.Status.VOTED,
            pair_probability=float(probabilities[k]),
        )
        Vote.objects.create(battle=battle, outcome="a" if win else "b")
        rows.append((i, j, 0 if win else 1, probabilities[k]))
    return models, rows


def test_ipw_board_matches_the_engine_and_active_pairs_are_stored(settings, client, alice):
    settings.ARENA_MIN_VOTES = 5
    settings.ARENA_LEADERBOARD_ROUNDS = 50
    settings.ARENA_SAMPLING_POLICY = "active"
    settings.ARENA_LEADERBOARD_WEIGHTING = "ipw"
    probabilities = np.array([0.4, 0.1, 0.1, 0.2, 0.1, 0.1])
    models, rows = _votes(probabilities)
    snapshots = leaderboard_refresh()
    overall = next(s for s in snapshots if s.category is None and not s.style_control)
    assert overall.settings["weighting"] == "ipw" and overall.settings["ci"] == "sandwich"
    assert overall.settings["bias_reduction"] is True
    a, b, o, p = (np.array(c) for c in zip(*rows, strict=True))
    w = 1 / p
    expected = ratings.leaderboard(
        4, a, b, o, weights=w / w.mean(), ci="sandwich", bias_reduction=True
    )
    mle = ratings.leaderboard(4, a, b, o, weights=w / w.mean(), ci="sandwich")
    assert np.ptp(expected.rating) < np.ptp(mle.rating)  # Firth pulls the spread in
    got = {r["model"]: r for r in overall.results["rows"]}
    for m, rating, lower in zip(expected.model, expected.rating, expected.lower, strict=True):
        assert got[f"M{m}"]["rating"] == pytest.approx(rating, abs=0.01)
        assert got[f"M{m}"]["lower"] == pytest.approx(lower, abs=0.01)
    unweighted = ratings.leaderboard(4, a, b, o, ci="none")
    assert not np.allclose(unweighted.rating, expected.rating)  # the weights did something
    fragility = overall.results["fragility"]
    assert fragility["top"]["votes"] >= 1 and fragility["top"]["pair"][0] == "M0"
    active = sampling.load()
    assert active is not None and sorted(active.contestant_ids) == sorted(m.pk for m in models)
    assert active.dist.prob.sum() == pytest.approx(1.0) and active.dist.prob.min() > 0
    client.force_login(alice)
    page = client.get(reverse("leaderboard")).content.decode()
    assert 'id="sampling-policy">active<' in page and "inverse propensity" in page
    assert 'id="bias-reduced">bias-reduced (Firth)<' in page and "resamples" not in page
    styled = [s for s in snapshots if s.style_control]
    assert all("bias_reduction" not in s.settings for s in styled)
    assert f"removing {fragility['top']['votes']} vote" in page
    # Fragility is stored after the boards; until then the board says it is being computed.
    stored = LeaderboardSnapshot.objects.get(pk=overall.pk)
    assert stored.results["fragility"] == fragility
    stored.results["fragility"] = "pending"
    stored.save(update_fields=["results"])
    page = client.get(reverse("leaderboard")).content.decode()
    assert "Fragility: being computed" in page and "removing" not in page
