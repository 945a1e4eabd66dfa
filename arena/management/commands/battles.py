"""`manage.py battles sweep`: void the battles a crashed server process left streaming."""

from datetime import timedelta

from django.core.management.base import BaseCommand, CommandError

from arena.battles.services import battle_sweep_age, battle_sweep_stale


class Command(BaseCommand):
    help = "Void battles left 'streaming' by a crash (they can never be voted on)."

    def add_arguments(self, parser):
        parser.add_argument("action", choices=["sweep"])
        parser.add_argument(
            "--older-than",
            type=float,
            help="Seconds a round may stream (default: ARENA_SWEEP_STREAMING_AFTER).",
        )

    def handle(self, *args, action, older_than, **options):
        if older_than is not None and older_than <= 0:
            raise CommandError("--older-than must be a positive number of seconds")
        age = battle_sweep_age() if older_than is None else timedelta(seconds=older_than)
        swept = battle_sweep_stale(older_than=age)
        self.stdout.write(f"Voided {swept} battle(s) left streaming for over {age}.")
