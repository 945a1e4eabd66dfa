"""The production topology, started for real: nginx in front of 2 Daphne processes, 2 Celery
workers on their queues and beat, on a throwaway PostgreSQL database and a Redis database of
its own (deploy/prod_local.py renders the nginx configuration and the commands; this test
starts them itself so that it can kill and restart one Daphne process).

40 battles are played through the proxy against a fake upstream in its own process; one
Daphne process is killed (SIGKILL, by its pid) while they stream. Then: the battles on the
other process finish and are voted; those of the killed one end for their user with a closed
socket and are never votable half battles; no vote is lost or doubled; the votes' leaderboard
refresh and automatic judging ran on the workers; the restarted process takes battles again.

PostgreSQL (``ARENA_TEST_POSTGRES_URL``, default postgres://postgres@127.0.0.1:5432/postgres:
a database ``arena_topology_<random>`` is created on that server and dropped), Redis
(``ARENA_TEST_DEPLOY_REDIS_URL``, default redis://127.0.0.1:6379/11, flushed) and nginx are
needed; without them the test skips (fails with ARENA_REQUIRE_SERVICES=1).
"""

import asyncio
import contextlib
import json
import os
import random
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import httpx
import pytest

from deploy.prod_local import Topology, Worker, base_env
from tests.support import ROOT, free_port, manage, tcp_reachable, unavailable
from tests.upstream import FakeUpstream

pytestmark = [pytest.mark.deploy, pytest.mark.postgres, pytest.mark.redis]

POSTGRES_URL = os.environ.get(
    "ARENA_TEST_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/postgres"
)
REDIS_URL = os.environ.get("ARENA_TEST_DEPLOY_REDIS_URL", "redis://127.0.0.1:6379/11")
NGINX = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else "")
BATTLES = 40
TOKENS = 40
POOL = 4  # ARENA_DB_POOL_SIZE of every process
WORKERS = (Worker("ratings", "ratings,celery", 1), Worker("jobs", "judge,generation", 2))
TEST_APP = "arena-topology-test"  # the test's own PostgreSQL connections, not counted

MODELS = """
[[model]]
name = "Bench Alpha"
organisation = "Alpha Bench Labs"
kind = "openai"
base_url = "{url}"
model_id = "bench-alpha"

[[model]]
name = "Bench Beta"
organisation = "Beta Bench Labs"
kind = "openai"
base_url = "{url}"
model_id = "bench-beta"

[[model]]
name = "Topology Judge"
organisation = "Judges"
kind = "openai"
base_url = "{judge_url}"
model_id = "topology-judge"
active = false
"""


def _requirements() -> None:
    if not NGINX:
        unavailable("nginx is not installed", "apt-get install nginx (Debian's).")
    if not tcp_reachable(POSTGRES_URL, 5432):
        unavailable(
            f"PostgreSQL is not reachable at {POSTGRES_URL}", "Set ARENA_TEST_POSTGRES_URL."
        )
    if not tcp_reachable(REDIS_URL, 6379):
        unavailable(f"Redis is not reachable at {REDIS_URL}", "Set ARENA_TEST_DEPLOY_REDIS_URL.")
    try:
        import websockets  # noqa: F401
    except ImportError:
        unavailable("websockets is not installed", "make install (a dev dependency).")


@contextlib.contextmanager
def throwaway_database():
    import psycopg
    from psycopg import sql

    name = f"arena_topology_{uuid.uuid4().hex[:8]}"
    admin_url = urlunsplit(urlsplit(POSTGRES_URL)._replace(path="/postgres"))
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield urlunsplit(urlsplit(POSTGRES_URL)._replace(path=f"/{name}"))
    finally:
        with psycopg.connect(admin_url, autocommit=True) as admin:
            drop = sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)")
            admin.execute(drop.format(sql.Identifier(name)))


