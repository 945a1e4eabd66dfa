"""``manage.py judge create`` and ``manage.py judge run``.

create  define a judge: a contestant to call, a verdict format, optionally its own template
run     judge pairs in both orders, in this process, with a progress bar on stderr, then print
        pairs judged, parse failures, position consistency, first-position wins, latency, cost

    manage.py judge create --name "GPT judge" --contestant "GPT-4o" [--format five|three]
                           [--template FILE] [--inconsistent tie|average] [--auto-judge]
    manage.py judge run --judge "GPT judge" (--set NAME | --battles 1,2,3 | --voted) [--limit N]

``run`` retries pairs left pending by a transient upstream error like the Celery task does
(backoff with jitter, capped), then stores what still fails as an upstream error.
"""

import hashlib
import time
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from arena.judging.prompts import TEMPLATE_VERSION, judge_prompt
from arena.judging.runs import (
    MAX_RETRIES,
    JudgingError,
    judge_pairs_for_set,
    judge_pairs_from_ids,
    judge_pairs_voted,
    judge_run_create,
    judge_run_execute,
    retry_delay,
)
from arena.judging.stats import judge_stats
from arena.models import Contestant, Judge, PromptSet, Run


class Command(BaseCommand):
    help = "Define an LLM judge, or run one over pairs of answers (both orders)."

    def add_arguments(self, parser):
        parser.add_argument("action", choices=["create", "run"])
        parser.add_argument("--name", help="create: the judge's name.")
        parser.add_argument("--contestant", help="create: name of the contestant to call.")
        parser.add_argument("--format", choices=["five", "three"], default="five")
        parser.add_argument("--template", help="create: a file with the prompt template.")
        parser.add_argument(
            "--inconsistent",
            choices=["tie", "average"],
            default="tie",
            help="create: how two orders that disagree combine (default: a tie).",
        )
        parser.add_argument(
            "--auto-judge", action="store_true", help="create: judge every new voted battle."
        )
        parser.add_argument("--judge", help="run: the judge's name.")
        source = parser.add_mutually_exclusive_group()
        source.add_argument("--set", dest="set_name", help="run: every pair of an eval set.")
        source.add_argument("--battles", help="run: comma-separated battle ids.")
        source.add_argument("--voted", action="store_true", help="run: all human-voted battles.")
        parser.add_argument(
            "--limit", type=int, help="run: at most N pairs, among those not yet judged."
        )

    def handle(self, *args, action, **options):
        if action == "create":
            return self._create(options)
        return self._run(options)

    # -- create ----------------------------------------------------------------------------
    def _create(self, options) -> None:
        name, contestant_name = options["name"], options["contestant"]
        if not name or not contestant_name:
            raise CommandError("judge create needs --name and --contestant.")
        contestant = Contestant.objects.filter(name=contestant_name).first()
        if contestant is None:
            raise CommandError(f"No contestant named {contestant_name!r}.")
        if contestant.kind == Contestant.Kind.RECORDED:
            raise CommandError(
                f"{contestant_name!r} only replays recorded answers; it cannot judge."
            )
        if Judge.objects.filter(name=name).exists():
            raise CommandError(f"A judge named {name!r} already exists.")
        template, version = "", TEMPLATE_VERSION
        if options["template"]:
            try:
                template = Path(options["template"]).read_text(encoding="utf-8")
            except OSError as exc:
                raise CommandError(f"Cannot read the template: {exc}") from None
            _check_template(template, options["format"])
            version = "custom-" + hashlib.sha256(template.encode()).hexdigest()[:10]
        judge = Judge.objects.create(
            name=name,
            contestant=contestant,
            template=template,
            template_version=version,
            verdict_format=options["format"],
            inconsistent_rule=options["inconsistent"],
            auto_judge=options["auto_judge"],
        )
        self.stdout.write(
            f"Created judge {judge.name!r}: calls {contestant.name}, {judge.verdict_format}-level "
            f"verdicts, template {version}."
        )

    # -- run -------------------------------------------------------------------------------
    def _run(self, options) -> None:
        if not options["judge"]:
            raise CommandError("judge run needs --judge NAME.")
        judge = Judge.objects.select_related("contestant").filter(name=options["judge"]).first()
        if judge is None:
            raise CommandError(f"No judge named {options['judge']!r}.")
        try:
            battle_ids, source = self._pairs(options)
            run = judge_run_create(
                judge=judge, battle_ids=battle_ids, source=source, limit=options["limit"]
            )
        except JudgingError as exc:
            raise CommandError(str(exc)) from None
        bar = _Bar(self.stderr, run.total)
        for attempt in range(MAX_RETRIES + 1):
            result = judge_run_execute(
                run=run, final_attempt=attempt == MAX_RETRIES, on_pair=bar.update
            )
            if not result.pending:
                break
            delay = retry_delay(attempt)
            bar.note(f"{result.pending} pairs hit {result.error}; retrying in {delay:.0f} s")
            time.sleep(delay)
        bar.close()
        run.refresh_from_db()
        self._report(judge, run)
        if run.status == Run.Status.FAILED:
            raise CommandError(run.message or "The run failed.")

    def _pairs(self, options) -> tuple[list[int], str]:
        if options["set_name"]:
            prompt_set = PromptSet.objects.filter(name=options["set_name"]).first()
            if prompt_set is None:
                raise CommandError(f"No eval set named {options['set_name']!r}.")
            return judge_pairs_for_set(prompt_set=prompt_set), f"set:{prompt_set.name}"
        if options["battles"]:
            try:
                ids = [int(part) for part in options["battles"].split(",") if part.strip()]
            except ValueError:
                raise CommandError("--battles takes comma-separated battle ids.") from None
            return judge_pairs_from_ids(ids), "battles"
        if options["voted"]:
            return judge_pairs_voted(), "voted"
        raise CommandError("judge run needs one of --set NAME, --battles IDS or --voted.")

    def _report(self, judge: Judge, run: Run) -> None:
        stats = judge_stats(judge=judge, battle_ids=run.params["battle_ids"])
        write = self.stdout.write
        write(f"Run {run.pk} of judge {judge.name!r} ({run.params['source']}): {run.status}.")
        write(f"pairs judged: {run.done} of {run.total}, failed: {run.failed}")
        write(
            f"parse failures: {stats.parse_failures} of {stats.judgements} judgements"
            f" (upstream errors: {stats.upstream_failures})"
        )
        write(
            "position consistency: "
            + _share(stats.consistency, f"of {stats.pairs_both} pairs judged in both orders")
        )
        write(
            "first-position wins: "
            + _share(stats.first_position, f"of {stats.decided} decided verdicts")
        )
        mean = stats.latency_ms / stats.judgements if stats.judgements else 0
        write(f"latency: {stats.latency_ms / 1000:.1f} s in all, {mean:.0f} ms per judgement")
        cost = "unknown (the judge has no prices)" if stats.cost is None else f"${stats.cost:.4f}"
        write(f"cost: {cost}; tokens in {stats.tokens_in}, out {stats.tokens_out}")


