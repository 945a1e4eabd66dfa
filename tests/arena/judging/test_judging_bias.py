"""Bias evidence: a local judge endpoint with a first-position bias and a length preference.

Eight simulated models with known strengths answer the same prompts. Answer lengths vary per
answer around a per-model typical length; one weak model, ``Verbose``, writes about four times
as much as the others. The judge (tests/upstream.py, behaviour ``judge``) prefers the answer with
the higher hidden quality, plus ``length`` log-odds per unit of relative length difference, and
30% of the time picks the answer shown first without reading. Every pair of every prompt is
judged in both orders through ``manage.py judge run``, over real HTTP.

Shown: judged in one order the first position wins far more than half the decided verdicts;
both orders combined (inconsistent pairs become ties) bring it back to a half, and position
consistency is well below 1. The raw judge leaderboard ranks the long weak model far too high
and correlates worse with the truth; the length-controlled leaderboard (style control on the
token-count feature) recovers the true order. Everything is seeded: the answers, the sides, and
the fake judge's draws (seeded by the two answers in their order), so the figures are fixed.
"""

import io
import random
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from django.core.management import call_command
from django.db import connection
from django.test import override_settings

import ratings
from arena.judging.runs import judge_pairs_for_set
from arena.judging.stats import JudgeStats, judge_stats
from arena.judging.verdicts import judge_verdicts
from arena.models import Answer, Battle, Contestant, Judge, PromptItem, PromptSet, Run
from ratings.agreement import (
    first_position_preference,
    rank_correlation,
    score_outcomes,
)
from tests.factories import make_contestant
from tests.upstream import FakeUpstream

# name, true strength (log-odds), typical answer length in words
MODELS = [
    ("Atlas", 2.1, 120),
    ("Birch", 1.5, 90),
    ("Cedar", 0.9, 150),
    ("Dune", 0.3, 100),
    ("Ember", -0.3, 130),
    ("Fjord", -0.9, 80),
    ("Verbose", -1.5, 420),
    ("Gale", -2.1, 110),
]
VERBOSE = 6
TRUTH = np.array([strength for _, strength, _ in MODELS])
N_PROMPTS = 6  # x 28 pairs = 168 pairs, 336 judge calls
LENGTH_SPREAD = 0.4  # sd of an answer's log length around its model's typical length
INJECTED_LENGTH = 4.0  # log-odds per unit of (w_first - w_second) / (w_first + w_second + 1)
INJECTED_FIRST = 0.3
JUDGE_MODEL = f"judge:first={INJECTED_FIRST},length={INJECTED_LENGTH},seed=7"
SEED = 20240329

# The mark also makes pytest-django create the test database when this module runs alone.
pytestmark = pytest.mark.django_db


@dataclass(frozen=True)
class Simulation:
    model_a: np.ndarray  # model index of each battle's side A
    model_b: np.ndarray
    ab: np.ndarray  # score of side A shown first; of side B shown first
    ba: np.ndarray
    outcome: np.ndarray  # both orders combined, for side A
    texts_a: list[str]
    texts_b: list[str]
    stats: JudgeStats
    report: str
    calls: int


@pytest.fixture(scope="module")
def simulation(django_db_setup, django_db_blocker) -> Simulation:
    """Judge the simulated eval set once for this module, then remove every row it made."""
    with django_db_blocker.unblock(), FakeUpstream() as upstream:
        name = Path(str(connection.settings_dict["NAME"])).name
        assert name.startswith("test"), f"refusing to write outside a test database: {name}"
        try:
            yield _simulate(upstream)
        finally:
            Battle.objects.filter(prompt_item__prompt_set__name="Simulated").delete()
            Run.objects.filter(kind=Run.Kind.JUDGE, params__judge="Biased").delete()
            Judge.objects.filter(name="Biased").delete()
            PromptSet.objects.filter(name="Simulated").delete()
            names = [name for name, _, _ in MODELS] + ["Biased judge model"]
            Contestant.objects.filter(name__in=names).delete()


