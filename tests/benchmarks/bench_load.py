"""Load check on PostgreSQL with the default settings: bursts of HTTP requests and battles.

    .venv/bin/python tests/benchmarks/bench_load.py [--requests 200] [--battles 100] \\
        [--database-url postgres://postgres@127.0.0.1:5432/arena_bench_load]

Creates a throwaway PostgreSQL database (dropped afterwards), one Daphne process with the
default settings (debug off, the default connection pool), two contestants on a local
OpenAI-protocol upstream in its own process, and one signed-in user per battle. Then:

1. ``--requests`` concurrent HTTP requests (pages, the JSON API, eval-set vote POSTs that must
   be refused cleanly), three bursts;
2. ``--battles`` concurrent live battles over WebSockets, each voted on at the end.

Meanwhile it samples ``pg_stat_activity`` every 20 ms and prints the peak number of
connections to the database beside the configured pool size. Prints errors (any 5xx, failed
request or battle), votes recorded against votes revealed (none lost or doubled) and times.
Asserts nothing about time; exits 1 on any error or vote mismatch.
"""

import argparse
import asyncio
import contextlib
import json
import random
import secrets
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import httpx  # noqa: E402
import psycopg  # noqa: E402
from bench_battles import (  # noqa: E402
    MODEL_IDS,
    MODELS,
    SESSIONS,
    BattleRun,
    ProcessUpstream,
    daphne,
    play,
    throwaway_postgres,
)

from tests.support import manage, server_env  # noqa: E402

COUNT_VOTES = (
    "from arena.models import Vote; import json; "
    "print(json.dumps({'votes': Vote.objects.count(), "
    "'battles': Vote.objects.values('battle').distinct().count()}))"
)


class ConnectionSampler:
    """The peak number of server connections to one database, sampled in a thread."""

    def __init__(self, url: str, name: str, period: float = 0.02):
        self.url, self.name, self.period = url, name, period
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with psycopg.connect(self.url, autocommit=True) as conn:
            while not self._stop.is_set():
                row = conn.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = %s "
                    "AND pid <> pg_backend_pid()",
                    [self.name],
                ).fetchone()
                self.peak = max(self.peak, int(row[0]))
                time.sleep(self.period)

    def __enter__(self) -> "ConnectionSampler":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(5)


async def http_burst(base: str, cookie: str, n: int) -> dict:
    """n concurrent requests: pages, the JSON API and refused eval-set vote POSTs."""
    name, key = cookie.split("=", 1)
    limits = httpx.Limits(max_connections=n, max_keepalive_connections=n)
    async with httpx.AsyncClient(
        base_url=base, cookies={name: key}, limits=limits, timeout=60
    ) as client:
        first = await client.get("/evalsets/")
        token = client.cookies.get("csrftoken") or ""
        paths = ["/", "/leaderboard/", "/api/leaderboards/", "/evalsets/", "/battle/", "/healthz"]

        async def one(i: int) -> int:
            try:
                if i % 4 == 3:  # a vote on a battle that is not there: refused, never a 500
                    response = await client.post(
                        "/evalsets/1/vote/",
                        data={"battle": str(10**6 + i), "outcome": "a"},
                        headers={"X-CSRFToken": token, "Referer": base + "/evalsets/"},
                    )
                else:
                    response = await client.get(paths[i % len(paths)])
                return response.status_code
            except httpx.HTTPError:
                return -1

        started = time.monotonic()
        codes = await asyncio.gather(*(one(i) for i in range(n)))
        wall = time.monotonic() - started
    errors = [c for c in codes if c < 0 or c >= 500]
    return {"first": first.status_code, "codes": codes, "errors": len(errors), "wall": wall}


