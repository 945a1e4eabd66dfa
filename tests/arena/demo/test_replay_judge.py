"""The offline demo's judge: GPT-4's LLMFAO verdicts replayed through a real judge run started
on /judge/, both orders, stored like any judge's."""

import csv
import json
from collections import defaultdict

import pytest

from arena.demo.load import DEMO_DIR, REPLAY_JUDGE, demo_load
from arena.judging.prompts import DEFAULT_TEMPLATE
from arena.judging.runs import judge_pairs_voted_in_set
from arena.models import Battle, Contestant, Judge, Judgement, PromptSet, Run

pytestmark = pytest.mark.django_db

VERDICTS = {"left": "A", "right": "B", "tie": "tie"}
MIRROR = {"A": "B", "B": "A", "tie": "tie"}
PAIRS = 300  # pairs judged in the run (of 2,139)


@pytest.fixture
def demo(settings):
    settings.ARENA_RECORDED_CHUNK_DELAY_MS = 0
    demo_load()
    return PromptSet.objects.get(name="LLMFAO")


def test_the_demo_brings_one_replay_judge_and_loading_again_keeps_it(demo):
    judge = Judge.objects.select_related("contestant").get(name=REPLAY_JUDGE)
    contestant = judge.contestant
    assert (contestant.kind, contestant.model_id, contestant.active) == (
        "recorded",
        "verdicts:GPT-4 (LLMFAO)",
        False,
    )
    assert judge.verdict_format == "three" and judge.template == DEFAULT_TEMPLATE
    assert not Judgement.objects.filter(judge=judge).exists()
    again = demo_load()
    assert not again.loaded and "nothing changed" in again.summary()
    assert Judge.objects.filter(name=REPLAY_JUDGE).count() == 1

    # An install loaded before the replay judge existed gets it on the next load.
    judge.delete()
    contestant.delete()
    added = demo_load()
    assert added.replay_judge == REPLAY_JUDGE and "Added the judge" in added.summary()
    assert Contestant.objects.filter(model_id="verdicts:GPT-4 (LLMFAO)").count() == 1


def test_a_newcomer_runs_the_replay_judge_from_the_judge_page_and_gets_llmfaos_verdicts(
    client, bob, demo, django_capture_on_commit_callbacks
):
    client.force_login(bob)
    page = client.get("/judge/").content.decode()
    assert 'id="no-callable-judge"' not in page
    assert 'id="replay-judges"' in page
    assert "Eval set: LLMFAO, the 2,139 pairs people voted on" in page
    judge = Judge.objects.get(name=REPLAY_JUDGE)

    with django_capture_on_commit_callbacks(execute=True):  # the task, run eagerly
        response = client.post(
            "/judge/", {"judge": judge.pk, "source": f"voted-set:{demo.pk}", "limit": PAIRS}
        )
    run = Run.objects.get(kind=Run.Kind.JUDGE)
    assert response.status_code == 302 and response["Location"] == f"/judge/runs/{run.pk}/"
    # A pair fails, and only then, when the prompt cannot say which it is: other models gave
    # the same texts word for word (a bare newline, say) and GPT-4 judged those pairs apart.
    ambiguous = _ambiguous_pairs()
    pairs = {
        battle_id: external_id.split(":")[1]
        for battle_id, external_id in Battle.objects.filter(
            pk__in=judge_pairs_voted_in_set(prompt_set=demo)[:PAIRS]
        ).values_list("id", "external_id")
    }
    failing = {b for b, pair in pairs.items() if pair in ambiguous}
    assert 0 < len(failing) < PAIRS // 10
    status = client.get(f"/judge/runs/{run.pk}.json").json()
    assert (status["status"], status["total"], status["done"], status["failed"]) == (
        "done",
        PAIRS,
        PAIRS - len(failing),
        len(failing),
    )
    assert status["stats"]["parse_failures"] == 0
    assert status["stats"]["consistency"]["value"] == 1.0  # one order judged, mirrored
    run_page = client.get(f"/judge/runs/{run.pk}/").content.decode()
    assert 'class="run-progress"' in run_page and 'data-status="done"' in run_page

    # Both orders stored for each pair, on the very battles GPT-4's verdicts hang on: AB is
    # GPT-4's verdict as the study showed it, BA its mirror.
    gpt4 = {row["id"]: VERDICTS[row["winner"]] for row in _rows("gpt4-crowd-comparisons.csv")}
    stored = Judgement.objects.filter(judge=judge)
    assert set(stored.values_list("battle_id", flat=True)) == set(pairs)
    assert stored.count() == 2 * PAIRS
    for judgement in stored:
        pair = pairs[judgement.battle_id]
        if judgement.battle_id in failing:
            assert judgement.verdict == ""
            assert judgement.parse_error.startswith("upstream error: cannot replay one verdict")
            continue
        expected = gpt4[pair] if judgement.order == "ab" else MIRROR[gpt4[pair]]
        assert (judgement.verdict, judgement.parse_error) == (expected, ""), judgement.order
        assert judgement.raw_output.endswith(f"Verdict: [[{expected}]]")
    gpt4_battles = Judgement.objects.filter(judge__name="GPT-4 (LLMFAO)")
    assert set(pairs) <= set(gpt4_battles.values_list("battle_id", flat=True))


def _rows(name):
    with open(DEMO_DIR / name, encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


def _ambiguous_pairs() -> set[str]:
    """Pair ids of GPT-4's verdicts that another pair of the same prompt showing the same two
    texts contradicts, straight from the files."""
    with open(DEMO_DIR / "results.jsonl", encoding="utf-8") as f:
        results = [json.loads(line) for line in f if line.strip()]
    text = {(r["model"], r["prompt"]): r["result"] for r in results}
    seen = defaultdict(set)
    keys = {}
    for row in _rows("gpt4-crowd-comparisons.csv"):
        x = text[int(row["model_x"]), int(row["prompt"])]
        y = text[int(row["model_y"]), int(row["prompt"])]
        label = VERDICTS[row["winner"]]
        if x > y:  # one orientation per pair of texts
            x, y, label = y, x, MIRROR[label]
        keys[row["id"]] = (row["prompt"], x, y)
        seen[keys[row["id"]]].add(label)
    return {pair for pair, key in keys.items() if len(seen[key]) > 1}