def _simulate(upstream) -> Simulation:
    rng = np.random.default_rng(SEED)
    prompt_set = PromptSet.objects.create(name="Simulated")
    contestants = [make_contestant(name=name, kind="recorded") for name, _, _ in MODELS]
    for p in range(N_PROMPTS):
        item = PromptItem.objects.create(prompt_set=prompt_set, text=f"Simulated prompt {p}")
        for contestant, (_, strength, words) in zip(contestants, MODELS, strict=True):
            n = max(5, round(words * np.exp(rng.normal(0, LENGTH_SPREAD))))
            text = f"quality={strength:+.2f} " + " ".join(["lorem"] * n)
            Answer.objects.create(item=item, contestant=contestant, text=text)
    judge_pairs_for_set(prompt_set=prompt_set, rng=random.Random(SEED))  # seeded sides
    judge = Judge.objects.create(
        name="Biased",
        contestant=make_contestant(
            name="Biased judge model", kind="openai", base_url=upstream.url, model_id=JUDGE_MODEL
        ),
    )
    out = io.StringIO()
    with override_settings(ARENA_JUDGE_CONCURRENCY=4):
        call_command("judge", "run", "--judge", "Biased", "--set", "Simulated", stdout=out)

    verdicts = judge_verdicts(judge)
    battles = Battle.objects.select_related("answer_a", "answer_b").in_bulk(
        [int(i) for i in verdicts.battle_ids]
    )
    rows = [battles[int(i)] for i in verdicts.battle_ids]
    index = {c.pk: i for i, c in enumerate(contestants)}
    return Simulation(
        model_a=np.array([index[b.contestant_a_id] for b in rows]),
        model_b=np.array([index[b.contestant_b_id] for b in rows]),
        ab=verdicts.ab,
        ba=verdicts.ba,
        outcome=verdicts.outcome,
        texts_a=[b.answer_a.text for b in rows],
        texts_b=[b.answer_b.text for b in rows],
        stats=judge_stats(judge=judge),
        report=out.getvalue(),
        calls=len(upstream.requests),
    )


def _ratings(board) -> np.ndarray:
    scores = np.empty(len(MODELS))
    scores[board.model] = board.rating
    return scores


def _rank(board, model: int) -> int:
    return int(np.flatnonzero(board.model == model)[0]) + 1


def test_every_pair_is_judged_in_both_orders_without_failures(simulation):
    pairs = N_PROMPTS * len(MODELS) * (len(MODELS) - 1) // 2
    assert simulation.calls == 2 * pairs
    assert simulation.ab.size == pairs and not np.isnan(simulation.ab).any()
    assert not np.isnan(simulation.ba).any()
    assert f"pairs judged: {pairs} of {pairs}, failed: 0" in simulation.report
    assert f"parse failures: 0 of {2 * pairs} judgements" in simulation.report


def test_both_orders_remove_the_first_position_bias_that_one_order_shows(simulation):
    one_order = first_position_preference(score_outcomes(simulation.ab), rng=0).first_share
    combined = first_position_preference(simulation.outcome, rng=0).first_share
    figures = f"one order {one_order}, combined {combined}, {simulation.stats}"
    # In one order the answer shown first wins about 0.5 + 0.3 / 2 of decided verdicts.
    assert one_order.lower > 0.55, figures
    assert simulation.stats.first_position.lower > 0.55, figures  # both orders, pooled
    # Combined, side A (shown first in order ab) is back to an even share...
    assert combined.lower < 0.5 < combined.upper, figures
    # ...because the pairs on which the position decided are now ties.
    assert simulation.stats.consistency.upper < 0.75, figures
    assert "position consistency: " in simulation.report


def test_length_control_recovers_the_true_order_that_the_raw_judge_board_distorts(simulation):
    sim = simulation
    n = len(MODELS)
    raw = ratings.leaderboard(n, sim.model_a, sim.model_b, sim.outcome, ci="none")
    features = ratings.battle_features(
        ratings.answer_features(sim.texts_a),
        ratings.answer_features(sim.texts_b),
        columns=["tokens"],
    )
    controlled = ratings.leaderboard(
        n, sim.model_a, sim.model_b, sim.outcome, ci="sandwich", style=features, rng=0
    )
    raw_rho = rank_correlation(_ratings(raw), TRUTH).spearman
    controlled_rho = rank_correlation(_ratings(controlled), TRUTH).spearman
    # The judge's length coefficient, back on the injected scale: log-odds per unit of relative
    # length difference (attenuated by the verdicts that ignore the content, and by ties).
    per_unit = controlled.style_coef[0] / ratings.SCALE / features.std[0]
    figures = (
        f"raw rho {raw_rho:.3f}, Verbose rank {_rank(raw, VERBOSE)}; controlled rho "
        f"{controlled_rho:.3f}, Verbose rank {_rank(controlled, VERBOSE)}; length coefficient "
        f"{controlled.style_coef[0]:.0f} Elo/sd ({controlled.style_lower[0]:.0f}-"
        f"{controlled.style_upper[0]:.0f}), {per_unit:.2f} log-odds per unit"
    )
    assert raw_rho < 0.85, figures
    assert _rank(raw, VERBOSE) <= 4, figures  # truly 7th of 8
    assert controlled_rho >= 0.9 and controlled_rho > raw_rho + 0.1, figures
    assert _rank(controlled, VERBOSE) >= 6, figures
    assert _rank(controlled, 0) == 1 and _rank(controlled, n - 1) == n, figures
    assert controlled.style_lower[0] > 0, figures  # a real preference for longer answers
    assert 1.0 < per_unit < INJECTED_LENGTH, figures
