"""Import and export of battles: other tools' formats in, the arena's own and FastChat's out.

``battles_import`` streams a file record by record (memory bounded by one batch, never by the
file), validates each record, and writes battles in batches inside one transaction: by default
the first invalid record makes the whole import fail and the database is left as it was, with
every problem listed as ``file:line: field: problem``; with ``skip_invalid`` the valid records
are imported and the problems are reported. ``battles_export`` streams the other way.

Formats: see ``arena.exchange.formats`` (fastchat, arena-rank, llmfao, openwebui) and
``arena.exchange.arena_jsonl`` (arena, the lossless one) and ``arena.exchange.fastchat``.
"""

import gc
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from django.db import transaction
from django.db.models import Max
from django.utils import timezone
from tqdm import tqdm

from arena.exchange import arena_jsonl, fastchat, formats
from arena.exchange.bulk import (
    BattleWriter,
    PendingBattle,
    analyze,
    deferred_indexes,
    explicit_timestamps,
    larger_page_cache,
)
from arena.exchange.sources import (
    MAX_PROBLEMS_KEPT,
    InvalidRecord,
    Problem,
    UnreadableFile,
    iter_records,
    open_text,
)
from arena.models import (
    Answer,
    Battle,
    BattleCategory,
    Contestant,
    Judge,
    Judgement,
    PromptSet,
    Turn,
    Vote,
)
from arena.quality.bulk_import import review_imported

__all__ = [
    "EXPORT_FORMATS",
    "IMPORT_FORMATS",
    "ImportFailed",
    "ImportResult",
    "Problem",
    "battles_export",
    "battles_import",
]

IMPORT_FORMATS = ("fastchat", "arena-rank", "llmfao", "openwebui", "arena")
EXPORT_FORMATS = ("arena", "fastchat")


@dataclass(frozen=True)
class ImportResult:
    battles: int
    votes: int
    turns: int
    judgements: int
    contestants_created: int
    categories_created: int
    users_created: int
    passed_over: int  # valid records that are not battles (Open WebUI single ratings)
    problems: tuple[Problem, ...]  # records left out with --skip-invalid
    problems_total: int
    votes_excluded: int = 0  # by the vote-quality checks (arena.quality.bulk_import)
    voters_flagged: int = 0

    def summary(self) -> str:
        parts = [
            f"{self.battles} battles",
            f"{self.votes} votes",
            f"{self.turns} turns",
            f"{self.judgements} judgements",
            f"{self.contestants_created} new contestants",
            f"{self.categories_created} new categories",
        ]
        if self.users_created:
            parts.append(f"{self.users_created} new users (without a usable password)")
        text = "Imported " + ", ".join(parts) + "."
        if self.passed_over:
            text += f" Passed over {self.passed_over} records that compare no two models."
        if self.problems_total:
            text += f" Skipped {self.problems_total} invalid records."
        if self.votes_excluded:
            text += (
                f" The vote-quality checks excluded {self.votes_excluded} votes"
                f" ({self.voters_flagged} voters flagged); see the quality page."
            )
        return text


class ImportFailed(Exception):
    """Nothing was imported. ``problems`` lists why (the first MAX_PROBLEMS_KEPT of them)."""

    def __init__(self, problems: list[Problem], total: int):
        self.problems = tuple(problems)
        self.total = total
        shown = "\n".join(str(p) for p in problems[:20])
        more = f"\n... and {total - 20} more" if total > 20 else ""
        super().__init__(
            f"Nothing was imported: {total} invalid record{'s' * (total != 1)}.\n{shown}{more}"
        )

    def lines(self) -> list[str]:
        """Every kept problem, one per line, and how many more there were."""
        lines = [str(problem) for problem in self.problems]
        if self.total > len(self.problems):
            lines.append(f"... and {self.total - len(self.problems)} more")
        return lines


