"""Benchmark of the vote-quality sequential test on a simulated arena with injected bad voters.

    .venv/bin/python tests/benchmarks/bench_voters.py            # 5 seeds, 500 voters, 60k votes
    .venv/bin/python tests/benchmarks/bench_voters.py --seeds 1 --votes 20000   # quick

True strengths: the 2024-03-29 Chatbot Arena ratings (tests/data/chatbot-arena-20240329). 5% of
voters vote at random, 2% vote only on battles showing a target model (10th on the true board)
and always pick it; see tests/ratings/voter_sim.py. Each vote is checked online, in order,
against a Bradley-Terry fit of the votes kept so far, refitted every --refit votes. Prints
per-voter detection precision and recall, flag rates per kind of voter, and the target's
rating shift (fitted minus fitted on honest votes only) with every vote counted and with the
flagged voters' votes left out. Medians over the seeds. The per-vote checks (too fast, votes
per day, repeated prompts) are not simulated here: they depend on timing and prompts.
"""

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import ratings  # noqa: E402
from tests.ratings.voter_sim import HONEST, detection, fitted, simulate  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--voters", type=int, default=500)
    parser.add_argument("--votes", type=int, default=60_000)
    parser.add_argument("--refit", type=int, default=5_000)
    args = parser.parse_args()
    rows = []
    started = time.perf_counter()
    for seed in range(args.seeds):
        arena = simulate(
            n_voters=args.voters, n_votes=args.votes, refit_every=args.refit, seed=seed
        )
        honest = arena.kind[arena.voter] == HONEST
        base = fitted(arena, honest)[arena.target]
        row = detection(arena)
        row["shift_without_checks"] = fitted(arena, np.ones_like(honest))[arena.target] - base
        row["shift_with_checks"] = fitted(arena, arena.rated)[arena.target] - base
        row["votes_kept"] = float(arena.rated.mean())
        rows.append(row)
    elapsed = time.perf_counter() - started
    print(
        f"{args.seeds} seeds x {args.voters} voters x {args.votes} votes, refit every "
        f"{args.refit}; threshold log(1000) = {ratings.VOTER_THRESHOLD:.2f}; "
        f"load average {os.getloadavg()[0]:.2f}; {elapsed:.1f} s"
    )
    for key in rows[0]:
        values = [r[key] for r in rows]
        print(
            f"  {key:22s} median {statistics.median(values):8.3f}   "
            f"range {min(values):8.3f} .. {max(values):8.3f}"
        )


if __name__ == "__main__":
    main()
