"""Benchmark: N concurrent live battles over WebSockets against Daphne and a local upstream.

    .venv/bin/python tests/benchmarks/bench_battles.py        # 50 battles at once x 3 rounds
    .venv/bin/python tests/benchmarks/bench_battles.py --battles 50 --ttft 0.2 --delay 0.01 \\
        --tokens 50 --rounds 3 [--spread 2] [--redis-url redis://127.0.0.1:6379/14] \\
        [--database-url postgres://postgres@127.0.0.1:5432/arena_bench_ws] [--py-spy out.svg]

Starts a fake OpenAI-protocol upstream (tests/benchmarks/bench_upstream.py, one asyncio loop in
a process of its own; ``--upstream thread``: the tests' tests/upstream.py in this process, as
before) with a fixed time to first token (``--ttft``) and token pace (``--delay``, ``--tokens``
words), migrates a throwaway database (SQLite in a temporary data folder; ``--database-url``
names a PostgreSQL database that must not exist yet: it is created, then dropped), syncs two
contestants pointing at the upstream, creates N users with a session each, starts Daphne as a
child process (debug off unless ``--debug``; ``--redis-url`` switches on the Redis channel
layer) and, each round, connects N WebSocket clients that each send a prompt (all at once, or
evenly over ``--spread`` seconds), read every message until ``ready``, vote, and close.

Per side it measures the arena's **added time to first token**: the client's time from sending
the prompt to the first ``chunk`` minus the upstream's own time from receiving the request to
writing its first token (the fake upstream notes both; time.monotonic is one clock for all
processes on Linux). Its parts: prompt -> ``start`` message (the consumer's database work),
prompt -> upstream received the request, upstream's first token -> client's chunk. Also: chunks
lost (tokens the upstream wrote minus tokens in the text the client read, per side; must be 0;
the arena may join a side's tokens into fewer chunk messages, whose median count per side is
printed), CPU seconds of the Daphne process, wall time, and the lag of this process's own event
loop (the clients share it with the upstream's threads: a large lag would mean the figures
include the benchmark's own queueing).

``--settings MODULE`` runs everything with another Django settings module (put its folder on
PYTHONPATH) to try a settings change without editing arena/settings.py; ``--py-spy FILE``
samples Daphne with py-spy during the rounds (needs ``.venv/bin/pip install py-spy``).

Prints figures; asserts nothing about time. Exits 1 when a battle failed or a chunk was lost.
Targets (issue 13): 50 at once, median <= 20 ms and p99 <= 60 ms added time to first token
(aim <= 3x the raw-aiohttp floor, measured after each round: ``--no-floor`` skips it); spread
over 10 s, or one battle: median <= 5 ms.

Needs the ``websockets`` package (a dev dependency):
``.venv/bin/pip install websockets``.
"""

import argparse
import asyncio
import contextlib
import json
import math
import os
import random
import secrets
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

try:
    from websockets.asyncio.client import connect as ws_connect
except ImportError:  # pragma: no cover - depends on the environment
    ws_connect = None


from tests.support import daphne_process, manage, server_env  # noqa: E402
from tests.upstream import FakeUpstream  # noqa: E402

BENCH_UPSTREAM = Path(__file__).with_name("bench_upstream.py")
BENCH_FLOOR = Path(__file__).with_name("bench_floor.py")


