"""`manage.py evalset import` and `evalset list`: prompt sets from JSONL and CSV files."""

import io
import json
import shutil
import sys

import pytest
from django.core.management import CommandError, call_command

from arena.models import Answer, Category, PromptItem, PromptSet
from tests.factories import make_contestant
from tests.support import ROOT

pytestmark = pytest.mark.django_db

DATA = ROOT / "tests" / "data" / "evalsets"


class TTY(io.StringIO):
    def isatty(self) -> bool:
        return True


def run_import(path, name="Support", *args, stderr=None):
    out, err = io.StringIO(), stderr or io.StringIO()
    call_command("evalset", "import", str(path), "--name", name, *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def items(name="Support") -> dict[str, PromptItem]:
    found = PromptItem.objects.filter(prompt_set__name=name).select_related("category")
    return {item.external_id or item.text: item for item in found}


@pytest.fixture
def categories():
    return {
        "writing": Category.objects.create(slug="writing", name="Writing"),
        "coding": Category.objects.create(slug="coding", name="Coding"),
    }


def test_it_imports_a_jsonl_file_matching_categories_by_slug_or_name(categories):
    out, err = run_import(DATA / "support.jsonl")
    assert "Created eval set 'Support': 4 new prompts, 0 updated, 0 unchanged" in out
    assert "1 new categories" in out
    assert "Ignored fields: source" in err
    by_id = items()
    assert set(by_id) == {
        "refund-40d",
        "sql-top",
        "3",
        "Summarise the following ticket in one sentence: the printer on floor 2 jams on A3 paper.",
    }
    refund = by_id["refund-40d"]
    assert refund.category == categories["writing"]  # by slug
    assert refund.reference.startswith("Politely decline")
    assert refund.notes == "tone: warm"
    assert by_id["sql-top"].category == categories["coding"]  # by name
    assert by_id["3"].category.slug == "math"  # created
    assert by_id["3"].category.name == "Math"
    assert by_id["3"].reference == "391"


def test_it_imports_a_csv_file_with_a_bom_and_multi_line_cells(categories):
    out, err = run_import(DATA / "support.csv", "Support CSV")
    assert "3 new prompts" in out
    assert "Ignored fields: owner" in err
    by_id = items("Support CSV")
    assert by_id["csv-1"].text == 'Translate "good morning" into French.'
    assert by_id["csv-2"].text == "Fix this Python:\ndef add(a, b):\n    return a - b"
    assert by_id["csv-2"].reference.endswith("return a + b")
    assert by_id["csv-2"].category == categories["coding"]
    no_id = by_id["What is the capital of Australia?"]
    assert (no_id.reference, no_id.notes, no_id.category) == ("Canberra", "no id", None)


def test_importing_the_same_file_again_changes_nothing(categories):
    run_import(DATA / "support.jsonl")
    before = {key: (item.pk, item.category_id) for key, item in items().items()}
    out, _ = run_import(DATA / "support.jsonl")
    assert "Updated eval set 'Support': 0 new prompts, 0 updated, 4 unchanged." in out
    assert {key: (item.pk, item.category_id) for key, item in items().items()} == before
    assert Category.objects.count() == 3


def test_a_reimport_updates_prompts_by_their_id(categories, tmp_path):
    run_import(DATA / "support.jsonl")
    sql = items()["sql-top"]
    Answer.objects.create(item=sql, contestant=make_contestant(name="M"), text="x")
    changed = tmp_path / "support.jsonl"
    rows = [
        {"id": "sql-top", "text": sql.text, "category": "writing", "reference": "SELECT ..."},
        {"id": "new-one", "text": "A brand new prompt."},
    ]
    changed.write_text("".join(json.dumps(row) + "\n" for row in rows))
    out, _ = run_import(changed)
    assert "1 new prompts, 1 updated, 0 unchanged" in out
    sql.refresh_from_db()
    assert (sql.category_id, sql.reference) == (categories["writing"].pk, "SELECT ...")
    assert sql.answers.count() == 1  # the same row: its answers stay
    assert len(items()) == 5  # prompts missing from the file are kept


def test_changing_the_text_of_a_prompt_that_has_answers_is_refused(categories, tmp_path):
    run_import(DATA / "support.jsonl")
    Answer.objects.create(item=items()["3"], contestant=make_contestant(name="M"), text="391")
    changed = tmp_path / "edited.jsonl"
    changed.write_text('{"id": "ok"}\n{"id": 3, "text": "What is 17 * 24?"}\n')
    err = io.StringIO()
    with pytest.raises(CommandError, match="Nothing was imported: 2 invalid rows"):
        run_import(changed, stderr=err)
    lines = err.getvalue().splitlines()
    assert lines[0] == f"{changed}:1: text: missing"
    assert lines[1].startswith(f"{changed}:2: text: differs from stored prompt '3'")
    assert "already has 1 answers; give the changed prompt a new id" in lines[1]
    assert items()["3"].text == "What is 17 * 23?"


def test_malformed_jsonl_rows_are_all_reported_by_line_and_field_and_nothing_is_imported():
    err = io.StringIO()
    with pytest.raises(CommandError, match="Nothing was imported: 7 invalid rows"):
        run_import(DATA / "invalid.jsonl", stderr=err)
    file = DATA / "invalid.jsonl"
    assert err.getvalue().splitlines() == [
        f"{file}:2: text: missing",
        f"{file}:3: json: invalid JSON (Unterminated string starting at, column 26)",
        f"{file}:4: text: expected text, got int",
        f"{file}:5: record: expected an object, got list",
        f"{file}:6: id: repeats the id of line 1",
        f"{file}:7: category: cannot make a slug of '???'",
        f"{file}:8: id: expected text or a whole number, got bool",
    ]
    # All or nothing: not even the valid first row, nor its set or category.
    assert not PromptSet.objects.exists()
    assert not Category.objects.exists()


def test_malformed_csv_rows_name_the_line_each_record_starts_on():
    err = io.StringIO()
    with pytest.raises(CommandError, match="3 invalid rows"):
        run_import(DATA / "invalid.csv", stderr=err)
    file = DATA / "invalid.csv"
    assert err.getvalue().splitlines() == [
        f"{file}:3: text: empty",
        f"{file}:4: row: has more cells than the header has columns",
        f"{file}:5: id: repeats the id of line 2",
    ]
    assert not PromptItem.objects.exists()


def test_a_csv_without_a_text_column_is_refused_at_the_header(tmp_path):
    path = tmp_path / "prompts.csv"
    path.write_text("prompt,category\nHello,writing\n")
    err = io.StringIO()
    with pytest.raises(CommandError, match="Nothing was imported"):
        run_import(path, stderr=err)
    assert (
        err.getvalue().strip() == f"{path}:1: header: no 'text' column (columns: prompt, category)"
    )


def test_the_format_comes_from_the_suffix_or_from_the_option(tmp_path):
    path = tmp_path / "prompts.txt"
    shutil.copy(DATA / "support.csv", path)
    with pytest.raises(CommandError, match="pass --format jsonl|csv"):
        run_import(path)
    out, _ = run_import(path, "Support", "--format", "csv")
    assert "3 new prompts" in out


def test_an_empty_file_or_a_missing_one_is_an_error(tmp_path):
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n")
    err = io.StringIO()
    with pytest.raises(CommandError, match="Nothing was imported"):
        run_import(empty, stderr=err)
    assert err.getvalue().strip() == f"{empty}:1: file: has no prompts"
    with pytest.raises(CommandError, match="no such file"):
        run_import(tmp_path / "absent.jsonl")


def test_the_import_shows_a_progress_bar_on_a_terminal(monkeypatch):
    terminal = TTY()  # the exchange's reader draws on the process's stderr
    monkeypatch.setattr(sys, "stderr", terminal)
    run_import(DATA / "support.jsonl")
    assert "support.jsonl" in terminal.getvalue()
    assert f"/{(DATA / 'support.jsonl').stat().st_size}" in terminal.getvalue()  # bytes


def test_list_shows_each_set_with_the_answers_missing_per_model(categories):
    run_import(DATA / "support.jsonl")
    heron = make_contestant(name="Heron Seven")
    make_contestant(name="Marten Pro")
    make_contestant(name="Retired", active=False)
    for item in list(items().values())[:3]:
        Answer.objects.create(item=item, contestant=heron, text="answer")
    PromptSet.objects.create(name="Empty set")
    out = io.StringIO()
    call_command("evalset", "list", stdout=out)
    assert out.getvalue().splitlines() == [
        "Empty set: 0 prompts, 0 answers",
        "  model        answers  missing",
        "  Heron Seven  0        0",
        "  Marten Pro   0        0",
        "Support: 4 prompts, 3 answers",
        "  model        answers  missing",
        "  Heron Seven  3        1",
        "  Marten Pro   0        4",
    ]
