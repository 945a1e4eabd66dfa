import csv
import io
from collections import Counter

import pytest
from django.core.management import call_command
from django.db.models import F

from arena.demo.load import DEMO_DIR, demo_load
from arena.models import (
    Answer,
    Battle,
    BattleCategory,
    Category,
    Contestant,
    Judge,
    Judgement,
    PromptItem,
    PromptSet,
    Vote,
)
from tests.factories import make_contestant

pytestmark = pytest.mark.django_db


def _rows(name: str) -> list[dict]:
    with open(DEMO_DIR / name, encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


def test_it_loads_the_llmfao_files_and_a_second_run_changes_nothing():
    result = demo_load()
    assert result.loaded
    crowd = _rows("crowd-comparisons.csv")

    models = Contestant.objects.exclude(model_id__startswith="verdicts:")
    assert models.count() == result.contestants_created == 59
    assert set(models.values_list("kind", "active", "sampling_weight")) == {("recorded", True, 1.0)}
    # The replay judge's contestant: recorded too, never drawn into a battle.
    assert result.replay_judge == "GPT-4 replay (LLMFAO)"
    assert list(
        Contestant.objects.filter(model_id__startswith="verdicts:").values_list("kind", "active")
    ) == [("recorded", False)]
    assert Contestant.objects.get(name="Claude v2").organisation == "Anthropic"
    prompt_set = PromptSet.objects.get(name="LLMFAO")
    assert prompt_set.items.count() == 13
    assert set(Category.objects.values_list("slug", flat=True)) == {
        "knowledge",
        "reflexion",
        "instruct",
        "creativity",
    }
    assert PromptItem.objects.get(external_id="k8s").category.slug == "reflexion"
    assert Answer.objects.count() == result.answers == 750

    assert Battle.objects.count() == Vote.objects.count() == len(crowd) == 8931
    assert set(Battle.objects.values_list("mode", "status")) == {("evalset", "voted")}
    assert Vote.objects.filter(voter__isnull=True).count() == 8931
    assert Vote.objects.values("voter_label").distinct().count() == result.voters == 124
    assert BattleCategory.objects.filter(assigner="import").count() == 8931
    assert not Battle.objects.exclude(categories=F("prompt_item__category")).exists()

    # Every vote of a sample matches its CSV row, sides included.
    expected = {"left": "a", "right": "b", "tie": "tie"}
    battles = {
        b.external_id: b
        for b in Battle.objects.select_related(
            "vote", "contestant_a", "contestant_b", "answer_a", "answer_b", "prompt_item"
        )
    }
    for row in crowd[::53]:
        battle = battles[f"llmfao:{row['id']}:{row['worker']}"]
        assert battle.vote.outcome == expected[row["winner"]]
        assert battle.vote.voter_label == row["worker"]
        assert (battle.contestant_a.name, battle.contestant_b.name) == (row["left"], row["right"])
        assert battle.answer_a.contestant_id == battle.contestant_a_id
        assert battle.answer_b.contestant_id == battle.contestant_b_id
        assert battle.answer_a.item_id == battle.answer_b.item_id == battle.prompt_item_id
    assert Counter(Vote.objects.values_list("outcome", flat=True)) == Counter(
        expected[r["winner"]] for r in crowd
    )

    verdicts = {"left": "A", "right": "B", "tie": "tie"}
    for name, filename in (
        ("GPT-4 (LLMFAO)", "gpt4-crowd-comparisons.csv"),
        ("GPT-3 (LLMFAO)", "gpt3-crowd-comparisons.csv"),
    ):
        judge = Judge.objects.get(name=name)
        assert judge.verdict_format == "three" and "$result_x" in judge.template
        judged = {
            j.battle.external_id.split(":")[1]: j
            for j in Judgement.objects.filter(judge=judge).select_related("battle")
        }
        assert len(judged) == result.judgements[name] == 2139
        for row in _rows(filename)[::41]:
            judgement = judged[row["id"]]
            assert (judgement.order, judgement.verdict) == ("ab", verdicts[row["winner"]])
    # The rule: judgements hang on the first human battle of their pair, which has a vote.
    assert not Judgement.objects.filter(battle__vote__isnull=True).exists()
    first = {}
    for row in crowd:
        first.setdefault(row["id"], f"llmfao:{row['id']}:{row['worker']}")
    assert set(Judgement.objects.values_list("battle__external_id", flat=True)) == set(
        first.values()
    )

    again = demo_load()
    assert not again.loaded and "nothing changed" in again.summary()
    assert Battle.objects.count() == 8931 and Contestant.objects.count() == 59 + 1
    assert Judgement.objects.count() == 2 * 2139


def test_the_command_prints_counts_then_says_it_is_already_loaded():
    make_contestant(name="Claude v2", kind=Contestant.Kind.ANTHROPIC)
    out = io.StringIO()
    call_command("load_demo", stdout=out)
    text = out.getvalue()
    assert "58 contestants (1 existing reused)" in text
    assert "8931 battles with 8931 votes by 124 voters" in text
    assert "2139 judgements by GPT-4 (LLMFAO), 2139 judgements by GPT-3 (LLMFAO)" in text
    assert "CC BY 4.0" in text
    assert Contestant.objects.get(name="Claude v2").kind == Contestant.Kind.ANTHROPIC
    out = io.StringIO()
    call_command("load_demo", stdout=out)
    assert "already loaded" in out.getvalue() and "nothing changed" in out.getvalue()