class ProcessUpstream:
    """tests/benchmarks/bench_upstream.py in a child process (one asyncio loop of its own);
    its requests are read over HTTP, with the same fields as FakeUpstream's."""

    def __init__(self, ttft: float, delay: float, tokens: int):
        self._args = ["--ttft", str(ttft), "--delay", str(delay), "--tokens", str(tokens)]

    def __enter__(self) -> "ProcessUpstream":
        self._proc = subprocess.Popen(
            [sys.executable, str(BENCH_UPSTREAM), "--port", "0", *self._args],
            stdout=subprocess.PIPE,
            text=True,
        )
        self.port = int(self._proc.stdout.readline().split()[1])
        self.url = f"http://127.0.0.1:{self.port}/v1"
        return self

    def __exit__(self, *exc) -> None:
        self._proc.terminate()
        self._proc.wait(10)

    def set_behaviour(self, model_id: str, spec: str) -> None:
        pass  # one behaviour for all, from the command line

    @property
    def requests(self) -> list:
        import httpx

        rows = httpx.get(f"http://127.0.0.1:{self.port}/_requests", timeout=30).json()
        return [
            RemoteRequest(
                body={"messages": [{"role": "user", "content": r["prompt"]}]},
                model=r["model"],
                received_at=r["received_at"],
                first_token_at=r["first_token_at"],
                tokens_sent=r["tokens_sent"],
            )
            for r in rows
        ]


@dataclass
class RemoteRequest:
    body: dict
    model: str
    received_at: float
    first_token_at: float | None
    tokens_sent: int


MODELS = """
[[model]]
name = "Bench Alpha"
organisation = "Alpha Bench Labs"
kind = "openai"
base_url = "{url}"
model_id = "bench-alpha"
price_input_per_mtok = 1.0
price_output_per_mtok = 2.0

[[model]]
name = "Bench Beta"
organisation = "Beta Bench Labs"
kind = "openai"
base_url = "{url}"
model_id = "bench-beta"
"""
MODEL_IDS = {"Bench Alpha": "bench-alpha", "Bench Beta": "bench-beta"}

# Run by `manage.py shell -c`: N users, one logged-in session each; prints the session keys.
SESSIONS = """
import json
from importlib import import_module
from django.conf import settings
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
from django.contrib.auth import get_user_model
users = get_user_model().objects
store = import_module(settings.SESSION_ENGINE).SessionStore
keys = []
for i in range({n}):
    user = users.filter(username=f"bench{{i:04d}}").first()
    if user is None:
        user = users.create_user(f"bench{{i:04d}}")  # no password: an unusable one
    session = store()
    session[SESSION_KEY] = str(user.pk)
    session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
    session[HASH_SESSION_KEY] = user.get_session_auth_hash()
    session.create()
    keys.append(session.session_key)
print(json.dumps({{"cookie": settings.SESSION_COOKIE_NAME, "keys": keys}}))
"""


# -- one battle, as a client sees it -------------------------------------------------------


@dataclass
class Side:
    first_chunk_at: float | None = None
    chunks: int = 0
    text: str = ""
    stats: dict | None = None
    error: str = ""
    model_id: str = ""


@dataclass
class BattleRun:
    prompt: str
    sent_at: float = 0.0
    start_at: float | None = None
    ready_at: float | None = None
    sides: dict[str, Side] = field(default_factory=lambda: {"a": Side(), "b": Side()})
    errors: list[str] = field(default_factory=list)
    connected: bool = False
    voted: bool = False


