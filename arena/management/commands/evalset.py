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

from django.core.management.base import BaseCommand, CommandError
from django.db.models import Count
from tqdm import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

from arena.evalsets.generation import GenerationError, generation_run_create, generation_run_execute
from arena.evalsets.importing import FIELDS, FORMATS, prompt_set_import
from arena.evalsets.tasks import generate_answers_task, generation_run_enqueue
from arena.exchange.service import ImportFailed
from arena.models import Answer, Contestant, PromptSet, Run

POLL_SECONDS = 0.5


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
            for line in exc.lines():
                self.stderr.write(line)
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
