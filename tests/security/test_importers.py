"""Hostile and mistaken files for both importers (`import_battles`, `evalset import`).

Every file is made here in tmp_path. Each must end in a clear problem naming file, line and
field (or "not UTF-8: ..."), never a traceback; nothing is stored unless the whole file is
valid, and with --skip-invalid the bad record is skipped and named while the rest is stored.
Run on SQLite and again on PostgreSQL (`make test`'s second pass), where a NUL character would
break COPY and INSERT.
"""

import io
import json

import pytest
from django.core.management import CommandError, call_command

from arena.exchange.sources import CSV_FIELD_LIMIT, MAX_DEPTH
from arena.models import Battle, PromptItem, PromptSet, Vote

pytestmark = pytest.mark.django_db

GOOD = {"model_a": "Heron", "model_b": "Marten", "winner": "model_a", "tstamp": 1700000000}


def _jsonl(*records: str) -> bytes:
    return b"".join(r.encode("utf-8") + b"\n" for r in records)


def _good(**fields) -> str:
    return json.dumps({**GOOD, **fields})


def _battles(path, fmt="fastchat", *args) -> tuple[str, str]:
    """Run import_battles; (stdout, stderr). CommandError propagates."""
    out, err = io.StringIO(), io.StringIO()
    try:
        call_command(
            "import_battles",
            str(path),
            "--format",
            fmt,
            "--no-progress",
            *args,
            stdout=out,
            stderr=err,
        )
    except CommandError as exc:
        raise CommandError(f"{exc}\n{err.getvalue()}") from None
    return out.getvalue(), err.getvalue()


def _evalset(path, *args) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    try:
        call_command(
            "evalset",
            "import",
            str(path),
            "--name",
            "Hostile",
            "--no-progress",
            *args,
            stdout=out,
            stderr=err,
        )
    except CommandError as exc:
        raise CommandError(f"{exc}\n{err.getvalue()}") from None
    return out.getvalue(), err.getvalue()


# One bad record between two good ones: (file name, bytes, format, line, field, words).
BAD_BATTLE_FILES = [
    (
        "latin1.jsonl",
        _jsonl(_good())
        + json.dumps({**GOOD, "judge": "José"}, ensure_ascii=False).encode("latin-1")
        + b"\n"
        + _jsonl(_good()),
        "fastchat",
        2,
        "judge",
        "not UTF-8: byte 0xe9",
    ),
    (
        "nul-escape.jsonl",
        _jsonl(_good(), _good(judge="a\u0000b"), _good()),
        "fastchat",
        2,
        "judge",
        "NUL character",
    ),
    (
        "nul-in-turn.json",
        (
            "[\n"
            + _good()
            + ",\n"
            + _good(conversation_a=[{"role": "user", "content": "hi\u0000"}])
            + ",\n"
            + _good()
            + "\n]\n"
        ).encode(),
        "fastchat",
        3,
        "conversation_a[0].content",
        "NUL character",
    ),
    (
        "nul-byte.jsonl",
        _jsonl(_good())
        + b'{"model_a": "He\x00ron", "model_b": "M", "winner": "tie"}\n'
        + _jsonl(_good()),
        "fastchat",
        2,
        "json",
        "NUL byte",
    ),
    (
        "surrogate.jsonl",
        _jsonl(_good(), '{"model_a": "A\\ud800", "model_b": "B", "winner": "tie"}', _good()),
        "fastchat",
        2,
        "model_a",
        "lone surrogate (\\ud800)",
    ),
    (
        "surrogate.json",
        (
            "["
            + _good()
            + ',\n{"model_a": "A", "model_b": "B\\udc00", "winner": "tie"},\n'
            + _good()
            + "]"
        ).encode(),
        "fastchat",
        2,
        "model_b",
        "lone surrogate",
    ),
    (
        "deep.jsonl",
        _jsonl(_good(), "[" * 50_000 + "]" * 50_000, _good()),
        "fastchat",
        2,
        "json",
        f"nested deeper than {MAX_DEPTH} levels",
    ),
    (
        "deep.json",
        (
            "[" + _good() + ",\n" + "[" * 50_000 + '"]["' + "]" * 50_000 + ",\n" + _good() + "]"
        ).encode(),
        "fastchat",
        2,
        "json",
        f"nested deeper than {MAX_DEPTH} levels",
    ),
    (
        "deep-field.json",
        (
            "["
            + _good()
            + ",\n"
            + _good(category_tag={"x": json.loads("[" * 500 + "]" * 500)})
            + ",\n"
            + _good()
            + "]"
        ).encode(),
        "fastchat",
        2,
        "category_tag.x",
        f"nested deeper than {MAX_DEPTH} levels",
    ),
    (
        "nul.csv",
        b"model_a,model_b,winner\nHeron,Marten,model_a\nHe\x00ron,Marten,tie\nHeron,Marten,tie\n",
        "arena-rank",
        3,
        "model_a",
        "NUL character",
    ),
    (
        "latin1.csv",
        "model_a,model_b,winner\nHeron,Marten,model_a\nJosé,Marten,tie\nHeron,Marten,tie\n".encode(
            "latin-1"
        ),
        "arena-rank",
        3,
        "model_a",
        "not UTF-8: byte 0xe9",
    ),
    (
        "long-field.csv",
        b"model_a,model_b,winner\nHeron,Marten,model_a\nHeron,Marten,"
        + b"x" * 200_000
        + b"\nHeron,Marten,tie\n",
        "arena-rank",
        3,
        "winner",
        "unknown winner",
    ),
]


