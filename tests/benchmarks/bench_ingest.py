"""Benchmark: external battles through POST /api/battles/batch/ into PostgreSQL.

    .venv/bin/python tests/benchmarks/bench_ingest.py [--batches 10 --size 5000]
        [--postgres postgres://postgres@127.0.0.1:5432/postgres] [--http]

Creates the throwaway database ``arena_bench_ingest``, migrates it, makes two contestants and a
`vote` token, then sends ``--batches`` batches of ``--size`` battles (a prompt and two short
answers each, from 97 voters) through the whole Django stack in this process (middleware,
token check, JSON parsing, validation, identity-leak check, key claim, COPY, counts, and after
the commit the vote-quality review of the batch), in this process; with ``--http``, over a
loopback socket to a Daphne process serving ``arena.asgi`` (ASGI, HTTP parsing, the view in
Django's sync thread), with httpx as the client. Prints battles per second
per batch, the median and the load average. Target: >= 5,000 battles/s.

As the reference, measured in the same run and database: the importer's path
(``battles_import`` of a FastChat file, ``bench_import.py``'s data) on as many battles, after
the API's. The voters pass the daily vote limit from the fifth batch on (5,000 / 97 votes each
per batch), so the review excludes votes from then on, as it would in production.
"""

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DB = "arena_bench_ingest"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--batches", type=int, default=10)
    parser.add_argument("--size", type=int, default=5000)
    parser.add_argument("--postgres", default="postgres://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--http", action="store_true", help="post to a Daphne server")
    args = parser.parse_args()
    import psycopg

    with psycopg.connect(args.postgres, autocommit=True) as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {DB} WITH (FORCE)")
        admin.execute(f"CREATE DATABASE {DB}")
    try:
        run(args)
    finally:
        from django.db import connections

        connections.close_all()
        with psycopg.connect(args.postgres, autocommit=True) as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {DB} WITH (FORCE)")


def run(args) -> None:
    sys.path.insert(0, str(ROOT))
    os.environ["DATABASE_URL"] = args.postgres.rsplit("/", 1)[0] + "/" + DB
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "arena.settings")
    os.environ.setdefault("ARENA_REFRESH_AFTER_VOTES", "0")
    os.environ["ARENA_API_REQUESTS_PER_MINUTE"] = "0"
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.test import Client

    from arena.api.tokens import token_create
    from arena.models import Contestant, Vote, VoteReview

    call_command("migrate", verbosity=0)
    Contestant.objects.create(name="Alpha", organisation="Acme")
    Contestant.objects.create(name="Beta", organisation="Bolt")
    user = get_user_model().objects.create_user("bench")
    secret = token_create(user=user, name="bench", scopes=["vote"]).secret
    with tempfile.TemporaryDirectory(prefix="arena-bench-") as tmp:
        if args.http:
            from tests.support import daphne_server

            with daphne_server(os.environ.copy(), Path(tmp) / "daphne.log") as base:
                rates = _batches(args, _http_post(base, secret))
        else:
            client = Client(HTTP_AUTHORIZATION=f"Bearer {secret}", SERVER_NAME="127.0.0.1")

            def post(body: str):
                response = client.post("/api/battles/batch/", body, content_type="application/json")
                return response.status_code, response.content

            rates = _batches(args, post)
    n = args.batches * args.size
    assert Vote.objects.count() == n == VoteReview.objects.count()
    excluded = VoteReview.objects.filter(status=VoteReview.Status.EXCLUDED).count()
    load = os.getloadavg()
    how = "over HTTP to Daphne" if args.http else "in process"
    print(
        f"median {statistics.median(rates):,.0f} battles/s {how} over {args.batches} batches of "
        f"{args.size} (target >= 5,000/s); {n:,} votes reviewed, {excluded:,} excluded; "
        f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}"
    )
    reference(n)


def _http_post(base: str, secret: str):
    """A function posting a body to the batch endpoint of the server at ``base``."""
    import httpx

    client = httpx.Client(headers={"Authorization": f"Bearer {secret}"}, timeout=120)

    def post(body: str):
        response = client.post(
            base + "/api/battles/batch/", content=body, headers={"Content-Type": "application/json"}
        )
        return response.status_code, response.content

    return post


def _batches(args, post) -> list[float]:
    rates = []
    for batch in range(args.batches):
        records = [
            {
                "key": f"b{batch}-{i}",
                "model_a": "Alpha",
                "model_b": "Beta",
                "prompt": f"Question {i}: what is {i} + {batch}?",
                "answer_a": f"It is {i + batch}.",
                "answer_b": f"The sum is {i + batch}, as computed.",
                "outcome": ("a", "b", "tie", "both_bad")[i % 4],
                "voter": f"user-{i % 97}",
            }
            for i in range(args.size)
        ]
        body = json.dumps({"records": records})
        start = time.perf_counter()
        status, content = post(body)
        seconds = time.perf_counter() - start
        assert status == 201, content[:500]
        rates.append(args.size / seconds)
        print(f"batch {batch}: {args.size} battles in {seconds:.3f} s, {rates[-1]:,.0f}/s")
    return rates


def reference(n: int) -> None:
    """The importer's path on ``n`` FastChat battles, into the same database."""
    from arena.exchange.service import battles_import
    from tests.benchmarks.bench_import import generate

    with tempfile.TemporaryDirectory(prefix="arena-bench-") as tmp:
        path = Path(tmp) / "clean_battle.json"
        generate(path, n)
        started = time.perf_counter()
        result = battles_import(path=path, fmt="fastchat", progress=False)
        seconds = time.perf_counter() - started
    load = os.getloadavg()
    print(
        f"reference, the importer's path: {result.battles:,} battles in {seconds:.2f} s = "
        f"{result.battles / seconds:,.0f} battles/s; "
        f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}"
    )


if __name__ == "__main__":
    main()
