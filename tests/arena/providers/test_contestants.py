"""models.toml parsing and `manage.py models sync|check` (check against the real fake upstream)."""

from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from arena.management.commands.models import CHECK_MAX_TOKENS
from arena.models import Answer, Contestant, PromptItem, PromptSet
from arena.providers import client as providers_module
from arena.providers.contestants import ModelsFileError, parse_models_toml
from tests.factories import make_contestant
from tests.support import ROOT
from tests.upstream import upstream_fixture  # noqa: F401

EXAMPLE = ROOT / "tests" / "data" / "models.example.toml"

GOOD = """
[[model]]
name = "Alpha"
base_url = "http://127.0.0.1:9/v1"
model_id = "alpha"
temperature = 0.5

[[model]]
name = "Beta"
kind = "anthropic"
base_url = "https://api.example.com/v1/"
model_id = "beta-1"
api_key_env = "BETA_API_KEY"
price_input_per_mtok = "0.80"
price_output_per_mtok = 4
identity_patterns = ["Beta", "Example Corp"]
"""


def errors_of(text: str) -> list[str]:
    with pytest.raises(ModelsFileError) as caught:
        parse_models_toml(text)
    return caught.value.errors


def entry(**fields) -> str:
    base = {"name": '"gpt-x"', "base_url": '"http://h/v1"', "model_id": '"x"'}
    base.update(fields)
    return "[[model]]\n" + "\n".join(f"{k} = {v}" for k, v in base.items() if v is not None)


def run(*args) -> str:
    out = StringIO()
    call_command("models", *args, stdout=out)
    return out.getvalue()


# -- parsing ---------------------------------------------------------------------------------


def test_the_example_file_is_valid():
    specs = parse_models_toml(EXAMPLE.read_text())
    assert [s.kind for s in specs] == ["openai", "openai", "anthropic", "recorded"]
    assert specs[2].price_input_per_mtok == Decimal("0.80")
    assert specs[1].identity_patterns == ("GPT", "ChatGPT", "OpenAI")


def test_it_parses_every_field_with_defaults_for_the_missing_ones():
    alpha, beta = parse_models_toml(GOOD)
    assert alpha.kind == "openai" and alpha.active is True and alpha.sampling_weight == 1.0
    assert alpha.temperature == 0.5 and alpha.top_p is None and alpha.api_key_env == ""
    assert beta.base_url == "https://api.example.com/v1"
    assert beta.price_output_per_mtok == Decimal(4)
    assert beta.field_values()["identity_patterns"] == "Beta\nExample Corp"


def test_an_error_names_the_file_the_entry_and_the_field():
    text = GOOD + entry(name='"gpt-x"', temperature="2.5")
    assert errors_of(text) == [
        'models.toml: model #3 ("gpt-x"): temperature must be a number between 0 and 2'
    ]


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"colour": '"red"'}, 'unknown field "colour"'),
        ({"name": '""'}, "name is required"),
        ({"kind": '"carrier"'}, "kind must be one of openai, anthropic, recorded"),
        ({"base_url": None}, 'base_url is required for kind "openai"'),
        ({"base_url": '"localhost:8000"'}, "base_url must be an http:// or https:// URL"),
        ({"base_url": '"https://u:p@h/v1"'}, "base_url must not carry credentials"),
        ({"model_id": None}, 'model_id is required for kind "openai"'),
        ({"top_p": "1.5"}, "top_p must be a number between 0 and 1"),
        ({"temperature": '"hot"'}, "temperature must be a number between 0 and 2"),
        ({"temperature": "true"}, "temperature must be a number between 0 and 2"),
        ({"max_tokens": "0"}, "max_tokens must be a whole number of at least 1"),
        ({"max_tokens": "10.5"}, "max_tokens must be a whole number of at least 1"),
        ({"price_input_per_mtok": "-1"}, "price_input_per_mtok must be a non-negative number"),
        ({"price_output_per_mtok": '"0.0000001"'}, "must have at most 6 decimal places"),
        ({"sampling_weight": "-0.5"}, "sampling_weight must be a number of at least 0"),
        ({"active": '"yes"'}, "active must be true or false"),
        ({"identity_patterns": '"GPT"'}, "identity_patterns must be a list"),
        ({"identity_patterns": '["GPT", ""]'}, "identity_patterns must be a list"),
        ({"kind": '"recorded"', "model_id": None}, 'base_url is not used by kind "recorded"'),
    ],
)
def test_it_rejects_an_invalid_field(fields, message):
    (error,) = errors_of(entry(**fields))
    assert error.startswith('models.toml: model #1 ("')
    assert message in error


