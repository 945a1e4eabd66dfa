"""Contestants from a ``models.toml`` file: parse, validate every entry, then sync the rows.

The file is a list of ``[[model]]`` tables (see ``tests/data/models.example.toml``). Every
problem is reported at once, each naming the file, the entry and the field::

    models.toml: model #3 ("gpt-x"): temperature must be a number between 0 and 2

The database is only touched once the whole file is valid; then rows are upserted by name in
one transaction, so a sync either applies completely or not at all.
"""

import math
import tomllib
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import cast
from urllib.parse import urlsplit

from django.core.exceptions import ValidationError
from django.db import transaction

from arena.core.keys import key_var_refusal
from arena.models import Contestant, validate_env_var_name

__all__ = [
    "ContestantSpec",
    "ModelsFileError",
    "SyncReport",
    "contestants_sync",
    "parse_models_file",
    "parse_models_toml",
]

KINDS = tuple(Contestant.Kind.values)
_MAX_PRICE = Decimal("999999.999999")  # DecimalField(max_digits=12, decimal_places=6)
_MAX_INT = 2**31 - 1


class ModelsFileError(ValueError):
    """The file is unusable; ``errors`` lists every problem, one line each."""

    def __init__(self, errors: list[str]):
        super().__init__("\n".join(errors))
        self.errors = errors


@dataclass(frozen=True)
class ContestantSpec:
    """One validated ``[[model]]`` entry: exactly the Contestant fields it sets."""

    name: str
    organisation: str = ""
    # A TextChoices member (a str); without Django stubs mypy sees its (value, label) tuple.
    kind: str = cast(str, Contestant.Kind.OPENAI)
    base_url: str = ""
    model_id: str = ""
    api_key_env: str = ""
    system_prompt: str = ""
    temperature: float | None = None
    top_p: float | None = None
    max_tokens: int | None = None
    price_input_per_mtok: Decimal | None = None
    price_output_per_mtok: Decimal | None = None
    sampling_weight: float = 1.0
    active: bool = True
    identity_patterns: tuple[str, ...] = ()

    def field_values(self) -> dict:
        values = {name: getattr(self, name) for name in self.__dataclass_fields__}
        values["identity_patterns"] = "\n".join(self.identity_patterns)
        return values


@dataclass
class SyncReport:
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    deactivated: list[str] = field(default_factory=list)


FIELDS = tuple(ContestantSpec.__dataclass_fields__)


