"""A recorded judge (model_id verdicts:<judge>) answers a judge prompt with the verdict the
source judge stored on the pair it shows, through a real judge run."""

import pytest

from arena.judging.prompts import DEFAULT_TEMPLATE, judge_prompt
from arena.judging.runs import judge_run_create, judge_run_execute
from arena.models import Answer, Battle, Contestant, Judge, Judgement, PromptItem, PromptSet
from arena.providers.recorded_verdicts import NoRecordedVerdict, recorded_verdict_for
from tests.factories import make_contestant

pytestmark = pytest.mark.django_db


@pytest.fixture
def data(settings):
    settings.ARENA_RECORDED_CHUNK_DELAY_MS = 0
    x, y, z = (make_contestant(name=n, kind=Contestant.Kind.RECORDED) for n in "XYZ")
    item = PromptItem.objects.create(
        prompt_set=PromptSet.objects.create(name="S"), text="Name a colour."
    )
    answers = {
        c.pk: Answer.objects.create(item=item, contestant=c, text=text)
        for c, text in ((x, "Blue, like the sky."), (y, "Blue"), (z, "\n"))
    }

    def battle(a, b):
        return Battle.objects.create(
            contestant_a=a,
            contestant_b=b,
            mode=Battle.Mode.EVALSET,
            prompt_item=item,
            answer_a=answers[a.pk],
            answer_b=answers[b.pk],
        )

    source = Judge.objects.create(name="Source", verdict_format="five")
    xy, zx = battle(x, y), battle(z, x)
    Judgement.objects.create(judge=source, battle=xy, order="ab", verdict="A>B")
    Judgement.objects.create(
        judge=source, battle=zx, order="ba", verdict="A>>B", raw_output="X wins.\nVerdict: [[A>>B]]"
    )
    replayer = make_contestant(
        name="Replayer", kind=Contestant.Kind.RECORDED, model_id="verdicts:Source", active=False
    )
    judge = Judge.objects.create(
        name="Replay", contestant=replayer, template=DEFAULT_TEMPLATE, verdict_format="five"
    )
    return {"item": item, "xy": xy, "zx": zx, "x": x, "y": y, "z": z, "judge": judge}


def _prompt(first, second, template=""):
    return judge_prompt(prompt="Name a colour.", first=first, second=second, template=template).text


def _run(judge, battles):
    run = judge_run_create(judge=judge, battle_ids=[b.pk for b in battles], source="t")
    judge_run_execute(run=run)
    run.refresh_from_db()
    rows = Judgement.objects.filter(judge=judge).order_by("battle_id", "order")
    return run, {(r.battle_id, r.order): (r.verdict, r.raw_output, r.parse_error) for r in rows}


def test_a_run_replays_the_stored_verdicts_in_both_orders(data):
    run, stored = _run(data["judge"], [data["xy"], data["zx"]])
    assert (run.status, run.done, run.failed) == ("done", 2, 0)
    xy, zx = data["xy"].pk, data["zx"].pk
    # X-Y judged AB as A>B: the same order replays it, the other mirrors it.
    assert stored[xy, "ab"][0] == "A>B" and stored[xy, "ba"][0] == "B>A"
    # Z-X judged BA (X first) as A>>B with its output: BA replays that output word for word;
    # AB (the blank answer first) mirrors it.
    assert stored[zx, "ba"][:2] == ("A>>B", "X wins.\nVerdict: [[A>>B]]")
    assert stored[zx, "ab"][0] == "B>>A"


def test_without_the_template_it_finds_the_answers_in_the_prompt(data):
    prompt = _prompt("Blue", "Blue, like the sky.")  # "Blue" also occurs inside X's answer
    assert recorded_verdict_for(source="Source", prompt=prompt).label == "B>A"
    prompt = _prompt("Blue, like the sky.", "Blue")
    found = recorded_verdict_for(source="Source", prompt=prompt)
    assert (found.label, found.battle_id) == ("A>B", data["xy"].pk)
    assert found.output.endswith("Verdict: [[A>B]]")


def test_a_template_of_its_own_reads_its_prompts_exactly(data):
    template = "Q: $prompt\nFirst: $answer_a\nSecond: $answer_b\n$verdict_help ($nonce)"
    prompt = _prompt("\n", "Blue, like the sky.", template)
    found = recorded_verdict_for(source="Source", prompt=prompt, templates=[template])
    assert found.label == "B>>A"


def test_a_pair_the_source_never_judged_fails_and_is_not_made_up(data):
    run, stored = _run(data["judge"], [_battle_yz(data)])
    assert (run.status, run.failed) == ("failed", 1)
    assert {v[2] for v in stored.values()} == {
        "upstream error: has no verdict of Source recorded for this pair"
    }
    with pytest.raises(NoRecordedVerdict, match="which does not exist"):
        recorded_verdict_for(source="Nobody", prompt=_prompt("Blue", "\n"))


def _battle_yz(data):
    answers = {a.contestant_id: a for a in Answer.objects.filter(item=data["item"])}
    return Battle.objects.create(
        contestant_a=data["y"],
        contestant_b=data["z"],
        mode=Battle.Mode.EVALSET,
        prompt_item=data["item"],
        answer_a=answers[data["y"].pk],
        answer_b=answers[data["z"].pk],
    )