@pytest.mark.parametrize("value", ["sk-proj-abc123DEF456", "openai_api_key", "MY KEY", "1ABC"])
def test_it_rejects_a_key_in_api_key_env_without_printing_it(value):
    (error,) = errors_of(entry(api_key_env=f'"{value}"'))
    assert error == (
        'models.toml: model #1 ("gpt-x"): api_key_env must be the NAME of an environment '
        "variable (e.g. OPENAI_API_KEY), not a key"
    )
    assert value not in error


def test_it_reports_every_problem_at_once():
    text = "\n".join(
        [
            entry(name='"one"', temperature="9"),
            entry(name='"two"', colour='"red"', top_p="-1"),
            entry(name='"one"'),
            "[[model]]\nkind = 'openai'",
        ]
    )
    assert errors_of(text) == [
        'models.toml: model #1 ("one"): temperature must be a number between 0 and 2',
        'models.toml: model #2 ("two"): unknown field "colour"',
        'models.toml: model #2 ("two"): top_p must be a number between 0 and 1',
        'models.toml: model #3 ("one"): name "one" is already used by model #1',
        "models.toml: model #4: name is required",
        'models.toml: model #4: base_url is required for kind "openai"',
        'models.toml: model #4: model_id is required for kind "openai"',
    ]


def test_it_rejects_bad_toml_unknown_top_level_keys_and_an_empty_file():
    (error,) = errors_of("[[model]\nname = 'x'")
    assert error.startswith("models.toml: not valid TOML: ")
    assert errors_of("title = 'mine'") == [
        'models.toml: unknown top-level key "title" (expected [[model]] entries)',
        "models.toml: no [[model]] entries",
    ]
    assert errors_of("[model]\nname = 'x'") == [
        "models.toml: model must be written as [[model]] tables"
    ]


# -- manage.py models sync -------------------------------------------------------------------


@pytest.mark.django_db
def test_sync_creates_then_leaves_unchanged_then_updates(tmp_path):
    path = tmp_path / "models.toml"
    path.write_text(GOOD)
    out = run("sync", str(path))
    assert f"{path}: 2 created, 0 updated, 0 unchanged" in out
    beta = Contestant.objects.get(name="Beta")
    assert beta.kind == "anthropic" and beta.api_key_env == "BETA_API_KEY"
    assert beta.price_input_per_mtok == Decimal("0.8")
    assert beta.identity_patterns == "Beta\nExample Corp"

    assert f"{path}: 0 created, 0 updated, 2 unchanged" in run("sync", str(path))

    path.write_text(GOOD.replace("temperature = 0.5", "temperature = 0.9"))
    out = run("sync", str(path))
    assert "updated     Alpha" in out
    assert f"{path}: 0 created, 1 updated, 1 unchanged" in out
    assert Contestant.objects.get(name="Alpha").temperature == 0.9


@pytest.mark.django_db
def test_sync_makes_the_row_match_the_entry_and_removed_fields_go_back_to_defaults(tmp_path):
    path = tmp_path / "models.toml"
    path.write_text(GOOD)
    run("sync", str(path))
    path.write_text(GOOD.replace("temperature = 0.5\n", ""))
    run("sync", str(path))
    assert Contestant.objects.get(name="Alpha").temperature is None