def _share(estimate, what: str) -> str:
    if estimate is None:
        return f"n/a ({what.replace('of ', '', 1)}: none)"
    return f"{estimate.value:.1%} (95% CI {estimate.lower:.1%}-{estimate.upper:.1%}) {what}"


def _check_template(template: str, verdict_format: str) -> None:
    for field in ("$nonce", "$prompt", "$answer_a", "$answer_b", "$verdict_help"):
        if field not in template:
            raise CommandError(f"The template must contain {field}.")
    try:
        judge_prompt(
            prompt="p", first="a", second="b", verdict_format=verdict_format, template=template
        )
    except (KeyError, ValueError) as exc:
        raise CommandError(f"The template does not fill: {exc}") from None


class _Bar:
    """A one-line progress bar: redrawn in place on a terminal, else a line per tenth."""

    WIDTH = 30

    def __init__(self, stream, total: int):
        self.stream, self.total = stream, max(total, 1)
        self.tty = stream.isatty()
        self.started = time.monotonic()
        self.last_tenth = -1
        self.shown = False

    def update(self, run: Run) -> None:
        finished = run.done + run.failed
        tenth = 10 * finished // self.total
        if not self.tty and tenth == self.last_tenth and finished < self.total:
            return
        self.last_tenth = tenth
        filled = self.WIDTH * finished // self.total
        elapsed = time.monotonic() - self.started
        line = (
            f"[{'#' * filled}{'.' * (self.WIDTH - filled)}] {finished}/{run.total} pairs"
            f" ({run.failed} failed) {elapsed:.0f} s"
        )
        self.stream.write(("\r" + line) if self.tty else line + "\n", ending="")
        self.stream.flush()
        self.shown = True

    def note(self, text: str) -> None:
        self.close()
        self.stream.write(text + "\n", ending="")
        self.shown = False

    def close(self) -> None:
        if self.tty and self.shown:
            self.stream.write("\n", ending="")
        self.shown = False
