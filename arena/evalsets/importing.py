"""Eval sets from JSON Lines or CSV: create or update a set's prompts, all or nothing.

Fields: ``text`` (required), ``category`` (a slug or name; created when missing),
``reference``, ``notes``, ``id`` (an external id). Re-importing updates prompts by id (by exact
text when a row has none), so importing the same file twice changes nothing. Every problem is
listed as ``file:line: field: problem``; other fields are ignored and named."""

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from django.db import transaction
from django.db.models import Count
from django.utils.text import slugify

from arena.exchange.service import ImportFailed
from arena.exchange.sources import (
    MAX_PROBLEMS_KEPT,
    InvalidRecord,
    Problem,
    UnreadableFile,
    iter_records,
    open_text,
)
from arena.models import Category, PromptItem, PromptSet

FORMATS = ("jsonl", "csv")


FIELDS = ("text", "category", "reference", "notes", "id")


SUFFIXES = {".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "jsonl", ".csv": "csv"}


MAX_EXTERNAL_ID = PromptItem._meta.get_field("external_id").max_length


MAX_CATEGORY_NAME = Category._meta.get_field("name").max_length


MAX_CATEGORY_SLUG = Category._meta.get_field("slug").max_length


@dataclass(frozen=True)
class PromptSetImport:
    prompt_set: PromptSet
    set_created: bool
    created: int
    updated: int
    unchanged: int
    categories_created: int
    ignored_fields: tuple[str, ...]

    def summary(self) -> str:
        verb = "Created" if self.set_created else "Updated"
        text = (
            f"{verb} eval set {self.prompt_set.name!r}: {self.created} new prompts, "
            f"{self.updated} updated, {self.unchanged} unchanged"
        )
        if self.categories_created:
            text += f", {self.categories_created} new categories"
        return text + "."


@dataclass(frozen=True)
class _Row:
    line: int
    text: str
    category: str
    reference: str
    notes: str
    external_id: str


def _text(record: dict, key: str, *, required: bool = False) -> str:
    value = record.get(key)
    if value is None:
        if required:
            raise InvalidRecord(key, "missing")
        return ""
    if not isinstance(value, str):
        raise InvalidRecord(key, f"expected text, got {type(value).__name__}")
    if required and not value.strip():
        raise InvalidRecord(key, "empty")
    return value.strip()


def _external_id(record: dict) -> str:
    value = record.get("id")
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if value is not None and not isinstance(value, str):
        raise InvalidRecord("id", f"expected text or a whole number, got {type(value).__name__}")
    value = (value or "").strip()
    if len(value) > MAX_EXTERNAL_ID:
        raise InvalidRecord("id", f"longer than {MAX_EXTERNAL_ID} characters")
    return value


def _row(line: int, record) -> _Row:
    if not isinstance(record, dict):
        raise InvalidRecord("record", f"expected an object, got {type(record).__name__}")
    if None in record:  # csv.DictReader keeps the cells past the header under None
        raise InvalidRecord("row", "has more cells than the header has columns")
    return _Row(
        line=line,
        text=_text(record, "text", required=True),
        category=_text(record, "category"),
        reference=_text(record, "reference"),
        notes=_text(record, "notes"),
        external_id=_external_id(record),
    )


def _records(fmt: str, stream) -> Iterator[tuple[int, object]]:
    return iter_records(stream, csv=fmt == "csv", check_columns=_check_columns)


def _check_columns(columns: list[str]) -> None:
    if "text" not in columns:
        listed = ", ".join(columns) or "none"
        raise UnreadableFile(1, "header", f"no 'text' column (columns: {listed})")


class _Categories:
    """Categories by slug or name (case-insensitive), created when missing."""

    def __init__(self):
        self.by_slug = {c.slug: c.pk for c in Category.objects.all()}
        self.by_name = {c.name.casefold(): c.pk for c in Category.objects.all()}
        self.created = 0

    def id_for(self, value: str) -> int | None:
        if not value:
            return None
        slug = slugify(value)
        found = self.by_slug.get(value) or self.by_name.get(value.casefold())
        found = found or self.by_slug.get(slug)
        if found:
            return found
        if not slug:
            raise InvalidRecord("category", f"cannot make a slug of {value!r}")
        if len(value) > MAX_CATEGORY_NAME or len(slug) > MAX_CATEGORY_SLUG:
            raise InvalidRecord("category", f"longer than {MAX_CATEGORY_NAME} characters")
        category = Category.objects.create(slug=slug, name=value)
        self.by_slug[slug] = self.by_name[value.casefold()] = category.pk
        self.created += 1
        return category.pk


def prompt_set_import(
    *, path: str | Path, name: str, fmt: str | None = None, progress: bool = False
) -> PromptSetImport:
    """Create or update the prompt set ``name`` from a JSONL or CSV file, all or nothing.

    ``fmt`` defaults from the file's suffix. Raises ImportFailed (nothing imported) listing
    every problem as ``file:line: field: problem``, FileNotFoundError and ValueError.
    """
    path = Path(path)
    fmt = fmt or SUFFIXES.get(path.suffix.lower())
    if fmt not in FORMATS:
        raise ValueError(f"{path}: cannot tell the format from the name; pass --format jsonl|csv")
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    name = name.strip()
    if not name:
        raise ValueError("The set needs a name (--name).")
    file = str(path)
    problems: list[Problem] = []
    total_problems = 0
    ignored: set[str] = set()
    with (
        transaction.atomic(),
        open_text(path, progress=progress, newline="" if fmt == "csv" else None) as stream,
    ):
        prompt_set, set_created = PromptSet.objects.get_or_create(name=name)
        existing = list(prompt_set.items.annotate(answer_count=Count("answers")).order_by("id"))
        by_id = {item.external_id: item for item in existing if item.external_id}
        by_text = {}
        for item in existing:  # an item without an id wins a text match
            if item.text not in by_text or not item.external_id:
                by_text[item.text] = item
        categories = _Categories()
        seen_ids: dict[str, int] = {}
        seen_texts: dict[str, int] = {}
        matched: dict[int, int] = {}  # item pk -> line
        new: list[PromptItem] = []
        changed: list[PromptItem] = []
        unchanged = 0
        lines = 0
        try:
            for line, record in _records(fmt, stream):
                lines += 1
                try:
                    if isinstance(record, InvalidRecord):
                        raise record
                    row = _row(line, record)
                    ignored.update(k for k in record if k not in FIELDS)
                    category_id = categories.id_for(row.category)
                    item = _match(row, by_id, by_text, seen_ids, seen_texts, matched)
                except InvalidRecord as exc:
                    total_problems += 1
                    if len(problems) < MAX_PROBLEMS_KEPT:
                        problems.append(Problem(file, line, exc.field, exc.problem))
                    continue
                values = {
                    "text": row.text,
                    "category_id": category_id,
                    "reference": row.reference,
                    "notes": row.notes,
                    "external_id": row.external_id or (item.external_id if item else ""),
                }
                if item is None:
                    new.append(PromptItem(prompt_set=prompt_set, **values))
                elif all(getattr(item, k) == v for k, v in values.items()):
                    unchanged += 1
                else:
                    for key, value in values.items():
                        setattr(item, key, value)
                    changed.append(item)
        except UnreadableFile as exc:
            problems.append(Problem(file, exc.line, exc.field, exc.problem))
            raise ImportFailed(problems, total_problems + 1) from None
        if not lines and not total_problems:
            raise ImportFailed([Problem(file, 1, "file", "has no prompts")], 1)
        if total_problems:
            raise ImportFailed(problems, total_problems)
        PromptItem.objects.bulk_create(new)
        for item in changed:
            item.save(update_fields=["text", "category", "reference", "notes", "external_id"])
    return PromptSetImport(
        prompt_set=prompt_set,
        set_created=set_created,
        created=len(new),
        updated=len(changed),
        unchanged=unchanged,
        categories_created=categories.created,
        ignored_fields=tuple(sorted(ignored)),
    )


def _match(row: _Row, by_id, by_text, seen_ids, seen_texts, matched) -> PromptItem | None:
    """The stored item this row updates (None: a new one); InvalidRecord on a conflict."""
    if row.external_id in seen_ids:
        raise InvalidRecord("id", f"repeats the id of line {seen_ids[row.external_id]}")
    if row.text in seen_texts:
        raise InvalidRecord("text", f"repeats the prompt of line {seen_texts[row.text]}")
    if row.external_id:
        seen_ids[row.external_id] = row.line
    seen_texts[row.text] = row.line
    item = by_id.get(row.external_id) if row.external_id else None
    if item is None:
        candidate = by_text.get(row.text)
        if candidate is not None and (not row.external_id or not candidate.external_id):
            item = candidate
    if item is None:
        return None
    if item.pk in matched:
        raise InvalidRecord("text", f"matches the same stored prompt as line {matched[item.pk]}")
    matched[item.pk] = row.line
    if item.text != row.text and item.answer_count:
        raise InvalidRecord(
            "text",
            f"differs from stored prompt {item.external_id!r}, which already has "
            f"{item.answer_count} answers; give the changed prompt a new id",
        )
    return item