async def play(
    url: str,
    origin: str,
    cookie: str,
    run: BattleRun,
    go: asyncio.Event,
    rng: random.Random,
    offset: float = 0.0,
) -> None:
    """Connect, wait for the start signal (+ offset), send the prompt, read until ready, vote,
    close."""
    try:
        async with ws_connect(
            url,
            origin=origin,
            additional_headers={"Cookie": cookie},
            proxy=None,
            ping_interval=None,
            open_timeout=30,
            close_timeout=5,
        ) as ws:
            run.connected = True
            await go.wait()
            if offset:
                await asyncio.sleep(offset)
            run.sent_at = time.monotonic()
            await ws.send(json.dumps({"type": "prompt", "text": run.prompt}))
            async for raw in ws:
                now = time.monotonic()
                message = json.loads(raw)
                kind, side = message.get("type"), message.get("side")
                if kind == "start":
                    run.start_at = now
                elif kind == "chunk":
                    own = run.sides[side]
                    if own.first_chunk_at is None:
                        own.first_chunk_at = now
                    own.chunks += 1
                    own.text += message["text"]
                elif kind == "side_done":
                    run.sides[side].stats = message["stats"]
                elif kind == "error":
                    if side in run.sides:
                        run.sides[side].error = message["message"]
                    else:
                        run.errors.append(message["message"])
                elif kind == "ready":
                    run.ready_at = now
                    if not message.get("can_vote"):
                        run.errors.append(f"cannot vote: {message.get('notice')}")
                        break
                    outcome = rng.choice(("a", "b", "tie", "both_bad"))
                    await ws.send(json.dumps({"type": "vote", "outcome": outcome}))
                elif kind == "revealed":
                    for name in ("a", "b"):
                        run.sides[name].model_id = MODEL_IDS.get(message[name]["name"], "?")
                    run.voted = True
                    break
    except Exception as exc:  # reported with the round's figures
        run.errors.append(f"{type(exc).__name__}: {exc}")


async def loop_lag(samples: list[float], stop: asyncio.Event, period: float = 0.005) -> None:
    """How late this process's event loop wakes up: the clients' own queueing."""
    loop = asyncio.get_running_loop()
    while not stop.is_set():
        expected = loop.time() + period
        await asyncio.sleep(period)
        samples.append(max(0.0, loop.time() - expected))


async def run_round(args, ws_url, origin, cookies, round_no, rng) -> tuple[list[BattleRun], dict]:
    runs = [
        BattleRun(prompt=f"Benchmark round {round_no} battle {i}: write a few words.")
        for i in range(args.battles)
    ]
    go, stop = asyncio.Event(), asyncio.Event()
    lag: list[float] = []
    tasks = [
        asyncio.create_task(play(ws_url, origin, cookie, run, go, rng, i * args.spread / len(runs)))
        for i, (cookie, run) in enumerate(zip(cookies, runs, strict=True))
    ]
    # Let every socket connect (bounded), then release all prompts at once.
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if sum(r.connected or t.done() for r, t in zip(runs, tasks, strict=True)) == len(runs):
            break
        await asyncio.sleep(0.02)
    lag_task = asyncio.create_task(loop_lag(lag, stop))
    started = time.monotonic()
    go.set()
    done, pending = await asyncio.wait(tasks, timeout=args.timeout)
    finished = time.monotonic()
    for task in pending:
        task.cancel()
    for run, task in zip(runs, tasks, strict=True):
        if task in pending:
            run.errors.append(f"no answer within --timeout {args.timeout} s")
    await asyncio.gather(*pending, return_exceptions=True)
    stop.set()
    await lag_task
    readies = [r.ready_at for r in runs if r.ready_at is not None]
    timing = {
        "stream_wall": (max(readies) - started) if readies else float("nan"),
        "round_wall": finished - started,
        "lag": lag,
    }
    return runs, timing


# -- figures -------------------------------------------------------------------------------


def p99(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(0.99 * len(ordered)) - 1)] if ordered else float("nan")


