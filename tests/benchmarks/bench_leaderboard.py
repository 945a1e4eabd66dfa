"""Benchmark: a leaderboard refresh from PostgreSQL, and page renders from a snapshot.

    .venv/bin/python tests/benchmarks/bench_leaderboard.py [--votes 1000000] [--models 100]
        [--categories 10] [--rounds 1000] [--repeats 3] [--database-url postgres://...]
        [--keep] [--reuse]

Creates a throwaway database (``arena_bench`` on the local server by default), migrates it,
loads simulated votes with COPY (skewed pair frequencies, 30% ties, each battle in one or two
of the categories), builds the vote counts from them (``counts_rebuild``, what recording the
votes one by one would have kept), then times ``leaderboard_refresh`` (overall + every
category, 1,000 bootstrap rounds; it reads the counts, not the votes) and the leaderboard page
read from the stored snapshot. Prints each phase and medians; asserts nothing about time.
Targets: refresh <= 3 s whatever the number of votes (issue 16), page p95 <= 100 ms.
``--name`` keeps databases of several sizes side by side for ``--reuse``.
"""

import argparse
import os
import statistics
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import numpy as np
import psycopg

ROOT = Path(__file__).resolve().parents[2]


def _database(url: str, name: str, reuse: bool) -> tuple[str, bool]:
    """The benchmark database's URL, and whether it was made anew (else reused as it is)."""
    parts = urlsplit(url)
    admin = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(admin, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if not (reuse and exists):
            conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
            conn.execute(f'CREATE DATABASE "{name}"')
    return urlunsplit(parts._replace(path=f"/{name}")), not (reuse and exists)


def _drop(url: str, name: str) -> None:
    admin = urlunsplit(urlsplit(url)._replace(path="/postgres"))
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _simulate(n_votes, n_models, n_categories, rng):
    strength = rng.normal(0, 1, n_models)
    popularity = rng.pareto(1.5, n_models) + 0.2  # some models battle far more than others
    p = popularity / popularity.sum()
    a = rng.choice(n_models, n_votes, p=p)
    b = rng.choice(n_models, n_votes, p=p)
    same = a == b
    b[same] = (b[same] + 1 + rng.integers(0, n_models - 1, same.sum())) % n_models
    win = 1 / (1 + np.exp(strength[b] - strength[a]))
    u = rng.random(n_votes)
    outcome = np.where(u < 0.3, "tie", np.where(rng.random(n_votes) < win, "a", "b"))
    first = rng.integers(0, n_categories, n_votes)
    second = np.where(rng.random(n_votes) < 0.3, rng.integers(0, n_categories, n_votes), -1)
    return a, b, outcome, first, second


def _load(url, n_votes, n_models, n_categories, seed):
    from django.db import connection

    from arena.models import Category, Contestant

    rng = np.random.default_rng(seed)
    contestants = Contestant.objects.bulk_create(
        [Contestant(name=f"model-{k:03d}", kind="recorded", active=False) for k in range(n_models)]
    )
    categories = Category.objects.bulk_create(
        [Category(slug=f"cat-{k}", name=f"Category {k}") for k in range(n_categories)]
    )
    cid = [c.pk for c in contestants]  # plain ints: formatted millions of times
    cat = [c.pk for c in categories]
    a, b, outcome, first, second = (
        x.tolist() for x in _simulate(n_votes, n_models, n_categories, rng)
    )
    now = "2026-11-01 00:00:00+00"
    started = time.perf_counter()
    with connection.cursor() as cursor:
        raw = cursor.connection
        with raw.cursor() as cur:
            # COPY text built a chunk at a time (psycopg's write_row per row is several times
            # slower at millions of rows).
            chunk = 200_000
            with cur.copy(
                "COPY arena_battle (id, contestant_a_id, contestant_b_id, mode, status, "
                "external_id, created_at) FROM STDIN"
            ) as copy:
                for lo in range(0, n_votes, chunk):
                    ks = range(lo, min(lo + chunk, n_votes))
                    copy.write(
                        "".join(
                            f"{k + 1}\t{cid[a[k]]}\t{cid[b[k]]}\timported\tvoted\t\t{now}\n"
                            for k in ks
                        )
                    )
            with cur.copy(
                "COPY arena_vote (id, battle_id, voter_label, outcome, reason_tags, void_reason, "
                "created_at) FROM STDIN"
            ) as copy:
                for lo in range(0, n_votes, chunk):
                    ks = range(lo, min(lo + chunk, n_votes))
                    copy.write(
                        "".join(
                            f"{k + 1}\t{k + 1}\t\t{outcome[k]}\t[]\t\t"
                            f"2026-{1 + k * 10 // n_votes:02d}-15 12:00:00+00\n"
                            for k in ks
                        )
                    )
            with cur.copy(
                "COPY arena_battlecategory (battle_id, category_id, assigner) FROM STDIN"
            ) as copy:
                for lo in range(0, n_votes, chunk):
                    lines = []
                    for k in range(lo, min(lo + chunk, n_votes)):
                        lines.append(f"{k + 1}\t{cat[first[k]]}\timport\n")
                        if second[k] >= 0 and second[k] != first[k]:
                            lines.append(f"{k + 1}\t{cat[second[k]]}\timport\n")
                    copy.write("".join(lines))
            cur.execute("SELECT setval('arena_battle_id_seq', %s)", (n_votes,))
            cur.execute("SELECT setval('arena_vote_id_seq', %s)", (n_votes,))
            cur.execute("ANALYZE")
    print(f"loaded {n_votes:,} votes in {time.perf_counter() - started:.1f} s (setup)")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--votes", type=int, default=1_000_000)
    parser.add_argument("--models", type=int, default=100)
    parser.add_argument("--categories", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--renders", type=int, default=200)
    parser.add_argument("--database-url", default="postgres://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--keep", action="store_true", help="Keep the benchmark database.")
    parser.add_argument("--name", default="arena_bench_leaderboard", help="Database name.")
    parser.add_argument(
        "--reuse",
        action="store_true",
        help="Reuse a benchmark database kept by --keep (same sizes) instead of loading anew; "
        "implies --keep.",
    )
    args = parser.parse_args()

    name = args.name
    url, fresh = _database(args.database_url, name, args.reuse)
    os.environ.update(
        DATABASE_URL=url,
        DJANGO_SETTINGS_MODULE="arena.settings",
        ARENA_LEADERBOARD_ROUNDS=str(args.rounds),
        ARENA_MIN_VOTES="30",
        ARENA_ALLOWED_HOSTS="testserver",
    )
    os.environ.pop("REDIS_URL", None)
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.conf import settings

    # The pages render in-process without collectstatic (as in the tests): plain storage.
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.test import Client

    from arena.leaderboards.refresh import leaderboard_refresh

    try:
        call_command("migrate", verbosity=0)
        from arena.battles.counts import counts_rebuild
        from arena.models import LeaderboardSnapshot, PairCount, Vote

        if fresh:
            _load(url, args.votes, args.models, args.categories, seed=1)
        else:
            LeaderboardSnapshot.objects.all().delete()
            print(f"reusing {Vote.objects.count():,} votes in {name} (--reuse)")
        if fresh or not PairCount.objects.exists():
            started = time.perf_counter()
            counts_rebuild()
            rows = PairCount.objects.filter(n__gt=0).count()
            print(f"counts rebuilt: {rows:,} rows in {time.perf_counter() - started:.1f} s (setup)")

        timings = []
        for repeat in range(args.repeats):
            phases = {}
            last = [time.perf_counter()]

            def step(message, phases=phases, last=last):
                now = time.perf_counter()
                phases[message] = now
                last[0] = now

            started = time.perf_counter()
            made = leaderboard_refresh(progress=step, seed=repeat)
            total = time.perf_counter() - started
            marks = list(phases.items()) + [("end", time.perf_counter())]
            parts = {marks[k][0]: marks[k + 1][1] - marks[k][1] for k in range(len(marks) - 1)}
            timings.append(total)
            detail = ", ".join(f"{k} {v:.2f} s" for k, v in parts.items())
            print(f"refresh {repeat + 1}: {total:.2f} s ({len(made)} snapshots; {detail})")
        print(
            f"refresh median: {statistics.median(timings):.2f} s for {args.votes:,} votes, "
            f"{args.models} models, {args.categories} categories, {args.rounds} bootstrap "
            "rounds (target <= 3 s, independent of the number of votes)"
        )

        user, _ = get_user_model().objects.get_or_create(username="bench")
        client = Client()
        client.force_login(user)
        pages = [
            "/leaderboard/",
            "/leaderboard/?category=cat-3",
            "/leaderboard/compare/?a=model-001&b=model-002",
            "/api/leaderboards/",
        ]
        for path in pages:
            assert client.get(path).status_code == 200, path  # warm up
            render = []
            for _ in range(args.renders):
                started = time.perf_counter()
                response = client.get(path)
                render.append(time.perf_counter() - started)
                assert response.status_code == 200
            render.sort()
            p95 = render[int(0.95 * len(render)) - 1]
            print(
                f"render {path}: median {1000 * statistics.median(render):.1f} ms, "
                f"p95 {1000 * p95:.1f} ms over {args.renders} (target p95 <= 100 ms)"
            )
    finally:
        from django.db import connections

        connections.close_all()
        if not (args.keep or args.reuse):
            _drop(args.database_url, name)


if __name__ == "__main__":
    main()
