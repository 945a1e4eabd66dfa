"""`manage.py leaderboard refresh`: recompute leaderboard snapshots on demand;
`manage.py leaderboard rebuild-counts`: recompute the vote counts a refresh reads from the votes."""

import sys
import time

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from arena.battles.counts import counts_rebuild
from arena.leaderboards.refresh import leaderboard_refresh
from arena.models import Judge, PairCount

PHASES = ["reading votes", "fitting boards", "style control", "storing snapshots"]


class Command(BaseCommand):
    help = "Recompute leaderboards (human votes, and judges) and store complete snapshots."

    def add_arguments(self, parser):
        parser.add_argument("action", choices=["refresh", "rebuild-counts"])
        who = parser.add_mutually_exclusive_group()
        who.add_argument("--judge", help="Only this judge's board.")
        who.add_argument("--all", action="store_true", help="Human votes and every judge.")
        parser.add_argument(
            "--n-resamples", type=int, help="Bootstrap resamples (default: settings)."
        )
        parser.add_argument("--seed", type=int, help="Bootstrap seed (default: settings).")
        parser.add_argument("--cutoff", type=int, help="Last vote (or judgement) id to count.")

    def handle(self, *args, action, judge, all, n_resamples, seed, cutoff, **options):
        if n_resamples is not None and n_resamples < 1:
            raise CommandError("--n-resamples must be at least 1")
        if action == "rebuild-counts":
            started = time.perf_counter()
            counts_rebuild()
            rows = PairCount.objects.filter(n__gt=0).count()
            elapsed = time.perf_counter() - started
            self.stdout.write(f"vote counts rebuilt: {rows:,} pair rows in {elapsed:.1f} s")
            return
        targets = [None]
        if judge:
            found = Judge.objects.filter(name=judge).first()
            if found is None:
                raise CommandError(f"No judge named {judge!r}.")
            targets = [found]
        elif all:
            targets += list(Judge.objects.order_by("name"))
        for target in targets:
            label = f"judge {target.name}" if target else "human votes"
            started = time.perf_counter()
            with tqdm(
                total=len(PHASES),
                desc=label,
                unit="phase",
                leave=False,
                disable=not sys.stderr.isatty(),  # no carriage-return bars in log files
            ) as bar:

                def step(message, bar=bar):
                    bar.set_postfix_str(message)
                    if message != PHASES[0]:
                        bar.update(1)

                made = leaderboard_refresh(
                    judge=target,
                    cutoff_id=cutoff,
                    seed=seed,
                    n_resamples=n_resamples,
                    progress=step,
                )
                bar.update(bar.total - bar.n)
            elapsed = time.perf_counter() - started
            if made:
                self.stdout.write(
                    f"{label}: {len(made)} snapshots (overall and per category, plain and "
                    f"style-controlled) up to #{made[0].cutoff_vote_id} in {elapsed:.1f} s"
                )
            else:
                self.stdout.write(f"{label}: nothing to rate yet")
