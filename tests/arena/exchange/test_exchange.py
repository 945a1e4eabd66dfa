import csv
import io
import json
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.utils import timezone

from arena.exchange import sources
from arena.exchange.service import ImportFailed, battles_export, battles_import
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
    Turn,
    Vote,
)
from tests.factories import make_contestant
from tests.support import ROOT

DATA = ROOT / "tests" / "data" / "exchange"
CROWD = ROOT / "arena" / "demo" / "data" / "crowd-comparisons.csv"


def _export(fmt: str = "arena") -> str:
    out = io.StringIO()
    battles_export(fmt=fmt, out=out)
    return out.getvalue()


def _problems(exc: ImportFailed) -> list[str]:
    return [str(p) for p in exc.problems]


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "export.jsonl"
    path.write_text(text, encoding="utf-8")
    return path


def _empty_database() -> None:
    Battle.objects.all().delete()
    Judge.objects.all().delete()
    PromptSet.objects.all().delete()
    Contestant.objects.all().delete()
    Category.objects.all().delete()
    get_user_model().objects.all().delete()


# ---------------------------------------------------------------- streaming readers


@pytest.mark.parametrize("chunk", [3, 7, 64, 1 << 20])
def test_it_streams_a_json_array_across_chunk_boundaries_with_line_numbers(monkeypatch, chunk):
    monkeypatch.setattr(sources, "CHUNK_CHARS", chunk)
    text = '[\n  {"a": "x\\"y", "n": [1, 2]},\n\n  {"a": "é"}\n  ,{"a": 12345}\n]\n'
    got = list(sources.iter_json_records(io.StringIO(text)))
    assert got == [(2, {"a": 'x"y', "n": [1, 2]}), (4, {"a": "é"}), (5, {"a": 12345})]


@pytest.mark.parametrize("chunk", [5, 1 << 20])
def test_it_names_the_line_of_a_syntax_error_in_a_json_array(monkeypatch, chunk):
    monkeypatch.setattr(sources, "CHUNK_CHARS", chunk)
    text = '[\n{"a": 1},\n{"a": 2,,},\n{"a": 3}\n]'
    records = sources.iter_json_records(io.StringIO(text))
    assert next(records) == (2, {"a": 1})
    with pytest.raises(sources.UnreadableFile) as caught:
        next(records)
    assert caught.value.line == 3 and caught.value.field == "json"


@pytest.mark.parametrize("chunk", [4, 9, 33, 1 << 20])
def test_it_reads_every_record_of_a_long_array_on_its_line(monkeypatch, chunk):
    monkeypatch.setattr(sources, "CHUNK_CHARS", chunk)
    values = [{"i": 0}, 12345, "a,b", [1, {"x": None}], True, -2.5e3, {"s": "}, {"}, None, {}, 7]
    seps = [",\n", " , ", ",\n\n  ", ",", "\n,\n", ",\t", ",\r\n", ",\n ", ",  "]
    text, expected, line = "[\n", [], 2
    for value, sep in zip(values, seps + ["\n"], strict=True):
        expected.append((line, value))
        text += json.dumps(value) + sep
        line += sep.count("\n")
    got = list(sources.iter_json_records(io.StringIO(text + "]")))
    assert got == expected


@pytest.mark.parametrize("chunk", [6, 1 << 20])
def test_it_names_the_line_of_a_syntax_error_after_many_good_records(monkeypatch, chunk):
    monkeypatch.setattr(sources, "CHUNK_CHARS", chunk)
    text = "[\n" + '{"a": 1},\n' * 5 + '{"a": 2} {"a": 3},\n{"a": 4}\n]'
    records = sources.iter_json_records(io.StringIO(text))
    assert [next(records) for _ in range(6)][-1] == (7, {"a": 2})
    with pytest.raises(sources.UnreadableFile) as caught:
        next(records)
    assert caught.value.line == 7 and caught.value.problem == "expected ',' or ']' between records"


def test_it_reads_json_lines_and_reports_a_bad_line_without_stopping(monkeypatch):
    monkeypatch.setattr(sources, "CHUNK_CHARS", 4)
    got = list(sources.iter_json_records(io.StringIO('{"a": 1}\n\n{"a": \n{"a": 3}')))
    assert got[0] == (1, {"a": 1}) and got[2] == (4, {"a": 3})
    assert got[1][0] == 3 and isinstance(got[1][1], sources.InvalidRecord)