def med(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


@dataclass
class RoundFigures:
    added: list[float] = field(default_factory=list)  # ms
    to_start: list[float] = field(default_factory=list)  # ms, prompt sent -> "start" read
    before: list[float] = field(default_factory=list)  # ms, prompt sent -> upstream got request
    after: list[float] = field(default_factory=list)  # ms, upstream wrote token -> client read
    provider: list[float] = field(default_factory=list)  # ms, arena's ttft_ms - upstream ttft
    lost: int = 0
    messages: list[int] = field(default_factory=list)  # chunk messages per side
    mismatched: int = 0
    failed: int = 0
    problems: list[str] = field(default_factory=list)


def figures(runs: list[BattleRun], upstream, tokens: int) -> RoundFigures:
    expected_text = " ".join(f"word{i}" for i in range(tokens))
    requests = {}
    for req in list(upstream.requests):
        users = [m for m in req.body.get("messages", []) if m.get("role") == "user"]
        if users:
            requests[(users[-1]["content"], req.model)] = req  # the last attempt wins
    out = RoundFigures()
    for run in runs:
        if run.errors or not run.voted:
            out.failed += 1
            out.problems += run.errors or ["no reveal"]
        for name, side in run.sides.items():
            if side.error:
                out.problems.append(f"side {name}: {side.error}")
            req = requests.get((run.prompt, side.model_id))
            if req is None:
                if run.voted:
                    out.problems.append(f"no upstream request for side {name}")
                continue
            # Tokens, not messages: the arena may join a side's chunks into fewer messages.
            out.lost += req.tokens_sent - len(side.text.split())
            out.messages.append(side.chunks)
            out.mismatched += side.text != expected_text
            if side.first_chunk_at is None or req.first_token_at is None:
                continue
            upstream_ttft = req.first_token_at - req.received_at
            out.added.append((side.first_chunk_at - run.sent_at - upstream_ttft) * 1000)
            out.before.append((req.received_at - run.sent_at) * 1000)
            if run.start_at is not None and name == "a":
                out.to_start.append((run.start_at - run.sent_at) * 1000)
            out.after.append((side.first_chunk_at - req.first_token_at) * 1000)
            if side.stats and side.stats.get("ttft_ms") is not None:
                out.provider.append(side.stats["ttft_ms"] - upstream_ttft * 1000)
    return out


def floor_round(upstream, requests: int, tag: str) -> tuple[list[float], float]:
    """Raw aiohttp's added time to first token (ms) for ``requests`` streams at once, from a
    process of its own (tests/benchmarks/bench_floor.py), and that process's CPU seconds."""
    out = subprocess.run(
        [sys.executable, str(BENCH_FLOOR), "--url", upstream.url, "--requests", str(requests)]
        + ["--tag", tag],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    ).stdout
    result = json.loads(out)
    received = {(r.body["messages"][-1]["content"], r.model): r for r in upstream.requests}
    added = []
    for row in result["rows"]:
        req = received.get((row["prompt"], row["model"]))
        if req is None or req.first_token_at is None or row["first_at"] is None:
            continue
        upstream_ttft = req.first_token_at - req.received_at
        added.append((row["first_at"] - row["sent_at"] - upstream_ttft) * 1000)
    return added, result["cpu_s"]


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process (all its threads)."""
    try:
        import psutil

        times = psutil.Process(pid).cpu_times()
        return times.user + times.system
    except ImportError:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# -- services ------------------------------------------------------------------------------


@contextlib.contextmanager
def throwaway_postgres(url: str):
    """Create the database named in ``url`` (it must not exist), drop it afterwards."""
    import psycopg
    from psycopg import sql

    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    if not name:
        raise SystemExit("--database-url must name a database, e.g. .../arena_bench_ws")
    admin_url = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(admin_url, autocommit=True) as admin:
        exists = admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
        if exists:
            raise SystemExit(
                f"Database {name!r} already exists; this benchmark only uses a database it "
                "creates (and drops). Pick another name or drop it first."
            )
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield url
    finally:
        with psycopg.connect(admin_url, autocommit=True) as admin:
            drop = sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)")
            admin.execute(drop.format(sql.Identifier(name)))


@contextlib.contextmanager
def daphne(env: dict[str, str], log_path: Path):
    """Daphne as a child process on a free port; yields (base URL, pid)."""
    with daphne_process(env, log_path) as (base, proc):
        yield base, proc.pid


@contextlib.contextmanager
def py_spy(pid: int, output: Path):
    """Sample Daphne with py-spy (all threads, idle included) until the block ends."""
    exe = Path(sys.executable).with_name("py-spy")
    if not exe.exists():
        raise SystemExit("--py-spy needs py-spy: .venv/bin/pip install py-spy")
    fmt = {".svg": "flamegraph", ".json": "speedscope"}.get(output.suffix, "raw")
    proc = subprocess.Popen(
        [str(exe), "record", "--pid", str(pid), "--output", str(output), "--format", fmt]
        + ["--rate", "250", "--threads", "--idle", "--nonblocking"],
        stdout=subprocess.DEVNULL,
    )
    time.sleep(1)  # let it attach
    try:
        yield
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        print(f"py-spy profile of Daphne written to {output}", flush=True)


# -- main ----------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--battles", type=int, default=50, help="concurrent battles (50)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of N battles (3)")
    parser.add_argument("--ttft", type=float, default=0.2, help="upstream s to first token")
    parser.add_argument("--delay", type=float, default=0.01, help="upstream s between tokens")
    parser.add_argument("--tokens", type=int, default=50, help="words per answer (50)")
    parser.add_argument(
        "--spread",
        type=float,
        default=0.0,
        help="send the N prompts evenly over this many s (0: all at once, the worst case)",
    )
    parser.add_argument("--timeout", type=float, default=120, help="s per round at most (120)")
    parser.add_argument("--database-url", help="postgres://.../NAME: created, then dropped")
    parser.add_argument("--redis-url", help="redis://...: the Redis channel layer")
    parser.add_argument("--debug", action="store_true", help="run Daphne with ARENA_DEBUG=1")
    parser.add_argument(
        "--upstream",
        choices=["process", "thread"],
        default="process",
        help="process: tests/benchmarks/bench_upstream.py in its own process (default); "
        "thread: the tests' FakeUpstream in this process, a thread per connection (its own "
        "queueing behind the clients then counts as the arena's)",
    )
    parser.add_argument(
        "--refresh-after-votes",
        action="store_true",
        help="let the benchmark's votes trigger leaderboard refreshes; without Redis they run "
        "inside Daphne (eager Celery) and compete with the streams, so they are off by default",
    )
    parser.add_argument(
        "--settings",
        default="arena.settings",
        help="Django settings module (on PYTHONPATH), to try a settings change without editing",
    )
    parser.add_argument(
        "--py-spy",
        type=Path,
        metavar="FILE",
        help="record Daphne with py-spy: collapsed stacks, .svg flame graph, .json speedscope",
    )
    parser.add_argument(
        "--no-floor",
        action="store_true",
        help="skip the raw-aiohttp floor (2 x --battles streams at once after each round, from "
        "tests/benchmarks/bench_floor.py in a process of its own; needs --upstream process)",
    )
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if ws_connect is None:
        print(
            "This benchmark needs the 'websockets' package, which is not a project dependency.\n"
            "Install it into the virtualenv with:  .venv/bin/pip install websockets",
            file=sys.stderr,
        )
        return 2
    if not 1 <= args.battles <= 1000 or not 1 <= args.rounds <= 100:
        parser.error("--battles must be 1..1000 and --rounds 1..100")

    with contextlib.ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="arena-bench-ws-")))
        if args.upstream == "process":
            upstream = stack.enter_context(ProcessUpstream(args.ttft, args.delay, args.tokens))
        else:
            upstream = stack.enter_context(FakeUpstream())
        spec = f"slow:ttft={args.ttft},delay={args.delay},tokens={args.tokens}"
        for model_id in MODEL_IDS.values():
            upstream.set_behaviour(model_id, spec)
        overrides = {
            "ARENA_LOG_LEVEL": "WARNING",
            "ARENA_ALLOWED_HOSTS": "127.0.0.1",
            "DJANGO_SETTINGS_MODULE": args.settings,
            "ARENA_REFRESH_AFTER_VOTES": "1" if args.refresh_after_votes else "0",
        }
        if not args.debug:
            overrides.update(
                ARENA_DEBUG="0",
                ARENA_SECRET_KEY=secrets.token_urlsafe(50),
                ARENA_SECURE_COOKIES="0",
            )
        if args.database_url:
            overrides["DATABASE_URL"] = stack.enter_context(throwaway_postgres(args.database_url))
        if args.redis_url:
            overrides["REDIS_URL"] = args.redis_url
        env = server_env(tmp, **overrides)

        prep = time.monotonic()
        manage(env, "migrate", "--verbosity", "0")
        (tmp / "models.toml").write_text(MODELS.format(url=upstream.url))
        manage(env, "models", "sync", str(tmp / "models.toml"))
        out = manage(env, "shell", "-c", SESSIONS.format(n=args.battles)).stdout
        sessions = json.loads(out.strip().splitlines()[-1])
        cookies = [f"{sessions['cookie']}={key}" for key in sessions["keys"]]
        database = "PostgreSQL" if args.database_url else "SQLite"
        layer = "Redis" if args.redis_url else "in-memory"
        print(
            f"prepared {database} database, {args.battles} users and sessions in "
            f"{time.monotonic() - prep:.1f} s; channel layer {layer}, "
            f"debug {'on' if args.debug else 'off'}, settings {args.settings}",
            flush=True,
        )
        print(
            f"upstream: {spec} (ideal answer time {args.ttft + (args.tokens - 1) * args.delay:.2f}"
            f" s); {args.battles} concurrent battles x {args.rounds} rounds, 2 sides each, "
            f"prompts sent {'at once' if not args.spread else f'over {args.spread:g} s'}",
            flush=True,
        )
        base, pid = stack.enter_context(daphne(env, tmp / "daphne.log"))
        if args.py_spy:
            stack.enter_context(py_spy(pid, args.py_spy))
        ws_url = base.replace("http://", "ws://") + "/ws/battle/"
        rng = random.Random(args.seed)
        rounds = []
        floors: list[tuple[list[float], float]] = []
        measure_floor = args.upstream == "process" and not args.no_floor
        print(LEGEND)
        print(f"load average (1/5/15 min) at the start: {load()}")
        print(HEADER)
        for round_no in range(1, args.rounds + 1):
            cpu0, proc0 = cpu_seconds(pid), time.process_time()
            runs, timing = asyncio.run(run_round(args, ws_url, base, cookies, round_no, rng))
            cpu = cpu_seconds(pid) - cpu0
            own_cpu = time.process_time() - proc0
            fig = figures(runs, upstream, args.tokens)
            rounds.append((fig, timing, cpu, own_cpu))
            print(row(str(round_no), fig, timing, cpu), flush=True)
            for problem in sorted(set(fig.problems))[:5]:
                print(f"      ! {problem}")
            if measure_floor:
                added, floor_cpu = floor_round(upstream, 2 * args.battles, f"floor {round_no}")
                floors.append((added, floor_cpu))
                print(
                    f"{'floor':>5} {med(added):>8.1f} /{p99(added):>7.1f} /"
                    f"{max(added, default=float('nan')):>7.1f}  raw aiohttp, {len(added)} "
                    f"streams at once; its CPU {floor_cpu:.2f} s; load {load()}",
                    flush=True,
                )

    pooled = RoundFigures()
    for fig, *_ in rounds:
        for name in ("added", "to_start", "before", "after", "provider"):
            getattr(pooled, name).extend(getattr(fig, name))
        pooled.lost += fig.lost
        pooled.messages.extend(fig.messages)
        pooled.mismatched += fig.mismatched
        pooled.failed += fig.failed
    cpus = [cpu for _, _, cpu, _ in rounds]
    timing = {
        "stream_wall": med([t["stream_wall"] for _, t, _, _ in rounds]),
        "round_wall": med([t["round_wall"] for _, t, _, _ in rounds]),
        "lag": [x for _, t, _, _ in rounds for x in t["lag"]],
    }
    print(row("all", pooled, timing, med(cpus)))
    medians = [med(fig.added) for fig, *_ in rounds]
    print(
        f"added TTFT per round: medians {', '.join(f'{m:.1f}' for m in medians)} ms "
        f"(median of medians {med(medians):.1f} ms); p99s "
        f"{', '.join(f'{p99(fig.added):.1f}' for fig, *_ in rounds)} ms"
    )
    print(
        f"SUMMARY battles={args.battles}x{args.rounds} spread_s={args.spread:g} "
        f"added_ttft_ms median={med(pooled.added):.1f} p99={p99(pooled.added):.1f} "
        f"(target <= 20 median, p99 <= 60 at once; <= 5 spread or one) "
        f"chunks_lost={pooled.lost} text_mismatch={pooled.mismatched} "
        f"chunk_messages_per_side median={med(pooled.messages):.0f} "
        f"failed={pooled.failed} daphne_cpu_s_per_round median={med(cpus):.2f} "
        f"(per battle {med(cpus) / args.battles * 1000:.1f} ms) "
        f"wall_s_per_round median={timing['stream_wall']:.2f} "
        f"bench_process_cpu_s_per_round median={med([c for *_, c in rounds]):.2f}"
    )
    if floors:
        floor_medians = [med(added) for added, _ in floors]
        floor_all = [x for added, _ in floors for x in added]
        ratio = med(medians) / med(floor_medians) if med(floor_medians) > 0 else float("nan")
        print(
            f"FLOOR raw_aiohttp_streams={2 * args.battles} added_ttft_ms median_of_medians="
            f"{med(floor_medians):.1f} (per round {', '.join(f'{m:.1f}' for m in floor_medians)})"
            f" p99={p99(floor_all):.1f} cpu_s_per_round median="
            f"{med([c for _, c in floors]):.2f}; arena/floor ratio of median of medians "
            f"{ratio:.1f}x (aim <= 3x)"
        )
    print(f"load average (1/5/15 min) at the end: {load()}")
    return 1 if pooled.lost or pooled.mismatched or pooled.failed else 0


def load() -> str:
    return "/".join(f"{x:.2f}" for x in os.getloadavg())


LEGEND = """\
added TTFT = (prompt sent -> first chunk read, by the client) - (request received -> first token
  written, by the upstream), per side, in ms. Its parts (medians): 'to start' prompt sent ->
  'start' message read (the consumer's database work before streaming); 'before up' prompt sent
  -> upstream received the request; 'after tok' upstream wrote the first token -> client read
  it; 'provider' the arena's own ttft_ms minus the upstream's. lost = tokens written - chunks
  read; text!= sides whose text differs; failed = battles without a reveal; CPU s = Daphne's
  user+system; wall s = prompts sent -> last ready / -> whole round with votes; lag = this
  process's event-loop lateness (the clients' own queueing)."""
HEADER = (
    f"{'round':>5} {'added TTFT med/p99/max':>24} {'to start':>8} {'before up':>9}"
    f" {'after tok':>9} {'provider':>8} {'lost':>4} {'text!=':>6} {'failed':>6} {'CPU s':>6}"
    f" {'wall s':>11} {'lag p99':>7}"
)


def row(label: str, fig: RoundFigures, timing: dict, cpu: float) -> str:
    return (
        f"{label:>5} {med(fig.added):>8.1f} /{p99(fig.added):>7.1f} /"
        f"{max(fig.added, default=float('nan')):>7.1f} {med(fig.to_start):>8.1f}"
        f" {med(fig.before):>9.1f} {med(fig.after):>9.1f} {med(fig.provider):>8.1f}"
        f" {fig.lost:>4} {fig.mismatched:>6} {fig.failed:>6} {cpu:>6.2f}"
        f" {timing['stream_wall']:>5.2f}/{timing['round_wall']:>5.2f}"
        f" {p99(timing['lag']) * 1000:>7.1f}"
    )


if __name__ == "__main__":
    sys.exit(main())
