"""The online sequential test flags bad voters and leaves honest ones alone (seeded simulation),
and its statistic is the brute-force CUSUM of the log-likelihood ratios."""

import math

import numpy as np
import pytest

import ratings
from tests.ratings.voter_sim import HONEST, ONE_MODEL, RANDOM, detection, fitted, simulate


@pytest.fixture(scope="module")
def arena():
    # 600 voters, ~200 votes each, five refits: the arena of the benchmark, smaller.
    return simulate(n_voters=600, n_votes=120_000, refit_every=10_000, seed=3)


def test_honest_voters_are_left_alone(arena):
    d = detection(arena)
    assert (arena.kind == HONEST).sum() > 500
    assert d["flag_rate_honest"] <= 0.01


def test_one_model_voters_are_flagged(arena):
    assert (arena.kind == ONE_MODEL).sum() >= 10
    assert detection(arena)["flag_rate_one_model"] >= 0.9


def test_random_voters_are_flagged_more_often_than_not(arena):
    assert (arena.kind == RANDOM).sum() >= 25
    assert detection(arena)["flag_rate_random"] >= 0.5


def test_excluding_flagged_votes_removes_most_of_the_target_shift(arena):
    honest = arena.kind[arena.voter] == HONEST
    base = fitted(arena, honest)[arena.target]
    shift_all = fitted(arena, np.ones_like(honest))[arena.target] - base
    shift_kept = fitted(arena, arena.rated)[arena.target] - base
    assert shift_all > 50
    assert abs(shift_kept) < 0.2 * shift_all


def test_the_statistic_is_the_cusum_of_the_log_likelihood_ratios():
    rng = np.random.default_rng(0)
    r = rng.normal(1000, 150, size=6)
    ev = ratings.VoterEvidence()
    s_random, s_fav = 0.0, {}
    for _ in range(300):
        a, b = rng.choice(6, 2, replace=False)
        outcome = int(rng.integers(3))
        ratings.observe_vote(
            ev, model_a=str(a), model_b=str(b), rating_a=r[a], rating_b=r[b], outcome=outcome
        )
        if outcome == ratings.TIE:
            continue
        p = min(max(1 / (1 + 10 ** ((r[b] - r[a]) / 400)), 0.02), 0.98)
        chosen = p if outcome == ratings.A_WINS else 1 - p
        s_random = max(0.0, s_random + math.log(0.5) - math.log(chosen))
        for m, pm, won in ((a, p, outcome == 0), (b, 1 - p, outcome == 1)):
            step = math.log(0.95 / pm) if won else math.log(0.05 / (1 - pm))
            s_fav[str(m)] = max(0.0, s_fav.get(str(m), 0.0) + step)
    assert ev.random == pytest.approx(s_random)
    assert ev.favourite == pytest.approx({k: v for k, v in s_fav.items() if v > 0})
    assert ev.decisive > 150
    assert ratings.VoterEvidence.from_dict(ev.as_dict()) == ev


def test_a_vote_without_ratings_or_a_tie_carries_no_evidence():
    ev = ratings.VoterEvidence()
    ratings.observe_vote(ev, model_a="1", model_b="2", rating_a=None, rating_b=1000, outcome=0)
    ratings.observe_vote(ev, model_a="1", model_b="2", rating_a=900, rating_b=1000, outcome=2)
    assert ev == ratings.VoterEvidence()
