"""Benchmark: import FastChat clean_battle battles (no conversations) on SQLite and PostgreSQL.

    .venv/bin/python tests/benchmarks/bench_import.py               # 1,000,000 battles, both
    .venv/bin/python tests/benchmarks/bench_import.py --n 100000 --backend postgres

Writes a JSON array of ``--n`` battles between 76 models to a temporary file, then for each
backend migrates a throwaway database (a temporary SQLite file; ``arena_bench`` created and
dropped on the PostgreSQL server at ``--postgres``) and times ``battles_import`` on it in a
child process. Prints figures; asserts nothing about time. Target: >= 50,000 battles/s on
PostgreSQL.
"""

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
WINNERS = ("model_a", "model_b", "tie", "tie (bothbad)")
WINNER_WEIGHTS = (0.35, 0.35, 0.2, 0.1)


def generate(path: Path, n: int, seed: int = 0) -> None:
    rng = random.Random(seed)
    models = [f"model-{i:02d}" for i in range(76)]
    start = 1_700_000_000.0
    with open(path, "w", encoding="utf-8") as out:
        out.write("[\n")
        for i in range(n):
            a, b = rng.sample(models, 2)
            record = {
                "model_a": a,
                "model_b": b,
                "winner": rng.choices(WINNERS, WINNER_WEIGHTS)[0],
                "judge": f"arena_user_{rng.randrange(50_000)}",
                "turn": 1,
                "anony": True,
                "language": "English",
                "tstamp": start + i * 0.5,
            }
            out.write(json.dumps(record))
            out.write(",\n" if i < n - 1 else "\n")
        out.write("]\n")


def run_one(path: Path) -> None:
    """In the child process: migrate the database of DATABASE_URL, import, print figures."""
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "arena.settings")
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    from arena.exchange.service import battles_import
    from arena.models import Battle, Vote

    call_command("migrate", verbosity=0, interactive=False)
    started = time.perf_counter()
    result = battles_import(path=path, fmt="fastchat", progress=False)
    seconds = time.perf_counter() - started
    assert result.battles == Battle.objects.count() == Vote.objects.count()
    print(
        f"{connection.vendor:>10}: {result.battles:>9,} battles in {seconds:6.1f} s = "
        f"{result.battles / seconds:>8,.0f} battles/s",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=1_000_000, help="battles (default 1,000,000)")
    parser.add_argument("--backend", choices=("sqlite", "postgres", "both"), default="both")
    parser.add_argument(
        "--postgres",
        default=os.environ.get("ARENA_BENCH_POSTGRES", "postgres://postgres@127.0.0.1:5432"),
        help="PostgreSQL server URL without a database name",
    )
    parser.add_argument("--run-one", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.run_one:
        run_one(args.run_one)
        return

    with tempfile.TemporaryDirectory(prefix="arena-bench-") as tmp:
        tmp = Path(tmp)
        path = tmp / "clean_battle.json"
        started = time.perf_counter()
        generate(path, args.n)
        print(
            f"generated {args.n:,} FastChat battles ({path.stat().st_size / 1e6:.0f} MB) in "
            f"{time.perf_counter() - started:.1f} s",
            flush=True,
        )
        env = {k: v for k, v in os.environ.items() if not k.startswith("ARENA_")}
        env.update(ARENA_DATA_DIR=str(tmp), ARENA_LOG_LEVEL="WARNING")
        child = [sys.executable, __file__, "--run-one", str(path)]
        if args.backend in ("sqlite", "both"):
            env["DATABASE_URL"] = f"sqlite:///{tmp / 'bench.sqlite3'}"
            subprocess.run(child, env=env, cwd=ROOT, check=True)
        if args.backend in ("postgres", "both"):
            import psycopg

            server = args.postgres.rstrip("/")
            with psycopg.connect(f"{server}/postgres", autocommit=True) as admin:
                admin.execute("DROP DATABASE IF EXISTS arena_bench")
                admin.execute("CREATE DATABASE arena_bench")
            try:
                env["DATABASE_URL"] = f"{server}/arena_bench"
                subprocess.run(child, env=env, cwd=ROOT, check=True)
            finally:
                with psycopg.connect(f"{server}/postgres", autocommit=True) as admin:
                    admin.execute("DROP DATABASE IF EXISTS arena_bench")


if __name__ == "__main__":
    main()
