"""Benchmark: N concurrent live battles through nginx over several Daphne processes.

    .venv/bin/python tests/benchmarks/bench_proxy.py      # 200 battles at once x 3 rounds
    .venv/bin/python tests/benchmarks/bench_proxy.py --battles 200 --rounds 3 --daphne 2 \\
        [--spread 10] [--database-url postgres://postgres@127.0.0.1:5432/arena_bench_proxy] \\
        [--redis-url redis://127.0.0.1:6379/13]

The production topology's front half, as deploy/prod_local.py renders it: Debian's nginx in
front of ``--daphne`` Daphne processes (debug off), on a throwaway PostgreSQL database
(created, then dropped) and the Redis channel layer (``--redis-url``, flushed before and
after). Two contestants stream from the battle benchmark's upstream in a process of its own
(200 ms to the first token, then 50 words 10 ms apart). Each round connects N WebSocket
clients through nginx, sends N prompts at once (or over ``--spread`` seconds), reads every
message, votes and closes: tests/benchmarks/bench_battles.py's client and figures, so the
**added time to first token** is the same measure (client's prompt -> first chunk, minus the
upstream's own time to first token), here with the proxy hop included.

Prints per round and overall: added TTFT median/p99, chunks lost (must be 0), failed battles
(must be 0), votes stored against reveals seen, CPU seconds of the Daphne processes and of
nginx, and how the sockets were spread over the processes (nginx's access log). Asserts
nothing about time; exits 1 on an error, a lost chunk or a vote mismatch. Needs nginx,
PostgreSQL and Redis.
"""

import argparse
import asyncio
import contextlib
import json
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import httpx  # noqa: E402
from bench_battles import (  # noqa: E402
    HEADER,
    LEGEND,
    MODELS,
    SESSIONS,
    ProcessUpstream,
    RoundFigures,
    cpu_seconds,
    figures,
    med,
    p99,
    row,
    run_round,
    throwaway_postgres,
    ws_connect,
)

from deploy.prod_local import Topology, base_env  # noqa: E402
from tests.support import free_port, manage  # noqa: E402


def children(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, IndexError, ValueError):
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(stat.parent.name))
    return found


