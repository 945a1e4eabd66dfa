"""Import battles from a file: `manage.py import_battles FILE --format fastchat`."""

from django.core.management.base import BaseCommand, CommandError

from arena.exchange.service import IMPORT_FORMATS, ImportFailed, battles_import


class Command(BaseCommand):
    help = (
        "Import battles and votes from FastChat clean_battle JSON, an arena-rank CSV, an LLMFAO "
        "CSV, an Open WebUI feedback export or an arena export. All or nothing unless "
        "--skip-invalid; problems are listed as file:line: field: problem."
    )

    def add_arguments(self, parser):
        parser.add_argument("file")
        parser.add_argument("--format", required=True, choices=IMPORT_FORMATS, dest="fmt")
        parser.add_argument(
            "--skip-invalid",
            action="store_true",
            help="Import the valid records and report the invalid ones instead of failing.",
        )
        parser.add_argument("--batch-size", type=int, default=5000)
        parser.add_argument("--no-progress", action="store_true", help="No progress bar.")

    def handle(self, *args, file, fmt, skip_invalid, batch_size, no_progress, **options):
        try:
            result = battles_import(
                path=file,
                fmt=fmt,
                skip_invalid=skip_invalid,
                progress=not no_progress,
                batch_size=batch_size,
            )
        except FileNotFoundError as exc:
            raise CommandError(str(exc)) from None
        except ImportFailed as exc:
            for line in exc.lines():
                self.stderr.write(line)
            raise CommandError(
                f"Nothing was imported: {exc.total} invalid record{'s' * (exc.total != 1)}. "
                "Fix them, or pass --skip-invalid to import the valid ones."
            ) from None
        for problem in result.problems:
            self.stderr.write(f"skipped {problem}")
        if result.problems_total > len(result.problems):
            self.stderr.write(f"... and {result.problems_total - len(result.problems)} more")
        self.stdout.write(self.style.SUCCESS(result.summary()))
