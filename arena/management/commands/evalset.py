"""``manage.py evalset import|generate|list``: eval sets from files, and their missing answers.

import FILE --name SET [--format jsonl|csv]
    Create or update the set's prompts from JSON Lines or CSV. Fields: ``text`` (required),
    ``category`` (a slug or name; created when missing), ``reference``, ``notes``, ``id`` (an
    external id). Re-importing updates prompts by id (by exact text when a row has none), so
    importing the same file twice changes nothing. All or nothing: any invalid row stops the
    import, and every problem is listed as ``file:line: field: problem``. Other fields are
    ignored and named.

generate SET --models NAME,NAME | --all-active [--sync] [--no-wait]
    Fill the answers the set is missing for those models through Celery. Without REDIS_URL
    Celery is eager and the run happens here, with a progress bar on stderr; with a worker the
    command follows the run's progress until it ends (``--no-wait``: only queue it). ``--sync``
    runs here even when a worker is configured. Exits with an error when answers failed;
    running it again retries just those.

list
    Each set with its prompts, stored answers and, per model, the answers still missing.
"""

import time
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.db.models import Count
from django.utils.text import slugify
from tqdm import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

from arena.evalsets.generation import GenerationError, generation_run_create, generation_run_execute
from arena.evalsets.tasks import generate_answers_task, generation_run_enqueue
from arena.exchange.service import ImportFailed
from arena.exchange.sources import (
    InvalidRecord,
    Problem,
    UnreadableFile,
    iter_csv_rows,
    iter_json_records,
    open_text,
)
from arena.models import Answer, Category, Contestant, PromptItem, PromptSet, Run