def parse_models_file(path: str | Path) -> list[ContestantSpec]:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ModelsFileError([f"{path}: no such file"]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ModelsFileError([f"{path}: cannot be read ({exc.__class__.__name__})"]) from None
    return parse_models_toml(text, source=str(path))


def parse_models_toml(text: str, *, source: str = "models.toml") -> list[ContestantSpec]:
    """Validate the whole file; raise ModelsFileError listing every problem."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ModelsFileError([f"{source}: not valid TOML: {exc}"]) from None
    errors = [
        f'{source}: unknown top-level key "{key}" (expected [[model]] entries)'
        for key in data
        if key != "model"
    ]
    entries = data.get("model", [])
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise ModelsFileError([*errors, f"{source}: model must be written as [[model]] tables"])
    if not entries:
        errors.append(f"{source}: no [[model]] entries")
    specs = []
    first_index: dict[str, int] = {}
    for index, entry in enumerate(entries, start=1):
        spec, problems = _entry_iv(entry)
        name = entry.get("name")
        where = (
            f'{source}: model #{index} ("{name}")'
            if isinstance(name, str)
            else (f"{source}: model #{index}")
        )
        errors.extend(f"{where}: {problem}" for problem in problems)
        if spec is not None:
            if spec.name in first_index:
                errors.append(
                    f'{where}: name "{spec.name}" is already used by model '
                    f"#{first_index[spec.name]}"
                )
            first_index.setdefault(spec.name, index)
            specs.append(spec)
    if errors:
        raise ModelsFileError(errors)
    return specs


def _entry_iv(entry: dict) -> tuple[ContestantSpec | None, list[str]]:
    """Validate one entry. Messages name the field; a value is quoted only when harmless."""
    problems = [f'unknown field "{key}"' for key in entry if key not in FIELDS]
    values: dict = {}

    def text(
        name: str, *, required: bool = False, max_length: int | None = None, multiline: bool = True
    ) -> None:
        value = entry.get(name, "")
        if not isinstance(value, str):
            problems.append(f"{name} must be a string")
            return
        value = value if multiline else value.strip()
        if required and not value.strip():
            problems.append(f"{name} is required")
        elif max_length and len(value) > max_length:
            problems.append(f"{name} must be at most {max_length} characters")
        else:
            values[name] = value

    def number(
        name: str, low: float, high: float, *, default: float | None = None, message: str
    ) -> None:
        value = entry.get(name, default)
        if value is None:
            values[name] = None
        elif (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
            or not low <= value <= high
        ):
            problems.append(f"{name} {message}")
        else:
            values[name] = float(value)

    def price(name: str) -> None:
        value = entry.get(name)
        if value is None:
            values[name] = None
            return
        try:
            if isinstance(value, bool) or not isinstance(value, int | float | str):
                raise InvalidOperation
            amount = Decimal(str(value).strip())
            if not amount.is_finite() or not Decimal(0) <= amount <= _MAX_PRICE:
                raise InvalidOperation
        except InvalidOperation:
            problems.append(f"{name} must be a non-negative number of currency units per million")
            return
        if amount != amount.quantize(Decimal("0.000001")):
            problems.append(f"{name} must have at most 6 decimal places")
            return
        values[name] = amount

    text("name", required=True, max_length=200, multiline=False)
    text("organisation", max_length=200, multiline=False)
    kind = entry.get("kind", Contestant.Kind.OPENAI)
    if kind not in KINDS:
        problems.append(f"kind must be one of {', '.join(KINDS)}")
    else:
        values["kind"] = kind
    remote = kind != Contestant.Kind.RECORDED

    base_url = entry.get("base_url", "")
    if not isinstance(base_url, str):
        problems.append("base_url must be a string")
    elif remote and not base_url.strip():
        problems.append(f'base_url is required for kind "{kind}"')
    elif not remote and base_url.strip():
        problems.append('base_url is not used by kind "recorded"; remove it')
    elif base_url.strip():
        parts = urlsplit(base_url.strip())
        if parts.scheme not in ("http", "https") or not parts.hostname:
            problems.append("base_url must be an http:// or https:// URL with a host")
        elif parts.username or parts.password or parts.query:
            problems.append("base_url must not carry credentials or a query; use api_key_env")
        elif len(base_url.strip()) > 200:
            problems.append("base_url must be at most 200 characters")
        else:
            values["base_url"] = base_url.strip().rstrip("/")

    if remote and not str(entry.get("model_id", "")).strip():
        problems.append(f'model_id is required for kind "{kind}"')
    else:
        text("model_id", max_length=200, multiline=False)

    api_key_env = entry.get("api_key_env", "")
    # Never quote this value back: a key pasted here by mistake must not reach the terminal.
    if not isinstance(api_key_env, str):
        problems.append("api_key_env must be a string")
    elif not remote and api_key_env.strip():
        problems.append('api_key_env is not used by kind "recorded"; remove it')
    else:
        try:
            validate_env_var_name(api_key_env.strip())
        except ValidationError as exc:
            problems.append(
                f"api_key_env: {key_var_refusal(api_key_env.strip())}"
                if exc.code == "not_allowed"
                else "api_key_env must be the NAME of an environment variable "
                "(e.g. OPENAI_API_KEY), not a key"
            )
        else:
            if len(api_key_env.strip()) > 100:
                problems.append("api_key_env must be at most 100 characters")
            else:
                values["api_key_env"] = api_key_env.strip()

    text("system_prompt")
    number("temperature", 0, 2, message="must be a number between 0 and 2")
    number("top_p", 0, 1, message="must be a number between 0 and 1")
    max_tokens = entry.get("max_tokens")
    if max_tokens is not None and (
        isinstance(max_tokens, bool)
        or not isinstance(max_tokens, int)
        or not 1 <= max_tokens <= _MAX_INT
    ):
        problems.append("max_tokens must be a whole number of at least 1")
    else:
        values["max_tokens"] = max_tokens
    price("price_input_per_mtok")
    price("price_output_per_mtok")
    number("sampling_weight", 0, math.inf, default=1.0, message="must be a number of at least 0")
    active = entry.get("active", True)
    if not isinstance(active, bool):
        problems.append("active must be true or false")
    else:
        values["active"] = active
    patterns = entry.get("identity_patterns", [])
    if not isinstance(patterns, list) or not all(
        isinstance(p, str) and p.strip() and "\n" not in p for p in patterns
    ):
        problems.append("identity_patterns must be a list of non-empty one-line strings")
    else:
        values["identity_patterns"] = tuple(p.strip() for p in patterns)

    if problems:
        # The name alone still lets the caller report a duplicate.
        partial = ContestantSpec(name=values["name"]) if "name" in values else None
        return partial, problems
    return ContestantSpec(**values), []


def contestants_sync(
    *, specs: list[ContestantSpec], deactivate_missing: bool = False
) -> SyncReport:
    """Upsert contestants by name in one transaction; optionally retire those not listed."""
    report = SyncReport()
    names = [spec.name for spec in specs]
    with transaction.atomic():
        existing = {
            c.name: c for c in Contestant.objects.select_for_update().filter(name__in=names)
        }
        for spec in specs:
            values = spec.field_values()
            contestant = existing.get(spec.name)
            if contestant is None:
                Contestant.objects.create(**values)
                report.created.append(spec.name)
                continue
            changed = [k for k, v in values.items() if getattr(contestant, k) != v]
            if changed:
                for k in changed:
                    setattr(contestant, k, values[k])
                contestant.save(update_fields=changed)
                report.updated.append(spec.name)
            else:
                report.unchanged.append(spec.name)
        if deactivate_missing:
            missing = Contestant.objects.select_for_update().filter(active=True)
            missing = missing.exclude(name__in=names)
            report.deactivated = list(missing.values_list("name", flat=True))
            missing.update(active=False)
    return report