@contextmanager
def _gc_paused():
    """Pause the cyclic garbage collector while streaming.

    An import allocates millions of short-lived, acyclic dicts and strings that reference
    counting frees at once; the cyclic collector, triggered by allocation counts, would spend a
    quarter of the import walking them for nothing. Restored afterwards.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _records(fmt: str, stream) -> Iterator[tuple[int, object]]:
    if fmt in ("fastchat", "openwebui", "arena"):
        return iter_records(stream, csv=False)
    required = formats.ARENA_RANK_COLUMNS if fmt == "arena-rank" else formats.LLMFAO_COLUMNS
    return iter_records(
        stream, csv=True, check_columns=lambda columns: formats.check_columns(columns, required)
    )


_ROWS = {
    "arena-rank": formats.arena_rank_rows,
    "llmfao": formats.llmfao_rows,
    "openwebui": formats.openwebui_rows,
}


def battles_import(
    *,
    path: str | Path,
    fmt: str,
    skip_invalid: bool = False,
    progress: bool = False,
    batch_size: int = 5000,
) -> ImportResult:
    """Import the battles of one file, all or nothing unless ``skip_invalid``.

    Raises ImportFailed (nothing imported) with the problems found, FileNotFoundError when the
    file does not exist, and ValueError for an unknown format.
    """
    if fmt not in IMPORT_FORMATS:
        raise ValueError(f"Unknown format {fmt!r}; expected one of {', '.join(IMPORT_FORMATS)}.")
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    name = str(path)
    now = timezone.now()
    problems: list[Problem] = []
    total_problems = 0
    passed_over = 0
    before = Vote.objects.aggregate(last=Max("id"))["last"] or 0
    with (
        transaction.atomic(),
        explicit_timestamps(Contestant, Judge, PromptSet, Answer, Battle, Turn, Vote, Judgement),
        open_text(
            path, progress=progress, newline="" if fmt in ("arena-rank", "llmfao") else None
        ) as stream,
        deferred_indexes(Battle, Vote),
        larger_page_cache(),
        _gc_paused(),
    ):
        if fmt == "arena":
            reader = arena_jsonl.ArenaReader(now)
            to_pending = reader.rows
            names = None
        elif fmt == "fastchat":
            names = formats.Names(now)

            def to_pending(record) -> list[PendingBattle]:
                return formats.fastchat_battles(record, names, now)

        else:
            names = formats.Names(now)
            rows_of = _ROWS[fmt]

            def to_pending(record) -> list[PendingBattle]:
                return [formats.pending_battle(r, names, now) for r in rows_of(record)]

        with BattleWriter(batch_size=batch_size, now=now) as writer:
            try:
                for line, record in _records(fmt, stream):
                    try:
                        if isinstance(record, InvalidRecord):
                            raise record
                        pending = to_pending(record)
                    except InvalidRecord as exc:
                        total_problems += 1
                        if len(problems) < MAX_PROBLEMS_KEPT:
                            problems.append(Problem(name, line, exc.field, exc.problem))
                        continue
                    except formats.NotPairwise:
                        passed_over += 1
                        continue
                    except UnreadableFile as exc:
                        raise UnreadableFile(line, exc.field, exc.problem) from None
                    if total_problems and not skip_invalid:
                        continue  # already failing: keep validating to report every problem
                    writer.extend(pending)
            except UnreadableFile as exc:
                problems.append(Problem(name, exc.line, exc.field, exc.problem))
                raise ImportFailed(problems, total_problems + 1) from None
            if total_problems and not skip_invalid:
                raise ImportFailed(problems, total_problems)
        counts = writer.counts
        if counts["battles"]:
            analyze(Battle, Vote, Turn, BattleCategory, Judgement)
        quality = review_imported(after_vote_id=before) if counts["vote"] else {}
        created = reader.created if fmt == "arena" else {}
        return ImportResult(
            battles=counts["battles"],
            votes=counts["vote"],
            turns=counts["turn"],
            judgements=counts["judgement"],
            contestants_created=(
                created.get("contestant", 0) if names is None else names.contestants_created
            ),
            categories_created=(
                created.get("category", 0) if names is None else names.categories_created
            ),
            users_created=created.get("users", 0),
            passed_over=passed_over,
            problems=tuple(problems),
            problems_total=total_problems,
            votes_excluded=quality.get("excluded", 0),
            voters_flagged=quality.get("voters_flagged", 0),
        )


def battles_export(*, fmt: str, out: TextIO, progress: bool = False) -> int:
    """Write every battle in ``fmt`` to ``out``; returns the number of records written.

    Reads in chunks of battles, so memory stays bounded. For a consistent snapshot of a
    database that is being written to, run it inside ``transaction.atomic()`` on PostgreSQL.
    """
    if fmt not in EXPORT_FORMATS:
        raise ValueError(f"Unknown format {fmt!r}; expected one of {', '.join(EXPORT_FORMATS)}.")
    bar = tqdm(
        total=Battle.objects.count(),
        unit=" battles",
        disable=None if progress else True,
        file=sys.stderr,
        leave=False,
    )
    written = 0
    with bar:
        if fmt == "arena":
            for record in arena_jsonl.export_records(on_battle=bar.update):
                out.write(arena_jsonl.dumps(record))
                out.write("\n")
                written += 1
        else:
            out.write("[")
            for record in fastchat.export_records(on_battle=bar.update):
                out.write(",\n" if written else "\n")
                out.write(arena_jsonl.dumps(record))
                written += 1
            out.write("\n]\n")
    return written