# ---------------------------------------------------------------- formats


@pytest.mark.django_db
def test_it_imports_fastchat_clean_battles():
    result = battles_import(path=DATA / "fastchat_clean_battle.json", fmt="fastchat")
    assert (result.battles, result.votes, result.contestants_created) == (4, 4, 3)
    assert result.turns == 6 and result.categories_created == 3
    battles = {b.external_id: b for b in Battle.objects.select_related("vote")}
    first = battles["q-001"]
    assert (first.contestant_a.name, first.contestant_b.name) == ("vicuna-13b", "koala-13b")
    assert (first.mode, first.status) == (Battle.Mode.IMPORTED, Battle.Status.VOTED)
    assert first.vote.outcome == "a" and first.vote.voter is None
    assert first.vote.voter_label == "arena_user_7"
    assert (
        first.created_at == first.vote.created_at == datetime(2023, 11, 14, 22, 13, 20, 500000, UTC)
    )
    assert battles["q-002"].vote.outcome == Vote.Outcome.BOTH_BAD
    assert battles["q-003"].vote.outcome == "b" and battles["q-003"].vote.void_reason
    assert battles["q-004"].vote.outcome == "tie"
    turns = list(first.turns.values_list("index", "side", "prompt", "text"))
    assert turns == [
        (0, "a", "Name a prime number.", "7 is a prime number."),
        (0, "b", "Name a prime number.", "9."),
        (1, "a", "And an even one?", "2."),
        (1, "b", "And an even one?", "There is only 2."),
    ]
    assert battles["q-004"].turns.get(side="b").text == "Grey clouds, falling drops"
    assert sorted(first.categories.values_list("slug", flat=True)) == ["math"]
    assert sorted(battles["q-004"].categories.values_list("slug", flat=True)) == [
        "creative-writing",
        "hard-prompts",
    ]
    assert set(BattleCategory.objects.values_list("assigner", flat=True)) == {"import"}
    for contestant in Contestant.objects.all():
        assert (contestant.kind, contestant.active) == (Contestant.Kind.RECORDED, False)


FASTCHAT_EDGE_CASES = [
    {"model_a": "m1", "model_b": "m2", "winner": "tie"},
    {"model_a": " m1 ", "model_b": "m2", "winner": "model_b", "anony": False},
    {"model_a": "m1", "model_b": " m1", "winner": "tie"},
    {"model_a": "m1", "model_b": "m2", "winner": ["tie"]},
    {"model_a": "m1", "model_b": "m2", "winner": "tie", "anony": 1},
    {"model_a": "m1", "model_b": "m2", "winner": "tie", "judge": None, "question_id": 7},
    {"model_a": "m1", "model_b": "m2", "winner": "tie", "judge": 3.5, "question_id": " q "},
    {"model_a": "m1", "model_b": "m2", "winner": "tie", "judge": True},
    {"model_a": "m1", "model_b": "m2", "winner": "tie", "judge": "x" * 201},
    {"model_a": "m1", "model_b": "m2", "winner": "tie", "question_id": " " + "q" * 200 + " "},
    {"model_a": "m1", "model_b": "m2", "winner": "tie", "tstamp": "1700000000.25"},
    {"model_a": "m1", "model_b": "m2", "winner": "tie", "tstamp": ""},
    {"model_a": "m1", "model_b": "m2", "winner": "tie", "tstamp": True},
    {"model_a": "m1", "model_b": "m2", "winner": "tie", "tstamp": 1700000000},
    {"model_a": "m1", "model_b": "m2", "winner": "tie", "tstamp": float("nan")},
    {"model_a": "m1", "model_b": "m2", "winner": "tie", "tstamp": 1e300},
    {"model_a": "m1", "model_b": "m2", "winner": "tie", "tstamp": "soon"},
    {"model_a": "m1", "model_b": "m2", "winner": "tie", "tstamp": 1.0, "category_tag": []},
    {"model_a": "m1", "model_b": "m2", "winner": "tie", "category_tag": {"math_v0.1": {"math": 1}}},
    {"model_a": "m1", "model_b": "m2", "winner": "tie", "conversation_a": []},
    {
        "model_a": "m1",
        "model_b": "m2",
        "winner": "model_a",
        "judge": "u",
        "tstamp": 1700000000.5,
        "category_tag": {"if_v0.1": {"if": True}},
        "conversation_a": [{"role": "user", "content": "hi"}],
        "conversation_b": [{"role": "user", "content": "hi"}, {"role": "assistant"}],
    },
    ["not", "an", "object"],
]