@pytest.mark.parametrize(
    ("name", "data", "fmt", "line", "field", "words"),
    BAD_BATTLE_FILES,
    ids=[case[0] for case in BAD_BATTLE_FILES],
)
def test_a_bad_record_is_named_and_nothing_is_imported(
    tmp_path, name, data, fmt, line, field, words
):
    path = tmp_path / name
    path.write_bytes(data)
    with pytest.raises(CommandError) as caught:
        _battles(path, fmt)
    message = str(caught.value)
    assert f"{path}:{line}: {field}" in message
    assert words in message
    assert "Traceback" not in message
    assert "Nothing was imported: 1 invalid record" in message
    assert not Battle.objects.exists()


@pytest.mark.parametrize(
    ("name", "data", "fmt", "line", "field", "words"),
    BAD_BATTLE_FILES,
    ids=[case[0] for case in BAD_BATTLE_FILES],
)
def test_skip_invalid_skips_and_names_the_bad_record(tmp_path, name, data, fmt, line, field, words):
    path = tmp_path / name
    path.write_bytes(data)
    out, err = _battles(path, fmt, "--skip-invalid")
    assert f"skipped {path}:{line}: {field}" in err
    assert words in err
    assert "Imported 2 battles, 2 votes" in out
    assert Battle.objects.count() == 2
    assert Vote.objects.count() == 2
    stored = Battle.objects.values_list("contestant_a__name", "contestant_b__name")
    assert set(stored) == {("Heron", "Marten")}


@pytest.mark.parametrize(
    ("name", "data", "fmt"),
    [
        ("utf16.json", json.dumps([GOOD]).encode("utf-16"), "fastchat"),
        ("utf16-le.jsonl", _good().encode("utf-16-le") + "\n".encode("utf-16-le"), "fastchat"),
        ("utf16.csv", "model_a,model_b,winner\nA,B,tie\n".encode("utf-16"), "arena-rank"),
        ("utf32.jsonl", (_good() + "\n").encode("utf-32"), "fastchat"),
    ],
)
def test_a_utf16_file_is_refused_as_not_utf8_at_line_1(tmp_path, name, data, fmt):
    path = tmp_path / name
    path.write_bytes(data)
    for args in ((), ("--skip-invalid",)):
        with pytest.raises(CommandError) as caught:
            _battles(path, fmt, *args)
        message = str(caught.value)
        assert f"{path}:1: file: not UTF-8:" in message
        assert "UTF-16" in message
        assert "Traceback" not in message
    assert not Battle.objects.exists()