class Processes:
    """The topology's processes, each with its own log, started and stopped by pid."""

    def __init__(self, topology: Topology):
        self.topology = topology
        self.commands = topology.processes()
        self.procs: dict[str, subprocess.Popen] = {}

    def log(self, name: str) -> Path:
        return self.topology.run_dir / f"{name}.log"

    def start(self, name: str) -> subprocess.Popen:
        with open(self.log(name), "ab") as log:
            proc = subprocess.Popen(
                self.commands[name],
                cwd=ROOT,
                env=self.topology.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        self.procs[name] = proc
        return proc

    def kill(self, name: str) -> None:
        os.kill(self.procs[name].pid, signal.SIGKILL)
        self.procs[name].wait(10)

    def stop_all(self) -> None:
        for proc in reversed(list(self.procs.values())):
            if proc.poll() is None:
                proc.terminate()
        for proc in self.procs.values():
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def wait_until(self, name: str, ready, what: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while not ready():
            if self.procs[name].poll() is not None:
                raise AssertionError(f"{name} exited:\n{self.log(name).read_text()[-3000:]}")
            if time.monotonic() > deadline:
                raise AssertionError(f"{name} not {what}:\n{self.log(name).read_text()[-3000:]}")
            time.sleep(0.1)

    def wait_daphne(self, name: str, port: int) -> None:
        def healthy() -> bool:
            try:
                return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200
            except httpx.TransportError:
                return False

        self.wait_until(name, healthy, "answering /healthz")

    def wait_worker(self, name: str) -> None:
        self.wait_until(name, lambda: " ready." in self.log(name).read_text(), "ready")


class ConnectionPeak:
    """The peak number of the arena's connections to the database, sampled every 50 ms, in
    all and per process (a connection's client port is looked up among the sockets of the
    topology's processes and of their prefork children)."""

    def __init__(self, url: str, processes: "Processes"):
        self.url, self.processes = url, processes
        self.peak, self.per_process = 0, {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _owners(self) -> dict[int, str]:
        """Local TCP port -> the name of the topology process holding it."""
        pids = {proc.pid: name for name, proc in self.processes.procs.items()}
        for stat in Path("/proc").glob("[0-9]*/stat"):
            with contextlib.suppress(OSError, IndexError, ValueError):
                ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])
                if ppid in pids and not pids[ppid].endswith(" child"):
                    pids[int(stat.parent.name)] = f"{pids[ppid]} child {stat.parent.name}"
        inodes = {}
        for pid, name in pids.items():
            with contextlib.suppress(OSError):
                for fd in Path(f"/proc/{pid}/fd").iterdir():
                    with contextlib.suppress(OSError):
                        target = os.readlink(fd)
                        if target.startswith("socket:["):
                            inodes[target[8:-1]] = name
        owners = {}
        for table in ("/proc/net/tcp", "/proc/net/tcp6"):
            with contextlib.suppress(OSError):
                for line in Path(table).read_text().splitlines()[1:]:
                    cols = line.split()
                    if cols[9] in inodes:
                        owners[int(cols[1].rsplit(":", 1)[1], 16)] = inodes[cols[9]]
        return owners

    def _run(self) -> None:
        import psycopg

        with psycopg.connect(self.url, autocommit=True, application_name=TEST_APP) as conn:
            name = conn.info.dbname
            while not self._stop.is_set():
                ports = [
                    row[0]
                    for row in conn.execute(
                        "SELECT client_port FROM pg_stat_activity WHERE datname = %s "
                        "AND application_name <> %s",
                        [name, TEST_APP],
                    ).fetchall()
                ]
                self.peak = max(self.peak, len(ports))
                owners = self._owners()
                counts: dict[str, int] = {}
                for port in ports:
                    owner = owners.get(port, "closed by its process")
                    owner = re.sub(r" child \d+$", " child", owner)
                    counts[owner] = counts.get(owner, 0) + 1
                for owner, count in counts.items():
                    self.per_process[owner] = max(self.per_process.get(owner, 0), count)
                time.sleep(0.05)

    def __enter__(self) -> "ConnectionPeak":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(5)


# -- a battle as its user sees it ------------------------------------------------------------


@dataclass
class Play:
    n: int
    battle: int | None = None
    text: dict[str, str] = field(default_factory=lambda: {"a": "", "b": ""})
    chunks: dict[str, int] = field(default_factory=lambda: {"a": 0, "b": 0})
    connected: bool = False
    ready: bool = False
    revealed: int | None = None  # the battle id the reveal named
    ended: str = ""  # how the socket ended without a reveal


async def play(url: str, origin: str, cookie: str, run: Play, go, vote_gate) -> None:
    """Send a prompt, read until ready, wait for the vote gate, vote, read the reveal."""
    from websockets.asyncio.client import connect

    try:
        async with connect(
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
            await ws.send(json.dumps({"type": "prompt", "text": f"Topology battle {run.n}"}))
            async for raw in ws:
                message = json.loads(raw)
                kind = message.get("type")
                if kind == "start":
                    run.battle = message["battle"]
                elif kind == "chunk":
                    run.text[message["side"]] += message["text"]
                    run.chunks[message["side"]] += 1
                elif kind == "error":
                    run.ended = f"error: {message.get('message')}"
                    return
                elif kind == "ready":
                    if not message.get("can_vote"):
                        run.ended = f"cannot vote: {message.get('notice')}"
                        return
                    run.ready = True
                    await vote_gate.wait()
                    await ws.send(json.dumps({"type": "vote", "outcome": "a"}))
                elif kind == "revealed":
                    run.revealed = message["battle"]
                    return
            run.ended = f"closed ({ws.close_code})"
    except Exception as exc:
        run.ended = f"{type(exc).__name__}: {exc}"


def served_by(access_log: Path) -> dict[int, int]:
    """Battle number -> the Daphne port nginx passed its socket to (logged when it closed)."""
    found = {}
    for line in access_log.read_text().splitlines():
        match = re.search(r"/ws/battle/\?n=(\d+) .* upstream=127\.0\.0\.1:(\d+)", line)
        if match:
            found[int(match.group(1))] = int(match.group(2))
    return found


def _wait(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


def test_nginx_configuration_renders_and_passes_nginx_t(tmp_path):
    if not NGINX:
        unavailable("nginx is not installed", "apt-get install nginx (Debian's).")
    topology = Topology(
        run_dir=tmp_path, listen_port=free_port(), daphne_ports=[8001, 8002], env={}, nginx=NGINX
    )
    topology.write()
    conf = (tmp_path / "nginx.conf").read_text()
    assert "{{" not in conf
    assert "server 127.0.0.1:8001" in conf and "server 127.0.0.1:8002" in conf
    assert "proxy_set_header Upgrade $http_upgrade;" in conf
    checked = topology.nginx_check()
    assert checked.returncode == 0, checked.stderr
    procfile = (tmp_path / "Procfile").read_text()
    names = [line.split(":", 1)[0] for line in procfile.splitlines()]
    assert names == [
        "web1",
        "web2",
        "worker-ratings",
        "worker-judge",
        "worker-generation",
        "beat",
        "nginx",
    ]


def test_the_topology_survives_a_daphne_process_killed_mid_round():
    _requirements()
    import psycopg
    import redis

    from tests.benchmarks.bench_battles import SESSIONS, BattleRun, ProcessUpstream
    from tests.benchmarks.bench_battles import play as play_and_vote

    started = time.monotonic()
    redis_client = redis.Redis.from_url(REDIS_URL)
    redis_client.flushdb()
    with contextlib.ExitStack() as stack:
        stack.callback(redis_client.close)
        stack.callback(redis_client.flushdb)
        # A folder nginx's workers (nobody, when run as root) can traverse.
        run_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="arena-topo-")))
        run_dir.chmod(0o755)
        upstream = stack.enter_context(ProcessUpstream(ttft=0.3, delay=0.04, tokens=TOKENS))
        judge_upstream = stack.enter_context(FakeUpstream())
        judge_upstream.set_behaviour("topology-judge", "judge")
        database_url = stack.enter_context(throwaway_database())
        env = base_env(
            run_dir,
            database_url=database_url,
            redis_url=REDIS_URL,
            ARENA_DB_POOL_SIZE=str(POOL),
            ARENA_MIN_VOTES="1",
            ARENA_LEADERBOARD_ROUNDS="20",
            ARENA_LOG_LEVEL="INFO",
            # These scripted voters vote the moment both answers are complete; the vote-quality
            # check "too fast to have read both answers" would rightly exclude every vote.
            ARENA_QUALITY_MAX_READ_SECONDS="0",
        )
        topology = Topology(
            run_dir=run_dir,
            listen_port=free_port(),
            daphne_ports=[free_port(), free_port()],
            env=env,
            workers=WORKERS,
            nginx=NGINX,
        )
        topology.write()

        manage(env, "migrate", "--verbosity", "0")
        manage(env, "collectstatic", "--noinput", "--verbosity", "0")
        (run_dir / "models.toml").write_text(
            MODELS.format(url=upstream.url, judge_url=judge_upstream.url)
        )
        manage(env, "models", "sync", str(run_dir / "models.toml"))
        judge = ["judge", "create", "--name", "Auto", "--contestant", "Topology Judge"]
        manage(env, *judge, "--auto-judge")
        out = manage(env, "shell", "-c", SESSIONS.format(n=BATTLES)).stdout
        sessions = json.loads(out.strip().splitlines()[-1])
        cookies = [f"{sessions['cookie']}={key}" for key in sessions["keys"]]
        prepared = time.monotonic() - started

        processes = Processes(topology)
        stack.callback(processes.stop_all)
        peak = stack.enter_context(ConnectionPeak(database_url, processes))
        for name in topology.processes():
            processes.start(name)
        web = {"web1": topology.daphne_ports[0], "web2": topology.daphne_ports[1]}
        for name, port in web.items():
            processes.wait_daphne(name, port)
        for worker in WORKERS:
            processes.wait_worker(f"worker-{worker.name}")
        base = topology.url.rstrip("/")
        processes.wait_until("nginx", lambda: tcp_reachable(base, 80), "listening")
        assert httpx.get(base + "/healthz", timeout=5).json()["redis"] == "ok"
        page = httpx.get(base + "/", timeout=10)
        assert page.status_code == 200
        css = re.search(r'href="(/static/[^"]+\.css)"', page.text).group(1)
        assert httpx.get(base + css, timeout=10).status_code == 200  # whitenoise, through nginx
        up = time.monotonic() - started

        # -- 40 battles through nginx; web1 is killed while they stream -------------------
        victim, survivor = "web1", "web2"
        ws_base = base.replace("http://", "ws://") + "/ws/battle/"
        runs = [Play(n) for n in range(BATTLES)]

        async def round_with_a_kill() -> list[int]:
            go, gate = asyncio.Event(), asyncio.Event()
            tasks = [
                asyncio.create_task(play(f"{ws_base}?n={r.n}", base, cookie, r, go, gate))
                for r, cookie in zip(runs, cookies, strict=True)
            ]
            deadline = time.monotonic() + 30  # every socket connects (through nginx) first
            while not all(r.connected or r.ended for r in runs) and time.monotonic() < deadline:
                await asyncio.sleep(0.02)
            go.set()
            # Kill once every battle streams on both sides (or after 15 s at most).
            deadline = time.monotonic() + 15
            while time.monotonic() < deadline:
                if all(r.chunks["a"] and r.chunks["b"] for r in runs):
                    break
                if all(t.done() for t in tasks):
                    break
                await asyncio.sleep(0.01)
            ready_before = [r.n for r in runs if r.ready]
            processes.kill(victim)
            await asyncio.sleep(0.5)
            gate.set()  # votes only now: none can be in flight on the killed process
            await asyncio.wait_for(asyncio.gather(*tasks), timeout=90)
            return ready_before

        ready_before_kill = asyncio.run(round_with_a_kill())
        expected_text = " ".join(f"word{i}" for i in range(TOKENS))
        on = _wait(
            lambda: (
                (found := served_by(run_dir / "nginx-access.log"))
                and len(found) >= BATTLES
                and found
            ),
            10,
            "nginx to log every socket",
        )
        ports = {port: name for name, port in web.items()}
        by_process = {name: [r for r in runs if ports[on[r.n]] == name] for name in web}
        assert by_process[victim] and by_process[survivor], {k: len(v) for k, v in on.items()}

        # The other process's battles finish, are voted and revealed, whole.
        for r in by_process[survivor]:
            assert r.revealed is not None and r.revealed == r.battle, (r.n, r.ended)
            assert r.text == {"a": expected_text, "b": expected_text}, r.n
        # The killed process's battles end for their user: a closed socket, never a reveal.
        for r in by_process[victim]:
            assert r.revealed is None and r.ended, (r.n, r.ended)

        with psycopg.connect(database_url, application_name=TEST_APP, autocommit=True) as db:
            rows = db.execute("SELECT id, status FROM arena_battle").fetchall()
            status = dict(rows)
            turns = db.execute(
                "SELECT battle_id, side, text, error FROM arena_turn WHERE NOT superseded"
            ).fetchall()
            votes = [row[0] for row in db.execute("SELECT battle_id FROM arena_vote").fetchall()]
        assert len(status) == BATTLES
        by_battle: dict[int, dict[str, list]] = {}
        for battle_id, side, text, error in turns:
            by_battle.setdefault(battle_id, {}).setdefault(side, []).append((text, error))
        # Never a votable half battle: a READY or VOTED battle has both whole answers.
        for battle_id, state in status.items():
            if state in ("ready", "voted"):
                sides = by_battle.get(battle_id, {})
                assert sides.get("a") == [(expected_text, "")], (battle_id, state, sides)
                assert sides.get("b") == [(expected_text, "")], (battle_id, state, sides)
        for r in by_process[victim]:
            if r.battle is not None:
                assert status[r.battle] in ("streaming", "ready", "errored", "void"), r.battle
        # No vote lost or doubled: one vote per reveal seen, and only those.
        revealed = sorted(r.revealed for r in runs if r.revealed is not None)
        assert sorted(votes) == revealed
        assert len(revealed) == len(by_process[survivor])

        # -- the votes' refresh and judging ran on the workers, not in Daphne -------------
        def judged() -> bool:
            with psycopg.connect(database_url, application_name=TEST_APP) as db:
                count = db.execute("SELECT count(*) FROM arena_judgement").fetchone()[0]
                snaps = db.execute(
                    "SELECT count(*) FROM arena_leaderboardsnapshot WHERE status = 'complete'"
                ).fetchone()[0]
            return count >= 2 * len(votes) and snaps > 0

        _wait(judged, 60, "the auto-judge verdicts and a leaderboard snapshot")
        ratings_log = processes.log("worker-ratings").read_text()
        pattern = r"leaderboard refresh stored \d+ snapshots in process (\d+)"
        refresh_pids = [int(pid) for pid in re.findall(pattern, ratings_log)]
        assert refresh_pids, ratings_log[-3000:]
        worker_pid = processes.procs["worker-ratings"].pid
        daphne_pids = {processes.procs[name].pid for name in web}
        for pid in refresh_pids:
            ppid = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
            assert ppid == worker_pid and pid not in daphne_pids  # a prefork child of the worker
        jobs_log = processes.log("worker-jobs").read_text()
        judged_tasks = re.findall(r"Task arena\.judge_battle\[[\w-]+\] succeeded", jobs_log)
        assert len(judged_tasks) == len(votes), jobs_log[-3000:]
        for name in web:
            assert "Task arena." not in processes.log(name).read_text()
            assert "leaderboard refresh stored" not in processes.log(name).read_text()

        # -- restarting the killed process restores service ------------------------------
        killed_at = time.monotonic()
        processes.start(victim)
        processes.wait_daphne(victim, web[victim])
        restarted = []
        for attempt in range(8):
            battle = BattleRun(prompt=f"After the restart {attempt}")
            go = asyncio.Event()
            go.set()
            url = f"{ws_base}?n={1000 + attempt}"
            asyncio.run(play_and_vote(url, base, cookies[attempt], battle, go, random.Random()))
            assert battle.voted and not battle.errors, battle.errors
            landed = _wait(
                lambda a=attempt: served_by(run_dir / "nginx-access.log").get(1000 + a),
                10,
                "nginx's log line",
            )
            restarted.append(ports[landed])
            if ports[landed] == victim:
                break
        assert victim in restarted, restarted
        recovered = time.monotonic() - killed_at

    # Each Daphne process at most its pool; each prefork child up to 2 (Celery closes a child's
    # pool after every task, and the next task's new pool may open two while it fills).
    bound = POOL * len(web) + 2 * sum(w.concurrency for w in WORKERS)
    print(
        f"\ntopology: prepared in {prepared:.1f} s, up after {up:.1f} s; battles on "
        f"{victim} (killed) {len(by_process[victim])} ({len(ready_before_kill)} ready before the "
        f"kill), on {survivor} {len(by_process[survivor])}; votes {len(votes)}; restarted "
        f"battles landed on {restarted} ({recovered:.1f} s); peak PostgreSQL connections "
        f"{peak.peak} (bound {bound}; per process, at most: {peak.per_process}); "
        f"total {time.monotonic() - started:.1f} s"
    )
    assert peak.peak <= bound