@pytest.mark.django_db
@pytest.mark.parametrize("record", FASTCHAT_EDGE_CASES)
def test_the_fast_fastchat_reader_gives_what_the_careful_one_gives(record):
    from arena.exchange import formats

    now = timezone.now()
    names = formats.Names(now)
    for name in ("m1", "m2"):
        names.seen[name] = names.contestant(name)
    try:
        expected = [formats.pending_battle(r, names, now) for r in formats.fastchat_rows(record)]
    except sources.InvalidRecord as exc:
        with pytest.raises(sources.InvalidRecord) as caught:
            formats.fastchat_battles(record, names, now)
        assert (caught.value.field, caught.value.problem) == (exc.field, exc.problem)
    else:
        assert formats.fastchat_battles(record, names, now) == expected


@pytest.mark.django_db
def test_it_stores_tabs_newlines_and_backslashes_as_they_are(tmp_path):
    odd = "a\tb\\c\nd\re\x0bf\x0cg\x08h é"
    records = [
        {"model_a": "m1", "model_b": "m2", "winner": "tie", "judge": odd, "question_id": "q\\N"},
        {"model_a": "m1", "model_b": "m2", "winner": "tie", "judge": "plain", "question_id": ""},
    ]
    path = tmp_path / "odd.json"
    path.write_text(json.dumps(records))
    assert battles_import(path=path, fmt="fastchat").battles == 2
    labels = Vote.objects.order_by("battle_id").values_list("voter_label", "battle__external_id")
    assert list(labels) == [(odd, "q\\N"), ("plain", "")]


@pytest.mark.django_db
def test_it_reads_fastchat_as_json_lines_too(tmp_path):
    records = json.loads((DATA / "fastchat_clean_battle.json").read_text())
    path = tmp_path / "battles.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    assert battles_import(path=path, fmt="fastchat").battles == 4


@pytest.mark.django_db
def test_it_reuses_existing_contestants_by_name():
    live = make_contestant(name="vicuna-13b", kind=Contestant.Kind.OPENAI)
    result = battles_import(path=DATA / "fastchat_clean_battle.json", fmt="fastchat")
    assert result.contestants_created == 2
    live.refresh_from_db()
    assert live.active and live.kind == Contestant.Kind.OPENAI


@pytest.mark.django_db
def test_it_imports_open_webui_feedback():
    result = battles_import(path=DATA / "openwebui_feedback.json", fmt="openwebui")
    assert (result.battles, result.passed_over) == (4, 1)
    rows = Battle.objects.order_by("pk").values_list(
        "contestant_a__name", "contestant_b__name", "vote__outcome", "vote__voter_label",
        "external_id",
    )  # fmt: skip
    assert list(rows) == [
        ("llama3.1:8b", "mistral:7b", "a", "user-alice", "fb-1"),
        ("mistral:7b", "qwen2.5:7b", "b", "user-bob", "fb-2"),
        ("qwen2.5:7b", "llama3.1:8b", "a", "user-carol", "fb-4:0"),
        ("qwen2.5:7b", "mistral:7b", "a", "user-carol", "fb-4:1"),
    ]
    assert Vote.objects.get(battle__external_id="fb-1").reason_tags == ["accurate"]
    assert Battle.objects.get(external_id="fb-2").created_at == datetime.fromtimestamp(
        1730000100, UTC
    )


@pytest.mark.django_db
def test_it_imports_an_arena_rank_csv():
    result = battles_import(path=DATA / "arena_rank.csv", fmt="arena-rank")
    assert result.battles == 5
    outcomes = list(Vote.objects.order_by("battle_id").values_list("outcome", flat=True))
    assert outcomes == ["a", "b", "tie", "both_bad", "both_bad"]