def test_a_csv_field_past_the_reader_limit_is_named_and_the_rest_read(tmp_path):
    path = tmp_path / "huge.csv"
    huge = b'"' + b"x" * (CSV_FIELD_LIMIT + 10) + b'"'
    path.write_bytes(
        b"model_a,model_b,winner\nHeron,Marten,model_a\n" + huge + b",B,tie\nHeron,Marten,tie\n"
    )
    with pytest.raises(CommandError, match=r"huge\.csv:3: row: unreadable CSV \(field larger"):
        _battles(path, "arena-rank")
    assert not Battle.objects.exists()
    out, err = _battles(path, "arena-rank", "--skip-invalid")
    assert "huge.csv:3: row: unreadable CSV" in err
    assert Battle.objects.count() == 2


def test_a_long_value_is_shortened_in_the_problem(tmp_path):
    path = tmp_path / "long.jsonl"
    path.write_bytes(_jsonl(_good(winner="w" * 100_000)))
    with pytest.raises(CommandError) as caught:
        _battles(path)
    assert "... (100,0" in str(caught.value)
    assert len(str(caught.value)) < 2000


# ---------------------------------------------------------------- the eval-set importer


BAD_PROMPT_FILES = [
    (
        "latin1.jsonl",
        _jsonl('{"text": "one"}')
        + '{"text": "café"}'.encode("latin-1")
        + b"\n"
        + _jsonl('{"text": "three"}'),
        2,
        "text",
        "not UTF-8: byte 0xe9",
    ),
    (
        "nul.jsonl",
        _jsonl('{"text": "one"}', '{"text": "two", "notes": "a\\u0000"}', '{"text": "three"}'),
        2,
        "notes",
        "NUL character",
    ),
    (
        "surrogate.jsonl",
        _jsonl('{"text": "one"}', '{"text": "two\\udfff"}', '{"text": "three"}'),
        2,
        "text",
        "lone surrogate",
    ),
    (
        "deep.jsonl",
        _jsonl('{"text": "one"}', '{"text": ' + "[" * 30_000 + "]" * 30_000 + "}"),
        2,
        "json",
        "nested deeper",
    ),
    (
        "nul.csv",
        b"id,text\n1,one\n2,tw\x00o\n3,three\n",
        3,
        "text",
        "NUL character",
    ),
    ("utf16.csv", "id,text\n1,one\n".encode("utf-16"), 1, "file", "not UTF-8"),
]


@pytest.mark.parametrize(
    ("name", "data", "line", "field", "words"),
    BAD_PROMPT_FILES,
    ids=[case[0] for case in BAD_PROMPT_FILES],
)
def test_the_evalset_importer_names_the_bad_row_and_imports_nothing(
    tmp_path, name, data, line, field, words
):
    path = tmp_path / name
    path.write_bytes(data)
    with pytest.raises(CommandError) as caught:
        _evalset(path)
    message = str(caught.value)
    assert f"{path}:{line}: {field}" in message
    assert words in message
    assert "Traceback" not in message
    assert not PromptItem.objects.exists()
    assert not PromptSet.objects.filter(name="Hostile").exists()


def test_a_prompt_longer_than_the_csv_modules_default_limit_is_imported(tmp_path):
    path = tmp_path / "long.csv"
    long_prompt = "Summarise this: " + "word " * 40_000  # 200 KB, past csv's 128 KiB default
    path.write_text(f'id,text\n1,"{long_prompt}"\n2,short\n', encoding="utf-8")
    out, _ = _evalset(path)
    assert "2 new prompts" in out
    assert PromptItem.objects.get(external_id="1").text == long_prompt.strip()