FORMATS = ("jsonl", "csv")
FIELDS = ("text", "category", "reference", "notes", "id")
SUFFIXES = {".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "jsonl", ".csv": "csv"}
MAX_PROBLEMS_KEPT = 1000
POLL_SECONDS = 0.5
MAX_EXTERNAL_ID = PromptItem._meta.get_field("external_id").max_length
MAX_CATEGORY_NAME = Category._meta.get_field("name").max_length
MAX_CATEGORY_SLUG = Category._meta.get_field("slug").max_length


# -- import ----------------------------------------------------------------------------------


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
    if fmt == "jsonl":
        yield from iter_json_records(stream)
        return
    rows = iter_csv_rows(stream)
    first = next(rows, None)
    if first is None:
        return
    if "text" not in first[1]:
        columns = ", ".join(c for c in first[1] if c is not None) or "none"
        raise UnreadableFile(1, "header", f"no 'text' column (columns: {columns})")
    yield first
    yield from rows


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


# -- the command -----------------------------------------------------------------------------


class Command(BaseCommand):
    help = "Eval sets: import prompts from JSONL/CSV, generate the missing answers, list the sets."

    def add_arguments(self, parser):
        # A positional action, as in `manage.py models`, so -v works after it too.
        parser.add_argument("action", choices=["import", "generate", "list"])
        parser.add_argument("target", nargs="?", help="import: the file; generate: the set.")
        parser.add_argument("--name", help="import: the set to create or update.")
        parser.add_argument("--format", choices=FORMATS, dest="fmt", help="import: file format.")
        parser.add_argument(
            "--models",
            action="append",
            default=[],
            help="generate: contestant names, comma-separated (may be repeated).",
        )
        parser.add_argument(
            "--all-active",
            action="store_true",
            help="generate: every active contestant that is not a recorded one.",
        )
        parser.add_argument(
            "--sync", action="store_true", help="generate: run here even with a Celery worker."
        )
        parser.add_argument(
            "--no-wait", action="store_true", help="generate: queue the run and return."
        )
        parser.add_argument("--no-progress", action="store_true", help="No progress bar.")

    def handle(self, *args, action, target, **options):
        if action == "import":
            return self._import(target, options["name"], options["fmt"], options["no_progress"])
        if action == "generate":
            return self._generate(target, **options)
        if target:
            raise CommandError("evalset list takes no argument.")
        return self._list()

    def _progress_file(self):
        # tqdm draws with carriage returns; Django's wrapper would add a newline to each.
        return getattr(self.stderr, "_out", self.stderr)

    # -- import ----------------------------------------------------------------------------
    def _import(self, file: str | None, name: str | None, fmt: str | None, no_progress: bool):
        if not file or not name:
            raise CommandError("Usage: evalset import FILE --name SET [--format jsonl|csv]")
        try:
            result = prompt_set_import(path=file, name=name, fmt=fmt, progress=not no_progress)
        except (FileNotFoundError, ValueError) as exc:
            raise CommandError(str(exc)) from None
        except ImportFailed as exc:
            for problem in exc.problems:
                self.stderr.write(str(problem))
            if exc.total > len(exc.problems):
                self.stderr.write(f"... and {exc.total - len(exc.problems)} more")
            raise CommandError(
                f"Nothing was imported: {exc.total} invalid row{'s' * (exc.total != 1)}."
            ) from None
        if result.ignored_fields:
            self.stderr.write(
                f"Ignored fields: {', '.join(result.ignored_fields)} "
                f"(an eval set keeps {', '.join(FIELDS)})."
            )
        self.stdout.write(self.style.SUCCESS(result.summary()))

    # -- generate --------------------------------------------------------------------------
    def _generate(self, set_name, *, models, all_active, sync, no_wait, no_progress, **options):
        if not set_name:
            raise CommandError("Usage: evalset generate SET --models NAME,NAME | --all-active")
        prompt_set = PromptSet.objects.filter(name=set_name).first()
        if prompt_set is None:
            raise CommandError(f"No eval set named {set_name!r}; `evalset list` shows them.")
        contestants = self._contestants(models, all_active)
        try:
            run = generation_run_create(prompt_set=prompt_set, contestants=contestants)
        except GenerationError as exc:
            raise CommandError(str(exc)) from None
        if run is None:
            names = ", ".join(c.name for c in contestants)
            self.stdout.write(f"Nothing to generate: {names} answered every prompt of the set.")
            return
        bar = tqdm(
            total=run.total,
            desc=prompt_set.name,
            unit=" answers",
            file=self._progress_file(),
            disable=True if no_progress else None,
            leave=False,
        )

        def show(done: int, failed: int) -> None:
            if failed:
                bar.set_postfix(failed=failed, refresh=False)
            bar.update(done + failed - bar.n)

        here = sync or generate_answers_task.app.conf.task_always_eager
        with bar, logging_redirect_tqdm():  # log lines go above the bar, not through it
            if here:  # what the eager task does, with the progress bar fed directly
                try:
                    result = generation_run_execute(run_id=run.pk, on_progress=show)
                except KeyboardInterrupt:
                    raise CommandError(
                        f"Interrupted (run {run.pk}); run the command again to fill the rest."
                    ) from None
                if result is None:
                    run.refresh_from_db()
                    raise CommandError(f"Run {run.pk} did not run: {run.message}")
            else:
                generation_run_enqueue(run=run)
                if no_wait:
                    self.stdout.write(f"Queued run {run.pk}: {run.total} missing answers.")
                    return
                try:
                    run = self._follow(run, show)
                except KeyboardInterrupt:
                    raise CommandError(
                        f"Stopped following run {run.pk}; it goes on in the worker."
                    ) from None
        run.refresh_from_db()
        lines = run.message.splitlines() or [""]
        summary, failures = lines[0], lines[1:]
        for line in failures:
            self.stderr.write(line)
        message = f"{prompt_set.name} (run {run.pk}): {summary}"
        if run.status != Run.Status.DONE:
            raise CommandError(message)
        if run.failed:
            raise CommandError(f"{message} Run the command again to retry the failed ones.")
        self.stdout.write(self.style.SUCCESS(message))

    def _contestants(self, models: list[str], all_active: bool) -> list[Contestant]:
        names = [n.strip() for value in models for n in value.split(",") if n.strip()]
        if bool(names) == all_active:
            raise CommandError("Give either --models NAME,NAME or --all-active.")
        if all_active:
            active = Contestant.objects.filter(active=True).exclude(kind=Contestant.Kind.RECORDED)
            found = list(active.order_by("name"))
            if not found:
                raise CommandError("No active contestant can generate answers.")
            return found
        found = {c.name: c for c in Contestant.objects.filter(name__in=names)}
        unknown = [n for n in names if n not in found]
        if unknown:
            raise CommandError(
                f"Unknown model{'s' * (len(unknown) != 1)}: {', '.join(unknown)}. "
                "Names are contestants' display names (see the admin, or `manage.py models`)."
            )
        return [found[n] for n in dict.fromkeys(names)]

    def _follow(self, run: Run, show) -> Run:
        """Poll the run, moving the bar, until a worker has finished it."""
        while True:
            run.refresh_from_db(fields=["status", "total", "done", "failed"])
            show(run.done, run.failed)
            if run.status in (Run.Status.DONE, Run.Status.FAILED):
                return run
            time.sleep(POLL_SECONDS)

    # -- list ------------------------------------------------------------------------------
    def _list(self):
        sets = list(PromptSet.objects.annotate(item_count=Count("items")).order_by("name"))
        if not sets:
            self.stdout.write("No eval set yet: `evalset import FILE --name SET` makes one.")
            return
        counts = defaultdict(dict)  # set -> contestant -> answers
        rows = (
            Answer.objects.filter(item__prompt_set__in=sets)
            .values_list("item__prompt_set", "contestant")
            .annotate(n=Count("id"))
        )
        for set_id, contestant_id, n in rows:
            counts[set_id][contestant_id] = n
        active = set(Contestant.objects.filter(active=True).values_list("pk", flat=True))
        shown = active | {c for by_model in counts.values() for c in by_model}
        contestants = list(Contestant.objects.filter(pk__in=shown).order_by("name"))
        for prompt_set in sets:
            by_model = counts[prompt_set.pk]
            answers = sum(by_model.values())
            self.stdout.write(
                f"{prompt_set.name}: {prompt_set.item_count} prompts, {answers} answers"
            )
            table = [("model", "answers", "missing")]
            for c in contestants:
                if c.pk in active or c.pk in by_model:
                    have = by_model.get(c.pk, 0)
                    table.append((c.name, str(have), str(prompt_set.item_count - have)))
            widths = [max(len(line[i]) for line in table) for i in range(3)]
            for line in table:
                cells = [cell.ljust(width) for cell, width in zip(line, widths, strict=True)]
                self.stdout.write("  " + "  ".join(cells).rstrip())