@pytest.mark.django_db
def test_it_imports_the_llmfao_crowd_votes():
    result = battles_import(path=CROWD, fmt="llmfao")
    assert (result.battles, result.votes, result.contestants_created) == (8931, 8931, 59)
    assert Vote.objects.values("voter_label").distinct().count() == 124
    with open(CROWD, newline="") as f:
        rows = list(csv.DictReader(f))
    expected = {"left": "a", "right": "b", "tie": "tie"}
    votes = dict(Vote.objects.values_list("battle__external_id", "outcome"))
    for row in rows[::97]:
        assert votes[f"{row['id']}:{row['worker']}"] == expected[row["winner"]]
    battle = Battle.objects.get(external_id=f"{rows[0]['id']}:{rows[0]['worker']}")
    assert (battle.contestant_a.name, battle.contestant_b.name) == (
        rows[0]["left"],
        rows[0]["right"],
    )


# ---------------------------------------------------------------- bad input

INVALID = [
    (
        "fastchat",
        "fastchat_invalid_rows.json",
        [
            "3: model_b: missing",
            "4: winner: unknown winner 'model_c'; expected model_a, model_b, tie or tie (bothbad)",
            "5: model_b: same model on both sides ('koala-13b')",
            "6: model_a: empty model name",
        ],
        2,
    ),
    (
        "openwebui",
        "openwebui_invalid.json",
        [
            "3: data.rating: unknown rating 5; expected 1, -1 or 0",
            "4: data.model_id: missing",
            "5: data.sibling_model_ids: same model on both sides ('mistral:7b')",
            "6: data: missing",
        ],
        1,
    ),
    (
        "arena-rank",
        "arena_rank_invalid.csv",
        [
            "3: model_b: empty model name",
            "4: winner: unknown winner 'left'; expected model_a, model_b, tie or tie (bothbad)",
            "5: model_b: same model on both sides ('gpt-4o')",
        ],
        1,
    ),
    (
        "llmfao",
        "llmfao_invalid.csv",
        [
            "3: winner: unknown winner 'middle'; expected left, right or tie",
            "4: right: same model on both sides ('Alpaca (7B)')",
            "5: left: empty model name",
        ],
        1,
    ),
    (
        "arena",
        "arena_invalid.jsonl",
        [
            "5: json: invalid JSON (Expecting property name enclosed in double quotes, column 58)",
            "6: contestant_b: unknown contestant 'm3'",
            "7: vote.outcome: 'left' is not a valid choice.",
            "8: contestant_b: same model on both sides",
            "9: colour: unknown field",
        ],
        2,
    ),
]


@pytest.mark.django_db
@pytest.mark.parametrize(("fmt", "name", "expected", "good"), INVALID, ids=[i[0] for i in INVALID])
def test_an_invalid_record_fails_the_whole_import_and_names_file_line_and_field(
    fmt, name, expected, good
):
    path = DATA / name
    with pytest.raises(ImportFailed) as caught:
        # batch_size=1: valid battles were already written when the bad ones come.
        battles_import(path=path, fmt=fmt, batch_size=1)
    assert _problems(caught.value) == [f"{path}:{line}" for line in expected]
    assert caught.value.total == len(expected)
    assert not Battle.objects.exists() and not Vote.objects.exists()
    assert not Contestant.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize(("fmt", "name", "expected", "good"), INVALID, ids=[i[0] for i in INVALID])
def test_skip_invalid_imports_the_good_records_and_reports_the_rest(fmt, name, expected, good):
    path = DATA / name
    result = battles_import(path=path, fmt=fmt, skip_invalid=True, batch_size=1)
    assert [str(p) for p in result.problems] == [f"{path}:{line}" for line in expected]
    assert result.battles == Battle.objects.count() == good


@pytest.mark.django_db
def test_a_syntax_error_in_a_json_array_fails_even_with_skip_invalid():
    path = DATA / "fastchat_broken.json"
    with pytest.raises(ImportFailed) as caught:
        battles_import(path=path, fmt="fastchat", skip_invalid=True, batch_size=1)
    assert _problems(caught.value) == [f"{path}:4: json: invalid JSON (Expecting ',' delimiter)"]
    assert not Battle.objects.exists()


@pytest.mark.django_db
def test_a_csv_without_a_required_column_is_refused():
    path = DATA / "arena_rank_no_winner.csv"
    with pytest.raises(ImportFailed) as caught:
        battles_import(path=path, fmt="arena-rank")
    assert _problems(caught.value) == [f"{path}:1: header: missing column winner"]