def wait_healthy(url: str, proc: subprocess.Popen, log: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            raise SystemExit(f"{proc.args[:3]} exited:\n{log.read_text()[-2000:]}")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            raise SystemExit(f"{url} did not answer:\n{log.read_text()[-2000:]}")
        time.sleep(0.1)


COUNT_VOTES = "from arena.models import Vote; print(Vote.objects.count())"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--battles", type=int, default=200, help="concurrent battles (200)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of N battles (3)")
    parser.add_argument("--daphne", type=int, default=2, help="Daphne processes (2)")
    parser.add_argument("--ttft", type=float, default=0.2)
    parser.add_argument("--delay", type=float, default=0.01)
    parser.add_argument("--tokens", type=int, default=50)
    parser.add_argument("--spread", type=float, default=0.0, help="send prompts over this many s")
    parser.add_argument("--timeout", type=float, default=180, help="s per round at most (180)")
    parser.add_argument(
        "--database-url",
        default=f"postgres://postgres@127.0.0.1:5432/arena_bench_proxy_{uuid.uuid4().hex[:6]}",
        help="postgres://.../NAME: created, then dropped",
    )
    parser.add_argument(
        "--redis-url",
        default="redis://127.0.0.1:6379/13",
        help="flushed before and after; 'none': each process's in-memory channel layer",
    )
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    if not Path(nginx).exists():
        print("This benchmark needs nginx: apt-get install nginx", file=sys.stderr)
        return 2
    if ws_connect is None:
        print("This benchmark needs websockets: make install", file=sys.stderr)
        return 2
    import redis

    use_redis = args.redis_url != "none"
    redis_client = redis.Redis.from_url(args.redis_url if use_redis else "redis://")
    if use_redis:
        redis_client.flushdb()
    procs: list[subprocess.Popen] = []
    with contextlib.ExitStack() as stack:
        if use_redis:
            stack.callback(redis_client.flushdb)
        run_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="arena-proxy-")))
        run_dir.chmod(0o755)  # nginx's workers (nobody, when run as root) traverse it
        upstream = stack.enter_context(ProcessUpstream(args.ttft, args.delay, args.tokens))
        database_url = stack.enter_context(throwaway_postgres(args.database_url))
        env = base_env(
            run_dir,
            database_url=database_url,
            redis_url=args.redis_url,
            ARENA_LOG_LEVEL="WARNING",
            ARENA_REFRESH_AFTER_VOTES="0",  # no worker here: the streams alone
        )
        if not use_redis:
            del env["REDIS_URL"]
        topology = Topology(
            run_dir=run_dir,
            listen_port=free_port(),
            daphne_ports=[free_port() for _ in range(args.daphne)],
            env=env,
            workers=(),
            beat=False,
            nginx=nginx,
        )
        topology.write()
        prep = time.monotonic()
        manage(env, "migrate", "--verbosity", "0")
        (run_dir / "models.toml").write_text(MODELS.format(url=upstream.url))
        manage(env, "models", "sync", str(run_dir / "models.toml"))
        out = manage(env, "shell", "-c", SESSIONS.format(n=args.battles)).stdout
        sessions = json.loads(out.strip().splitlines()[-1])
        cookies = [f"{sessions['cookie']}={key}" for key in sessions["keys"]]

        def stop_all() -> None:
            for proc in procs:
                proc.terminate()
            for proc in procs:
                try:
                    proc.wait(15)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()

        stack.callback(stop_all)
        for name, command in topology.processes().items():
            log = run_dir / f"{name}.log"
            with open(log, "wb") as out_file:
                procs.append(
                    subprocess.Popen(
                        command, cwd=ROOT, env=env, stdout=out_file, stderr=subprocess.STDOUT
                    )
                )
        daphnes, nginx_proc = procs[:-1], procs[-1]
        for port, proc in zip(topology.daphne_ports, daphnes, strict=True):
            wait_healthy(f"http://127.0.0.1:{port}/healthz", proc, run_dir / "web1.log")
        base = topology.url.rstrip("/")
        wait_healthy(base + "/healthz", nginx_proc, run_dir / "nginx-error.log")
        nginx_pids = [nginx_proc.pid, *children(nginx_proc.pid)]
        print(
            f"prepared PostgreSQL, {args.battles} users and sessions, {args.daphne} Daphne "
            f"processes behind nginx ({len(nginx_pids) - 1} workers) in "
            f"{time.monotonic() - prep:.1f} s; channel layer "
            f"{'Redis' if use_redis else 'in-memory'}; debug off",
            flush=True,
        )
        print(
            f"upstream: {args.ttft} s to the first token, {args.tokens} words {args.delay} s "
            f"apart; {args.battles} concurrent battles x {args.rounds} rounds through nginx, "
            f"prompts sent {'at once' if not args.spread else f'over {args.spread:g} s'}",
            flush=True,
        )
        ws_url = base.replace("http://", "ws://") + "/ws/battle/"
        rng = random.Random(args.seed)
        print(LEGEND)
        print(HEADER + f" {'nginx CPU':>9}")
        rounds = []
        for round_no in range(1, args.rounds + 1):
            cpu0 = sum(cpu_seconds(p.pid) for p in daphnes)
            ncpu0 = sum(cpu_seconds(pid) for pid in nginx_pids)
            runs, timing = asyncio.run(run_round(args, ws_url, base, cookies, round_no, rng))
            cpu = sum(cpu_seconds(p.pid) for p in daphnes) - cpu0
            ncpu = sum(cpu_seconds(pid) for pid in nginx_pids) - ncpu0
            fig = figures(runs, upstream, args.tokens)
            rounds.append((fig, timing, cpu, runs))
            print(row(str(round_no), fig, timing, cpu) + f" {ncpu:>9.2f}", flush=True)
            for problem in sorted(set(fig.problems))[:5]:
                print(f"      ! {problem}")
        votes = int(manage(env, "shell", "-c", COUNT_VOTES).stdout.strip().splitlines()[-1])
        time.sleep(0.5)
        spread = Counter(
            match.group(1)
            for line in (run_dir / "nginx-access.log").read_text().splitlines()
            if (match := re.search(r"/ws/battle/ HTTP/1.1\" 101 .* upstream=([\d.:]+)", line))
        )
        errors = (run_dir / "nginx-error.log").read_text().strip()
        daphne_errors = [
            f"{log.name}: {line}"
            for log in sorted(run_dir.glob("web*.log"))
            for line in log.read_text().splitlines()
            if re.search(r"Error|Exception|Traceback|WARNING|CRITICAL", line)
        ]

    pooled = RoundFigures()
    for fig, *_ in rounds:
        for name in ("added", "to_start", "before", "after", "provider"):
            getattr(pooled, name).extend(getattr(fig, name))
        pooled.lost += fig.lost
        pooled.messages.extend(fig.messages)
        pooled.mismatched += fig.mismatched
        pooled.failed += fig.failed
    reveals = sum(run.voted for *_, runs in rounds for run in runs)
    timing = {
        "stream_wall": med([t["stream_wall"] for _, t, _, _ in rounds]),
        "round_wall": med([t["round_wall"] for _, t, _, _ in rounds]),
        "lag": [x for _, t, _, _ in rounds for x in t["lag"]],
    }
    print(row("all", pooled, timing, med([cpu for _, _, cpu, _ in rounds])))
    print(f"sockets per Daphne process (nginx's log): {dict(sorted(spread.items()))}")
    if errors:
        print(f"nginx error log:\n{errors[:2000]}")
    for line in daphne_errors[:30]:
        print(f"  {line[:300]}")
    medians = [med(fig.added) for fig, *_ in rounds]
    print(
        f"SUMMARY battles={args.battles}x{args.rounds} daphne={args.daphne} via=nginx "
        f"layer={'redis' if use_redis else 'memory'} "
        f"spread_s={args.spread:g} added_ttft_ms median={med(pooled.added):.1f} "
        f"p99={p99(pooled.added):.1f} round_medians={','.join(f'{m:.1f}' for m in medians)} "
        f"chunks_lost={pooled.lost} text_mismatch={pooled.mismatched} failed={pooled.failed} "
        f"votes={votes} reveals={reveals}"
    )
    bad = pooled.lost or pooled.mismatched or pooled.failed or votes != reveals
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
