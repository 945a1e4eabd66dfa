"""Export every battle: `manage.py export_battles --format arena --output battles.jsonl`."""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from arena.exchange.service import EXPORT_FORMATS, battles_export


class _Unended:
    """Write to a command's stdout without the newline it adds to every write."""

    def __init__(self, wrapper):
        self._wrapper = wrapper

    def write(self, text: str) -> None:
        self._wrapper.write(text, ending="")


class Command(BaseCommand):
    help = (
        "Export battles with their turns, votes, judgements and categories: the arena's own "
        "lossless JSON Lines (arena) or FastChat clean_battle JSON (fastchat)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--format", required=True, choices=EXPORT_FORMATS, dest="fmt")
        parser.add_argument("--output", help="File to write (default: standard output).")
        parser.add_argument("--no-progress", action="store_true", help="No progress bar.")

    def handle(self, *args, fmt, output, no_progress, **options):
        if output is None:
            written = battles_export(fmt=fmt, out=_Unended(self.stdout), progress=not no_progress)
            self.stderr.write(f"Exported {written} records.")
            return
        path = Path(output)
        if not path.parent.is_dir():
            raise CommandError(f"{path.parent}: no such folder")
        tmp = path.with_name(path.name + ".part")
        try:
            with open(tmp, "w", encoding="utf-8", newline="\n") as out:
                written = battles_export(fmt=fmt, out=out, progress=not no_progress)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        tmp.replace(path)  # a reader never sees half a file
        self.stdout.write(self.style.SUCCESS(f"Exported {written} records to {path}."))
