"""``manage.py models sync FILE`` and ``manage.py models check``.

sync   validate a models.toml file, then create or update contestants by name (one transaction)
check  call every active endpoint with a tiny prompt and print what answered; exit 1 on failure
"""

import asyncio
import contextlib
import dataclasses

from django.core.management.base import BaseCommand, CommandError

from arena.models import Answer, Contestant
from arena.providers import Endpoint, Finished, ProviderError, Timeouts, aclose_client, stream_chat
from arena.providers.contestants import ModelsFileError, contestants_sync, parse_models_file

CHECK_PROMPT = [{"role": "user", "content": "Reply with one word: hello."}]
CHECK_MAX_TOKENS = 16


@dataclasses.dataclass
class CheckRow:
    name: str
    kind: str
    reachable: bool
    ttft_ms: int | None = None
    error: str = ""
    detail: str = ""


class Command(BaseCommand):
    help = "Sync contestants from a models.toml file, or check that their endpoints answer."

    def add_arguments(self, parser):
        # A positional action rather than subparsers, so -v and the other common options work
        # after it too (`models check -v 2`).
        parser.add_argument("action", choices=["sync", "check"])
        parser.add_argument("file", nargs="?", help="sync: path to models.toml.")
        parser.add_argument(
            "--deactivate-missing",
            action="store_true",
            help="sync: deactivate active contestants that the file does not list.",
        )
        parser.add_argument(
            "--timeout",
            type=float,
            default=None,
            help="check: seconds to wait for the first token (default ARENA_TIMEOUT_FIRST_TOKEN).",
        )

    def handle(self, *args, action, file, deactivate_missing, timeout, verbosity, **options):
        if action == "sync":
            if not file:
                raise CommandError("models sync needs the path of a models.toml file.")
            return self._sync(file, deactivate_missing)
        if file or deactivate_missing:
            raise CommandError("models check takes no file and no --deactivate-missing.")
        if timeout is not None and timeout <= 0:
            raise CommandError("--timeout must be a positive number of seconds.")
        return self._check(timeout, verbosity)

    # -- sync ------------------------------------------------------------------------------
    def _sync(self, path: str, deactivate_missing: bool) -> None:
        try:
            specs = parse_models_file(path)
        except ModelsFileError as exc:
            raise CommandError(str(exc)) from None
        report = contestants_sync(specs=specs, deactivate_missing=deactivate_missing)
        for label, names in (
            ("created", report.created),
            ("updated", report.updated),
            ("deactivated", report.deactivated),
        ):
            for name in names:
                self.stdout.write(f"  {label:<11} {name}")
        summary = (
            f"{path}: {len(report.created)} created, {len(report.updated)} updated, "
            f"{len(report.unchanged)} unchanged"
        )
        if deactivate_missing:
            summary += f", {len(report.deactivated)} deactivated"
        self.stdout.write(self.style.SUCCESS(summary))

    # -- check -----------------------------------------------------------------------------
    def _check(self, first_token: float | None, verbosity: int) -> None:
        contestants = list(Contestant.objects.filter(active=True).order_by("name"))
        if not contestants:
            self.stdout.write("No active contestants.")
            return
        timeouts = Timeouts.from_settings()
        if first_token is not None:
            timeouts = dataclasses.replace(timeouts, first_token=first_token)
        rows: dict[int, CheckRow] = {}
        remote = []
        for contestant in contestants:
            if contestant.kind == Contestant.Kind.RECORDED:
                has_answers = Answer.objects.filter(contestant=contestant).exists()
                rows[contestant.pk] = CheckRow(
                    contestant.name,
                    contestant.kind,
                    has_answers,
                    error="" if has_answers else "has no recorded answers",
                )
            else:
                remote.append(Endpoint.from_contestant(contestant))
        for row in asyncio.run(_check_all(remote, timeouts)):
            rows[row.contestant_id] = row.result
        ordered = [rows[c.pk] for c in contestants]
        self._table(ordered)
        if verbosity >= 2:
            for row in ordered:
                if row.detail:
                    self.stdout.write(f"{row.name}: {row.detail}")
        failed = [row for row in ordered if not row.reachable]
        if failed:
            raise CommandError(f"{len(failed)} of {len(ordered)} endpoints failed the check.")

    def _table(self, rows: list[CheckRow]) -> None:
        header = ("name", "kind", "reachable", "ttft ms", "error")
        lines = [
            (
                row.name,
                row.kind,
                "yes" if row.reachable else "no",
                "-" if row.ttft_ms is None else str(row.ttft_ms),
                row.error,
            )
            for row in rows
        ]
        widths = [max(len(line[i]) for line in [header, *lines]) for i in range(len(header))]
        for line in [header, *lines]:
            cells = [cell.ljust(width) for cell, width in zip(line, widths, strict=True)]
            self.stdout.write("  ".join(cells).rstrip())


@dataclasses.dataclass
class _Checked:
    contestant_id: int
    result: CheckRow


async def _check_one(endpoint: Endpoint, timeouts: Timeouts) -> _Checked:
    probe = dataclasses.replace(endpoint, max_tokens=CHECK_MAX_TOKENS)
    row = CheckRow(endpoint.name, endpoint.kind, reachable=False)
    try:
        async with contextlib.aclosing(stream_chat(probe, CHECK_PROMPT, timeouts=timeouts)) as s:
            async for item in s:
                if isinstance(item, Finished):
                    row.reachable, row.ttft_ms = True, item.ttft_ms
    except ProviderError as exc:
        row.error, row.detail = str(exc), exc.detail
    return _Checked(endpoint.contestant_id, row)


async def _check_all(endpoints: list[Endpoint], timeouts: Timeouts) -> list[_Checked]:
    try:
        return await asyncio.gather(*(_check_one(e, timeouts) for e in endpoints))
    finally:
        await aclose_client()
