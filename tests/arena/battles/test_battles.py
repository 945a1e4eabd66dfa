import random

import pytest
from django.contrib.auth import get_user_model

from arena.battles.services import (
    BattleDraw,
    VoteRejected,
    battle_draw,
    battle_history,
    battle_open_many,
    battle_regenerate,
    battle_reveal,
    battle_round_finish,
    battle_rounds,
    battle_start,
    vote_record,
)
from arena.core.errors import ArenaError
from arena.models import Battle, BattleCategory, Category, Turn
from tests.factories import make_contestant

pytestmark = pytest.mark.django_db


@pytest.fixture
def alice():
    return get_user_model().objects.create_user("alice", password="pw-alice-123")


@pytest.fixture
def pair():
    return [
        make_contestant(name="Falcon Mini", organisation="Acme AI", model_id="falcon-m"),
        make_contestant(name="Otter Large", organisation="Otterworks"),
    ]


def _answer(battle, index, side, text, attempt=0, error=""):
    return Turn.objects.create(
        battle=battle,
        index=index,
        side=side,
        attempt=attempt,
        prompt=f"q{index}",
        text=text,
        error=error,
    )


def test_a_battle_draws_two_distinct_active_contestants(alice, pair):
    make_contestant(name="Retired", active=False)
    coding = Category.objects.create(slug="coding", name="Coding")
    battle = battle_start(user=alice, category_slug="coding", rng=random.Random(1))
    assert {battle.contestant_a, battle.contestant_b} == set(pair)
    assert battle.status == Battle.Status.STREAMING
    assert battle.pair_probability == pytest.approx(1.0)
    link = BattleCategory.objects.get(battle=battle)
    assert link.category == coding and link.assigner == "voter"


def test_a_battle_needs_two_active_models(alice):
    make_contestant(name="Alone")
    with pytest.raises(ArenaError, match="at least two active models"):
        battle_start(user=alice)


def test_an_unknown_category_is_refused(alice, pair):
    with pytest.raises(ArenaError, match="Unknown category"):
        battle_start(user=alice, category_slug="nope")
    assert not Battle.objects.exists()


def test_each_side_keeps_its_own_history(alice, pair):
    battle = battle_start(user=alice)
    _answer(battle, 0, "a", "A0")
    _answer(battle, 0, "b", "B0")
    _answer(battle, 1, "a", "A1")
    _answer(battle, 1, "b", "B1")
    history = battle_history(battle=battle)
    assert [m["content"] for m in history["a"]] == ["q0", "A0", "q1", "A1"]
    assert [m["content"] for m in history["b"]] == ["q0", "B0", "q1", "B1"]
    assert battle_rounds(battle=battle) == 2


def test_a_round_with_a_failed_side_errors_the_battle(alice, pair):
    battle = battle_start(user=alice)
    _answer(battle, 0, "a", "fine")
    _answer(battle, 0, "b", "", error="Model B's endpoint timed out.")
    battle = battle_round_finish(battle_id=battle.pk)
    assert battle.status == Battle.Status.ERRORED
    with pytest.raises(VoteRejected):
        vote_record(battle_id=battle.pk, user=alice, outcome="a")


def test_regenerate_keeps_the_replaced_answers_but_never_votes_on_them(alice, pair):
    battle = battle_start(user=alice)
    _answer(battle, 0, "a", "old A")
    _answer(battle, 0, "b", "old B")
    battle_round_finish(battle_id=battle.pk)
    index, attempt, prompt = battle_regenerate(battle_id=battle.pk, user=alice)
    assert (index, attempt, prompt) == (0, 1, "q0")
    assert Turn.objects.filter(battle=battle, superseded=True).count() == 2
    _answer(battle, 0, "a", "new A", attempt=1)
    _answer(battle, 0, "b", "new B", attempt=1)
    battle_round_finish(battle_id=battle.pk)
    history = battle_history(battle=battle)
    assert history["a"][1]["content"] == "new A"
    assert battle_rounds(battle=battle) == 1


def test_regenerate_is_refused_after_the_vote(alice, pair):
    battle = battle_start(user=alice)
    _answer(battle, 0, "a", "x")
    _answer(battle, 0, "b", "y")
    battle_round_finish(battle_id=battle.pk)
    vote_record(battle_id=battle.pk, user=alice, outcome="tie")
    with pytest.raises(ArenaError, match="only before the vote"):
        battle_regenerate(battle_id=battle.pk, user=alice)