@pytest.mark.django_db
def test_a_file_that_is_not_an_arena_export_is_refused(tmp_path):
    path = tmp_path / "x.jsonl"
    path.write_text('{"type": "battle"}\n')
    with pytest.raises(ImportFailed, match="not an arena export"):
        battles_import(path=path, fmt="arena")


@pytest.mark.django_db
def test_the_import_command_lists_problems_and_fails_or_skips():
    path = DATA / "fastchat_invalid_rows.json"
    err = io.StringIO()
    with pytest.raises(CommandError, match="Nothing was imported: 4 invalid records"):
        call_command("import_battles", str(path), "--format", "fastchat", stderr=err)
    assert f"{path}:5: model_b: same model on both sides" in err.getvalue()
    assert not Battle.objects.exists()
    out, err = io.StringIO(), io.StringIO()
    call_command(
        "import_battles",
        str(path),
        "--format",
        "fastchat",
        "--skip-invalid",
        stdout=out,
        stderr=err,
    )
    assert "Imported 2 battles" in out.getvalue() and "Skipped 4 invalid records" in out.getvalue()
    assert f"skipped {path}:6: model_a: empty model name" in err.getvalue()


# ---------------------------------------------------------------- export and round trip


@pytest.fixture
def rich_data():
    """Every kind of row and field the arena export has to carry."""
    users = get_user_model().objects
    alice = users.create_user("alice", password="pw-alice-123")
    t0 = datetime(2024, 5, 1, 12, 0, 0, 123456, UTC)
    gpt = make_contestant(
        name="GPT Ünïcode",
        organisation="OpenAI",
        kind=Contestant.Kind.OPENAI,
        base_url="https://api.example.com/v1",
        model_id="gpt-x",
        api_key_env="OPENAI_API_KEY",
        system_prompt="Be brief.",
        temperature=0.7,
        top_p=0.95,
        max_tokens=512,
        price_input_per_mtok=Decimal("2.500000"),
        price_output_per_mtok=Decimal("10.125000"),
        sampling_weight=0.3333333333333333,
        identity_patterns="gpt\nopenai",
    )
    claude = make_contestant(name="Claude", kind=Contestant.Kind.ANTHROPIC)
    old = make_contestant(name="Old", kind=Contestant.Kind.RECORDED, active=False)
    coding = Category.objects.create(slug="coding", name="Coding", description="Code")
    math = Category.objects.create(slug="math", name="Math")
    judge = Judge.objects.create(name="Judge v2", contestant=gpt, template="$a vs $b")
    prompt_set = PromptSet.objects.create(name="Set", description="d")
    item = PromptItem.objects.create(
        prompt_set=prompt_set, external_id="p1", text="2+2?", category=math, reference="4"
    )
    PromptItem.objects.create(prompt_set=prompt_set, text="Unnamed")
    answer_a = Answer.objects.create(item=item, contestant=gpt, text="4", tokens_out=1, total_ms=5)
    answer_b = Answer.objects.create(item=item, contestant=claude, text="")

    live = Battle.objects.create(
        contestant_a=gpt,
        contestant_b=claude,
        status=Battle.Status.VOTED,
        pair_probability=0.125,
        user=alice,
        ready_at=t0,
    )
    for index, side, attempt, superseded in [
        (0, "a", 0, True),
        (0, "a", 1, False),
        (0, "b", 0, False),
        (1, "a", 0, False),
        (1, "b", 0, False),
    ]:
        Turn.objects.create(
            battle=live,
            index=index,
            side=side,
            attempt=attempt,
            superseded=superseded,
            prompt=f"round {index}",
            text=f"answer {side}{index}.{attempt} — ✓",
            ttft_ms=120,
            total_ms=900,
            tokens_in=10,
            tokens_out=20,
            usage_estimated=side == "b",
            finish_reason="stop",
            cost=Decimal("0.00012345"),
        )
    Vote.objects.create(
        battle=live, voter=alice, outcome="b", seconds_to_vote=3.25, reason_tags=["clear"]
    )
    BattleCategory.objects.create(battle=live, category=coding, assigner="voter")
    BattleCategory.objects.create(battle=live, category=math, assigner="classifier")
    for order, verdict in (("ab", "B>A"), ("ba", "")):
        Judgement.objects.create(
            judge=judge,
            battle=live,
            order=order,
            raw_output=f"raw {order}",
            verdict=verdict,
            parse_error="" if verdict else "no verdict",
            latency_ms=800,
            cost=Decimal("0.01000000"),
        )
    pair = dict(contestant_a=gpt, contestant_b=claude, prompt_item=item)
    Battle.objects.create(
        **pair, answer_a=answer_a, answer_b=answer_b, mode="evalset", status="ready"
    )
    voted_pair = Battle.objects.create(
        **pair, answer_a=answer_a, answer_b=answer_b, mode="evalset", status="voted"
    )
    Vote.objects.create(battle=voted_pair, outcome="tie", voter_label="worker-1")
    imported = Battle.objects.create(
        contestant_a=claude, contestant_b=old, mode="imported", status="voted", external_id="x-1"
    )
    Vote.objects.create(battle=imported, outcome="a", void_reason="identity leaked")
    Battle.objects.create(contestant_a=old, contestant_b=gpt, status="errored")
    # Distinct, known times everywhere (auto_now_add set them to now on create).
    for n, battle in enumerate(Battle.objects.order_by("pk")):
        Battle.objects.filter(pk=battle.pk).update(created_at=t0.replace(second=n))
    Vote.objects.update(created_at=t0.replace(minute=5, microsecond=654321))
    return {"alice": alice}