@pytest.mark.django_db
def test_sync_of_an_invalid_file_changes_nothing_and_names_the_problems(tmp_path):
    make_contestant(name="Alpha", kind="recorded")
    path = tmp_path / "models.toml"
    path.write_text(GOOD + entry(name='"Gamma"', temperature="3"))
    with pytest.raises(CommandError) as caught:
        run("sync", str(path))
    assert str(caught.value) == (
        f'{path}: model #3 ("Gamma"): temperature must be a number between 0 and 2'
    )
    assert list(Contestant.objects.values_list("name", "kind")) == [("Alpha", "recorded")]


@pytest.mark.django_db
def test_sync_of_a_missing_file_says_so(tmp_path):
    with pytest.raises(CommandError, match="no such file"):
        run("sync", str(tmp_path / "absent.toml"))


@pytest.mark.django_db
def test_sync_can_deactivate_contestants_missing_from_the_file(tmp_path):
    make_contestant(name="Old", kind="recorded")
    make_contestant(name="Retired", kind="recorded", active=False)
    path = tmp_path / "models.toml"
    path.write_text(GOOD)
    run("sync", str(path))
    assert Contestant.objects.get(name="Old").active is True
    out = run("sync", str(path), "--deactivate-missing")
    assert "deactivated Old" in out
    assert f"{path}: 0 created, 0 updated, 2 unchanged, 1 deactivated" in out
    assert set(Contestant.objects.filter(active=True).values_list("name", flat=True)) == {
        "Alpha",
        "Beta",
    }


@pytest.mark.django_db
def test_sync_loads_the_example_file():
    assert "4 created" in run("sync", str(EXAMPLE))


# -- manage.py models check ------------------------------------------------------------------


@pytest.mark.django_db
def test_check_prints_a_table_and_fails_when_an_endpoint_fails(upstream, monkeypatch):
    monkeypatch.setattr(providers_module, "RETRY_BACKOFF", 0.01)
    for name, model_id in [("Good", "normal"), ("Broken", "error"), ("Silent", "hang")]:
        make_contestant(name=name, base_url=upstream.url, model_id=model_id)
    make_contestant(name="Off", base_url=upstream.url, model_id="error", active=False)
    replayed = make_contestant(name="Replayed", kind="recorded")
    make_contestant(name="Unrecorded", kind="recorded")
    item = PromptItem.objects.create(prompt_set=PromptSet.objects.create(name="S"), text="Hi")
    Answer.objects.create(item=item, contestant=replayed, text="Hello")

    out = StringIO()
    with pytest.raises(CommandError) as caught:
        call_command("models", "check", "--timeout", "0.5", stdout=out)
    assert caught.value.returncode == 1
    assert str(caught.value) == "3 of 5 endpoints failed the check."
    header, *rows = out.getvalue().splitlines()
    assert header.split() == ["name", "kind", "reachable", "ttft", "ms", "error"]
    table = {row.split()[0]: row.split(None, 4)[1:] for row in rows}
    assert table["Broken"] == ["openai", "no", "-", "answered HTTP 500"]
    assert table["Silent"] == ["openai", "no", "-", "timed out before the first token"]
    assert table["Replayed"] == ["recorded", "yes", "-"]
    assert table["Unrecorded"] == ["recorded", "no", "-", "has no recorded answers"]
    kind, reachable, ttft = table["Good"]
    assert (kind, reachable) == ("openai", "yes") and int(ttft) >= 0
    assert "Off" not in table
    # The probe asks for a few tokens only, and every active remote endpoint was called.
    sent = {r.model: r.body for r in upstream.requests}
    assert sent["normal"]["max_tokens"] == CHECK_MAX_TOKENS
    assert set(sent) == {"normal", "error", "hang"}


@pytest.mark.django_db
def test_check_succeeds_when_every_endpoint_answers(upstream):
    make_contestant(name="Good", base_url=upstream.url, model_id="normal")
    make_contestant(name="Claude-ish", kind="anthropic", base_url=upstream.url, model_id="normal")
    out = run("check")
    assert [line.split()[2] for line in out.splitlines()[1:]] == ["yes", "yes"]


@pytest.mark.django_db
def test_check_with_no_active_contestants_says_so():
    assert run("check") == "No active contestants.\n"