@pytest.mark.parametrize(
    ("text", "leaks"),
    [
        ("I am Falcon Mini, happy to help.", True),
        ("As a model trained by ACME AI, I cannot say.", True),
        ("The falcon-m checkpoint", True),
        ("Otterworks built me.", True),
        ("Falcons are birds; otters swim.", False),
        ("A falcon-mini-ish answer", False),
    ],
)
def test_an_answer_that_names_a_model_voids_the_vote(alice, pair, text, leaks):
    battle = battle_start(user=alice)
    _answer(battle, 0, "a", text)
    _answer(battle, 0, "b", "plain")
    battle_round_finish(battle_id=battle.pk)
    vote = vote_record(battle_id=battle.pk, user=alice, outcome="a")
    assert (vote.void_reason != "") is leaks
    assert vote.counted is not leaks


def test_the_prompt_naming_a_model_does_not_void_the_vote(alice, pair):
    battle = battle_start(user=alice)
    Turn.objects.create(battle=battle, index=0, side="a", prompt="Are you Falcon Mini?", text="No.")
    Turn.objects.create(battle=battle, index=0, side="b", prompt="Are you Falcon Mini?", text="No.")
    battle_round_finish(battle_id=battle.pk)
    assert vote_record(battle_id=battle.pk, user=alice, outcome="b").counted


def test_reveal_gives_names_and_stats_per_side(alice, pair):
    battle = battle_start(user=alice)
    Turn.objects.create(
        battle=battle,
        index=0,
        side="a",
        prompt="q",
        text="x",
        ttft_ms=120,
        total_ms=900,
        tokens_out=12,
        cost="0.00012",
    )
    Turn.objects.create(battle=battle, index=0, side="b", prompt="q", text="y", total_ms=500)
    sides = battle_reveal(battle=battle)
    assert sides["a"]["name"] == battle.contestant_a.name
    assert sides["a"]["stats"]["tokens_out"] == 12
    assert sides["a"]["stats"]["cost"] == "0.00012000"
    assert sides["b"]["stats"]["cost"] is None


def test_recorded_models_are_drawn_only_for_prompts_they_can_replay(alice):
    from arena.models import Answer, PromptItem, PromptSet

    prompt_set = PromptSet.objects.create(name="Demo")
    item = PromptItem.objects.create(prompt_set=prompt_set, text="  Name three rivers.\n")
    replayers = [make_contestant(name=f"Rec {k}", kind="recorded") for k in range(3)]
    for c in replayers[:2]:
        Answer.objects.create(item=item, contestant=c, text="Nile, Amazon, Danube.")
    for _ in range(20):
        battle = battle_start(user=alice, prompt="Name three rivers.")
        assert {battle.contestant_a, battle.contestant_b} == set(replayers[:2])
    with pytest.raises(ArenaError, match="only replay their answers to the suggested prompts"):
        battle_start(user=alice, prompt="Name three lakes.")
    assert Battle.objects.count() == 20  # the refused prompt opened no battle


@pytest.mark.django_db(transaction=True)
def test_battles_stored_together_fall_back_to_one_by_one_when_one_is_bad(alice, pair):
    from arena.battles.matchmaking import Roster

    coding = Category.objects.create(slug="coding", name="Coding")
    roster = Roster.load()
    good = battle_draw(roster=roster, category_slug="coding")
    also_good = battle_draw(roster=roster)
    bad = BattleDraw(pairing=good.pairing, category_id=coding.pk + 1000)
    results = battle_open_many(openings=[(alice, good), (alice, bad), (alice, also_good)])
    assert isinstance(results[0], int) and isinstance(results[2], int)
    assert isinstance(results[1], Exception)
    assert sorted(Battle.objects.values_list("pk", flat=True)) == [results[0], results[2]]
    link = BattleCategory.objects.get()
    assert link.battle_id == results[0] and link.category == coding
    stored = Battle.objects.get(pk=results[2])
    assert stored.pair_probability == also_good.pairing.pair_probability
    assert stored.status == Battle.Status.STREAMING and stored.user == alice