@pytest.mark.django_db
def test_the_arena_export_round_trips_into_an_empty_database(rich_data, tmp_path):
    first = _export()
    lines = first.splitlines()
    assert json.loads(lines[0]) == {"type": "header", "format": "arena-battles", "version": 1}
    assert sum('"type":"battle"' in line for line in lines) == 5
    _empty_database()
    result = battles_import(path=_write(tmp_path, first), fmt="arena")
    assert (result.battles, result.votes, result.turns, result.judgements) == (5, 3, 5, 2)
    assert result.users_created == 1
    assert _export() == first
    alice = get_user_model().objects.get(username="alice")
    assert not alice.has_usable_password()
    assert Vote.objects.get(outcome="b").voter == alice


@pytest.mark.django_db
def test_the_arena_export_import_reuses_rows_that_exist(rich_data, tmp_path):
    first = _export()
    Battle.objects.all().delete()
    result = battles_import(path=_write(tmp_path, first), fmt="arena")
    assert (result.contestants_created, result.categories_created, result.users_created) == (
        0,
        0,
        0,
    )
    assert Answer.objects.count() == 2 and PromptItem.objects.count() == 3  # unnamed item added
    assert Battle.objects.count() == 5


@pytest.mark.django_db
def test_the_fastchat_export_is_clean_battle_json_that_reads_back_the_same(rich_data, tmp_path):
    first = _export("fastchat")
    records = json.loads(first)
    assert [r["winner"] for r in records] == ["model_b", "tie"]  # void and unvoted left out
    live, pair = records
    assert live["conversation_a"] == [
        {"role": "user", "content": "round 0"},
        {"role": "assistant", "content": "answer a0.1 — ✓"},
        {"role": "user", "content": "round 1"},
        {"role": "assistant", "content": "answer a1.0 — ✓"},
    ]
    assert live["turn"] == 2 and live["anony"] is True
    assert live["judge"] == f"arena_user_{rich_data['alice'].pk}"
    assert live["category_tag"] == {"coding_v0.1": {"coding": True}, "math_v0.1": {"math": True}}
    assert pair["conversation_b"] == [
        {"role": "user", "content": "2+2?"},
        {"role": "assistant", "content": ""},
    ]
    assert pair["judge"] == "worker-1"
    path = tmp_path / "clean_battle.json"
    path.write_text(first, encoding="utf-8")
    _empty_database()
    assert battles_import(path=path, fmt="fastchat").battles == 2
    assert _export("fastchat") == first


@pytest.mark.django_db
def test_the_export_command_writes_the_file(rich_data, tmp_path):
    path = tmp_path / "out.jsonl"
    out = io.StringIO()
    call_command("export_battles", "--format", "arena", "--output", str(path), stdout=out)
    assert path.read_text(encoding="utf-8") == _export()
    assert "Exported" in out.getvalue()
    stdout = io.StringIO()
    call_command("export_battles", "--format", "fastchat", stdout=stdout, stderr=io.StringIO())
    assert stdout.getvalue() == _export("fastchat")


