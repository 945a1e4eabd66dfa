"""Helpers shared by the tests: service reachability and a real Daphne server process."""

import os
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

ROOT = Path(__file__).resolve().parent.parent
REQUIRE_SERVICES = os.environ.get("ARENA_REQUIRE_SERVICES", "").strip() == "1"
# One Redis database per pytest-xdist worker (gw0: 15, gw1: 14, ...): tests flush theirs, and
# a worker's Celery process must not take another worker's tasks off a shared queue.
_WORKER = int(os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw") or 0)
TEST_REDIS_URL = os.environ.get("ARENA_TEST_REDIS_URL", f"redis://127.0.0.1:6379/{15 - _WORKER}")
CHROMIUM = os.environ.get("ARENA_CHROMIUM", "/usr/bin/chromium")


def unavailable(what: str, how: str):
    """Skip, or fail when ARENA_REQUIRE_SERVICES=1, naming what is missing and how to fix it."""
    message = f"{what}. {how}"
    if REQUIRE_SERVICES:
        pytest.fail(f"{message} (ARENA_REQUIRE_SERVICES=1 makes this a failure)", pytrace=False)
    pytest.skip(f"{message} (set ARENA_REQUIRE_SERVICES=1 to make this a failure)")


def tcp_reachable(url: str, default_port: int) -> bool:
    parts = urlsplit(url)
    try:
        with socket.create_connection(
            (parts.hostname or "127.0.0.1", parts.port or default_port), 1
        ):
            return True
    except OSError:
        return False


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def server_env(data_dir: Path, **overrides: str) -> dict[str, str]:
    """A clean environment for a child process: its own data folder and SQLite file.

    Debug is on, so a server started without `collectstatic` serves the static files from the
    source folders; tests of the production defaults pass ARENA_DEBUG="0" (and collect), or
    drop the variable to get the default, off."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ARENA_", "DATABASE_URL"))}
    env.pop("REDIS_URL", None)
    env.update(
        ARENA_DEBUG="1",
        ARENA_DATA_DIR=str(data_dir),
        DATABASE_URL=f"sqlite:///{data_dir / 'arena.sqlite3'}",
        DJANGO_SETTINGS_MODULE="arena.settings",
        PYTHONUNBUFFERED="1",
    )
    env.update(overrides)
    return env


def manage(env: dict[str, str], *args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=check,
    )


@contextmanager
def daphne_server(env: dict[str, str], log_path: Path):
    """Run `daphne arena.asgi:application` on a free port until the block ends: its URL."""
    with daphne_process(env, log_path) as (base, _proc):
        yield base


@contextmanager
def daphne_process(env: dict[str, str], log_path: Path):
    """Daphne as a child process on a free port, answering /healthz: (base URL, Popen)."""
    port = free_port()
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "daphne",
                "-b",
                "127.0.0.1",
                "-p",
                str(port),
                "arena.asgi:application",
            ],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"daphne exited early:\n{log_path.read_text()}")
            try:
                httpx.get(base + "/healthz", timeout=1)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"daphne did not start:\n{log_path.read_text()}") from None
                time.sleep(0.1)
        yield base, proc
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