async def battle_burst(ws_url: str, origin: str, cookies: list[str], seed: int) -> list[BattleRun]:
    rng = random.Random(seed)
    go = asyncio.Event()
    runs = [BattleRun(prompt=f"load check prompt {i}") for i in range(len(cookies))]
    tasks = [
        asyncio.create_task(play(ws_url, origin, cookie, run, go, rng))
        for cookie, run in zip(cookies, runs, strict=True)
    ]
    deadline = time.monotonic() + 30
    while not all(run.connected for run in runs) and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    go.set()
    await asyncio.wait_for(asyncio.gather(*tasks), 180)
    return runs


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--bursts", type=int, default=3)
    parser.add_argument("--battles", type=int, default=100)
    parser.add_argument(
        "--database-url", default="postgres://postgres@127.0.0.1:5432/arena_bench_load"
    )
    args = parser.parse_args()
    name = args.database_url.rsplit("/", 1)[1]
    admin_url = args.database_url.rsplit("/", 1)[0] + "/postgres"
    with contextlib.ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="arena-bench-load-")))
        upstream = stack.enter_context(ProcessUpstream(0.2, 0.01, 30))
        for model_id in MODEL_IDS.values():
            upstream.set_behaviour(model_id, "slow:ttft=0.2,delay=0.01,tokens=30")
        env = server_env(
            tmp,
            DATABASE_URL=stack.enter_context(throwaway_postgres(args.database_url)),
            ARENA_LOG_LEVEL="WARNING",
            ARENA_ALLOWED_HOSTS="127.0.0.1",
            ARENA_DEBUG="0",
            ARENA_SECRET_KEY=secrets.token_urlsafe(50),
            ARENA_SECURE_COOKIES="0",
            ARENA_REFRESH_AFTER_VOTES="0",
        )
        manage(env, "migrate", "--verbosity", "0")
        manage(env, "collectstatic", "--noinput", "--verbosity", "0")  # debug is off
        (tmp / "models.toml").write_text(MODELS.format(url=upstream.url))
        manage(env, "models", "sync", str(tmp / "models.toml"))
        out = manage(env, "shell", "-c", SESSIONS.format(n=args.battles)).stdout
        sessions = json.loads(out.strip().splitlines()[-1])
        cookies = [f"{sessions['cookie']}={key}" for key in sessions["keys"]]
        pool = (
            manage(
                env,
                "shell",
                "-c",
                "from django.db import connection as c; "
                "print(c.settings_dict['OPTIONS']['pool']['max_size'])",
            )
            .stdout.strip()
            .splitlines()[-1]
        )
        base, _pid = stack.enter_context(daphne(env, tmp / "daphne.log"))
        sampler = stack.enter_context(ConnectionSampler(admin_url, name))
        problems = 0
        for burst in range(1, args.bursts + 1):
            result = asyncio.run(http_burst(base, cookies[0], args.requests))
            codes = sorted(set(result["codes"]))
            problems += result["errors"]
            print(
                f"HTTP burst {burst}: {args.requests} concurrent requests in "
                f"{result['wall']:.2f} s, status codes {codes}, errors (5xx or failed) "
                f"{result['errors']}; peak PostgreSQL connections so far {sampler.peak}",
                flush=True,
            )
        started = time.monotonic()
        runs = asyncio.run(
            battle_burst(base.replace("http://", "ws://") + "/ws/battle/", base, cookies, 0)
        )
        wall = time.monotonic() - started
        peak = sampler.peak  # before this script's own shell below connects
        failed = [run for run in runs if not run.voted or run.errors]
        revealed = sum(run.voted for run in runs)
        counted = json.loads(
            manage(env, "shell", "-c", COUNT_VOTES).stdout.strip().splitlines()[-1]
        )
        problems += len(failed) + (counted["votes"] != revealed) + (counted["battles"] != revealed)
        print(
            f"battles: {args.battles} at once in {wall:.2f} s; failed {len(failed)}; "
            f"votes revealed {revealed}, stored {counted['votes']} on {counted['battles']} "
            f"battles (lost or doubled: {abs(counted['votes'] - revealed)})",
            flush=True,
        )
        for run in failed[:5]:
            print(f"  ! {run.errors[:2]}")
        print(
            f"SUMMARY requests={args.requests}x{args.bursts} battles={args.battles} "
            f"errors={problems} peak_pg_connections={peak} "
            f"pool_max_size_per_process={pool} daphne_processes=1"
        )
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