@pytest.mark.django_db
def test_imported_times_come_from_the_file_and_default_to_now():
    before = timezone.now()
    battles_import(path=DATA / "arena_rank.csv", fmt="arena-rank")
    assert Battle.objects.filter(created_at__gte=before).count() == 5
    assert Battle.objects.filter(ready_at__isnull=True).count() == 5


def _schema(tables):
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT c.relname, pg_get_indexdef(i.indexrelid) FROM pg_index i
            JOIN pg_class c ON c.oid = i.indexrelid
            WHERE i.indrelid::regclass::text = ANY(%s) ORDER BY 1
            """,
            [tables],
        )
        indexes = cursor.fetchall()
        cursor.execute(
            """
            SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint
            WHERE conrelid::regclass::text = ANY(%s) ORDER BY 1
            """,
            [tables],
        )
        return indexes, cursor.fetchall()


@pytest.mark.django_db
def test_a_first_import_on_postgresql_rebuilds_the_same_indexes_and_foreign_keys():
    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.skip("PostgreSQL only: deferred index building")
    tables = ["arena_battle", "arena_vote"]
    before = _schema(tables)
    assert len(before[0]) >= 10 and len(before[1]) >= 8
    with pytest.raises(ImportFailed):  # fails after writing a batch without indexes
        battles_import(path=DATA / "fastchat_invalid_rows.json", fmt="fastchat", batch_size=1)
    assert _schema(tables) == before and not Battle.objects.exists()
    battles_import(path=DATA / "fastchat_clean_battle.json", fmt="fastchat", batch_size=2)
    assert _schema(tables) == before
    assert Battle.objects.count() == 4
    with pytest.raises(ImportFailed):
        battles_import(path=DATA / "fastchat_invalid_rows.json", fmt="fastchat")
    assert _schema(tables) == before and Battle.objects.count() == 4


@pytest.mark.django_db
def test_an_import_leaves_the_interpreter_switch_interval_as_it_was(monkeypatch):
    import sys

    from arena.exchange import bulk

    before = sys.getswitchinterval()
    battles_import(path=DATA / "fastchat_clean_battle.json", fmt="fastchat", batch_size=1)
    assert sys.getswitchinterval() == before

    def failing(self, rows):
        raise RuntimeError("disk full")

    monkeypatch.setattr(bulk._Table, "db_columns", failing)
    with pytest.raises(RuntimeError, match="disk full"):
        battles_import(path=DATA / "arena_rank.csv", fmt="arena-rank", batch_size=1)
    assert sys.getswitchinterval() == before


@pytest.mark.django_db
def test_a_failure_while_writing_rolls_everything_back(monkeypatch):
    from arena.exchange import bulk

    calls = 0
    original = bulk._Table.db_columns

    def failing(self, rows):
        nonlocal calls
        calls += 1
        if calls > 3:  # after a few rows were written (by the worker thread on PostgreSQL)
            raise RuntimeError("disk full")
        return original(self, rows)

    monkeypatch.setattr(bulk._Table, "db_columns", failing)
    with pytest.raises(RuntimeError, match="disk full"):
        battles_import(path=DATA / "arena_rank.csv", fmt="arena-rank", batch_size=1)
    assert not Battle.objects.exists() and not Contestant.objects.exists()


@pytest.mark.django_db
def test_votes_over_time_put_imported_votes_on_their_own_days(tmp_path):
    from arena.leaderboards.refresh import leaderboard_refresh
    from arena.models import LeaderboardSnapshot

    days = {"2023-05-01": 3, "2023-06-15": 2}
    records = [
        {
            "model_a": f"m{i % 3}",
            "model_b": f"m{(i + 1) % 3}",
            "winner": "model_a" if i % 2 else "tie",
            "tstamp": datetime.fromisoformat(f"{day}T12:00:00+00:00").timestamp() + i,
        }
        for day, n in days.items()
        for i in range(n)
    ]
    path = tmp_path / "dated.json"
    path.write_text(json.dumps(records))
    battles_import(path=path, fmt="fastchat")
    leaderboard_refresh()
    board = LeaderboardSnapshot.objects.get(category=None, style_control=False)
    over_time = board.results["votes_over_time"]
    assert [(p["day"], p["cumulative"]) for p in over_time] == [
        ("2023-05-01", 3),
        ("2023-06-15", 5),
    ]
