"""The production topology on one machine, for trying it: ``make prod-local``.

    .venv/bin/python deploy/prod_local.py [--port 8080] [--daphne 2] [--no-demo]
        [--database-url postgres://postgres@127.0.0.1:5432/arena]
        [--redis-url redis://127.0.0.1:6379/0] [--run-dir var/prod-local] [--prepare-only]

What runs (one process each, supervised by honcho from a Procfile this script renders):

* ``nginx`` (Debian's) on ``--port``, in front of
* ``web1`` .. ``webN``: Daphne processes on 127.0.0.1:8001.. (``--daphne N``),
* ``worker-ratings``, ``worker-judge``, ``worker-generation``: Celery workers, one per queue
  (CELERY_TASK_ROUTES in arena/settings.py; the ratings worker also takes the default queue),
* ``beat``: Celery beat for the periodic tasks (CELERY_BEAT_SCHEDULE: the battles sweep).

PostgreSQL (``--database-url``, created when missing) and Redis (``--redis-url``: channel
layer, broker, result backend, cache) must be running. Before starting, the script migrates,
collects the static files, loads the demo data (unless ``--no-demo``) and creates a first
account; debug is off, with a secret key generated once and kept in the run folder. Ctrl-C
stops everything (honcho also stops everything when one process exits).

The rendering is shared with tests/deploy/test_topology.py, which starts the same commands
itself so that it can kill and restart one Daphne process.
"""

import argparse
import os
import re
import secrets
import shlex
import shutil
import socket
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = Path(__file__).with_name("nginx.conf.template")


@dataclass(frozen=True)
class Worker:
    """One Celery worker: the queues it consumes and its prefork concurrency (processes)."""

    name: str
    queues: str
    concurrency: int


# One worker per queue. Refreshes run one at a time anyway (a cache lock), so one process
# takes them, and the default queue's small tasks (arena.ping).
WORKERS = (
    Worker("ratings", "ratings,celery", 1),
    Worker("judge", "judge", 2),
    Worker("generation", "generation", 2),
)


@dataclass
class Topology:
    """Everything needed to start the topology: commands, environment, nginx configuration."""

    run_dir: Path
    listen_port: int
    daphne_ports: list[int]
    env: dict[str, str]
    workers: tuple[Worker, ...] = WORKERS
    listen_host: str = "127.0.0.1"
    python: str = sys.executable
    nginx: str = field(default_factory=lambda: shutil.which("nginx") or "/usr/sbin/nginx")
    beat: bool = True
    fail_timeout: str = "5s"

    @property
    def url(self) -> str:
        return f"http://{self.listen_host}:{self.listen_port}/"

    def nginx_conf(self) -> str:
        servers = "\n".join(
            f"        server 127.0.0.1:{port} max_fails=1 fail_timeout={self.fail_timeout};"
            for port in self.daphne_ports
        )
        values = {
            "run_dir": str(self.run_dir),
            "servers": servers,
            "listen": f"{self.listen_host}:{self.listen_port}",
            "fail_timeout": self.fail_timeout,
        }
        return render(TEMPLATE.read_text(), values)

    def daphne_command(self, port: int) -> list[str]:
        return [
            self.python,
            "-m",
            "daphne",
            "--proxy-headers",  # the client's address from nginx's X-Forwarded-For
            "-b",
            "127.0.0.1",
            "-p",
            str(port),
            "arena.asgi:application",
        ]

    def worker_command(self, worker: Worker) -> list[str]:
        return [
            self.python,
            "-m",
            "celery",
            "-A",
            "arena",
            "worker",
            "-Q",
            worker.queues,
            "--pool",
            "prefork",
            "--concurrency",
            str(worker.concurrency),
            "-n",
            f"{worker.name}@%h",
            "--loglevel",
            "INFO",
            "--without-gossip",
            "--without-mingle",
        ]

    def nginx_command(self) -> list[str]:
        conf = self.run_dir / "nginx.conf"
        error_log = self.run_dir / "nginx-error.log"
        return [self.nginx, "-p", str(self.run_dir), "-c", str(conf), "-e", str(error_log)] + [
            "-g",
            "daemon off;",
        ]

    def beat_command(self) -> list[str]:
        schedule = self.run_dir / "celerybeat-schedule"
        return [self.python, "-m", "celery", "-A", "arena", "beat", "-s", str(schedule)] + [
            "--loglevel",
            "INFO",
        ]

    def processes(self) -> dict[str, list[str]]:
        """Name -> command, in start order (the proxy last, once there is something behind)."""
        commands = {}
        for i, port in enumerate(self.daphne_ports, start=1):
            commands[f"web{i}"] = self.daphne_command(port)
        for worker in self.workers:
            commands[f"worker-{worker.name}"] = self.worker_command(worker)
        if self.beat:
            commands["beat"] = self.beat_command()
        commands["nginx"] = self.nginx_command()
        return commands

    def procfile(self) -> str:
        return "".join(f"{name}: {shlex.join(cmd)}\n" for name, cmd in self.processes().items())

    def write(self) -> None:
        """Write nginx.conf and the Procfile into the run folder."""
        (self.run_dir / "nginx-tmp").mkdir(parents=True, exist_ok=True)
        (self.run_dir / "nginx.conf").write_text(self.nginx_conf())
        (self.run_dir / "Procfile").write_text(self.procfile())

    def nginx_check(self) -> subprocess.CompletedProcess:
        """``nginx -t`` on the rendered configuration."""
        cmd = [c for c in self.nginx_command() if c not in ("-g", "daemon off;")] + ["-t", "-q"]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=30)

    def postgres_connections(self) -> str:
        """How many PostgreSQL connections the processes hold at most, as a sentence."""
        pool = int(self.env.get("ARENA_DB_POOL_SIZE", "8"))
        daphnes = len(self.daphne_ports)
        children = sum(w.concurrency for w in self.workers)
        return (
            f"at most {pool * daphnes + 2 * children} PostgreSQL connections: {daphnes} Daphne "
            f"x pool {pool} + {children} Celery worker processes x 2"
        )


def render(template: str, values: dict[str, str]) -> str:
    """Replace every ``{{name}}``; a name without a value is an error."""

    def one(match: re.Match) -> str:
        name = match.group(1)
        if name not in values:
            raise KeyError(f"nginx template: no value for {{{{{name}}}}}")
        return values[name]

    return re.sub(r"\{\{(\w+)\}\}", one, template)


def base_env(run_dir: Path, *, database_url: str, redis_url: str, **overrides: str) -> dict:
    """The environment of every process: debug off, a secret key kept in the run folder."""
    key_path = run_dir / "secret_key"
    if not key_path.exists():
        run_dir.mkdir(parents=True, exist_ok=True)
        key_path.write_text(secrets.token_urlsafe(50))
        key_path.chmod(0o600)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ARENA_", "DATABASE_URL"))}
    env.update(
        ARENA_DEBUG="0",
        ARENA_SECRET_KEY=key_path.read_text().strip(),
        # Plain HTTP on this machine; behind HTTPS leave it on (the default with debug off).
        ARENA_SECURE_COOKIES="0",
        ARENA_ALLOWED_HOSTS="127.0.0.1,localhost",
        ARENA_DATA_DIR=str(run_dir),
        DATABASE_URL=database_url,
        REDIS_URL=redis_url,
        DJANGO_SETTINGS_MODULE="arena.settings",
        PYTHONUNBUFFERED="1",
    )
    env.update(overrides)
    return env


def reachable(url: str, default_port: int) -> bool:
    parts = urlsplit(url)
    try:
        with socket.create_connection(
            (parts.hostname or "127.0.0.1", parts.port or default_port), 2
        ):
            return True
    except OSError:
        return False


def create_database(url: str) -> bool:
    """Create the PostgreSQL database named in ``url`` when it does not exist; True if created."""
    import psycopg
    from psycopg import sql

    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    admin_url = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(admin_url, autocommit=True) as admin:
        if admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            return False
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return True


def manage(topology: Topology, *args: str) -> None:
    subprocess.run([topology.python, "manage.py", *args], cwd=ROOT, env=topology.env, check=True)


FIRST_ACCOUNT = """
import secrets
from django.conf import settings
from django.contrib.auth import get_user_model
users = get_user_model().objects
path = settings.DATA_DIR / "first-login.txt"
if not users.exists():
    password = secrets.token_urlsafe(12)
    users.create_superuser("admin", "", password)
    path.write_text(f"username: admin\\npassword: {password}\\n")
    path.chmod(0o600)
    print(f"Created the first account: sign in as 'admin' with password {password} "
          f"(also kept in {path}).")
elif path.exists():
    print(f"Sign in with the account in {path}.")
else:
    print("Sign in with your account; add one with: manage.py createsuperuser")
"""

# The demo's votes arrive without boards: queue their first refresh for the ratings worker.
FIRST_BOARDS = """
from arena.leaderboards.tasks import leaderboard_refresh_task
from arena.models import Judge, LeaderboardSnapshot, Vote
if Vote.objects.exists() and not LeaderboardSnapshot.objects.exists():
    leaderboard_refresh_task.delay()
    for judge_id in Judge.objects.values_list("id", flat=True):
        leaderboard_refresh_task.delay(judge_id)
    print("First leaderboards queued for the ratings worker.")
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--port", type=int, default=8080, help="nginx listens here (8080)")
    parser.add_argument("--host", default="127.0.0.1", help="nginx listens on (127.0.0.1)")
    parser.add_argument("--daphne", type=int, default=2, help="Daphne processes (2)")
    parser.add_argument("--first-daphne-port", type=int, default=8001)
    parser.add_argument(
        "--database-url",
        default=os.environ.get("DATABASE_URL") or "postgres://postgres@127.0.0.1:5432/arena",
    )
    parser.add_argument(
        "--redis-url", default=os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/0"
    )
    parser.add_argument("--run-dir", type=Path, default=ROOT / "var" / "prod-local")
    parser.add_argument("--no-demo", action="store_true", help="do not load the demo data")
    parser.add_argument(
        "--prepare-only", action="store_true", help="render, migrate, collect; start nothing"
    )
    args = parser.parse_args(argv)
    if not args.database_url.startswith(("postgres://", "postgresql://")):
        parser.error("--database-url must be a postgres:// URL (the production database)")
    for url, port, what in (
        (args.database_url, 5432, "PostgreSQL"),
        (args.redis_url, 6379, "Redis"),
    ):
        if not reachable(url, port):
            print(
                f"{what} is not reachable at {url}; start it or pass another URL.", file=sys.stderr
            )
            return 2
    nginx = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else "")
    if not nginx:
        print("nginx is not installed: apt-get install nginx (Debian's).", file=sys.stderr)
        return 2
    honcho = Path(sys.executable).with_name("honcho")
    if not honcho.exists() and not args.prepare_only:
        print("honcho is not installed: make install (it is a dev dependency).", file=sys.stderr)
        return 2

    run_dir = args.run_dir.resolve()
    topology = Topology(
        run_dir=run_dir,
        listen_port=args.port,
        listen_host=args.host,
        daphne_ports=[args.first_daphne_port + i for i in range(args.daphne)],
        env=base_env(run_dir, database_url=args.database_url, redis_url=args.redis_url),
        nginx=nginx,
    )
    topology.write()
    checked = topology.nginx_check()
    if checked.returncode:
        print(f"nginx -t failed:\n{checked.stderr}", file=sys.stderr)
        return 1
    if create_database(args.database_url):
        print(f"Created the database {urlsplit(args.database_url).path.lstrip('/')}.")
    manage(topology, "migrate", "--verbosity", "1")
    manage(topology, "collectstatic", "--noinput", "--verbosity", "0")
    if not args.no_demo:
        manage(topology, "load_demo")
    manage(topology, "shell", "-c", FIRST_ACCOUNT)
    manage(topology, "shell", "-c", FIRST_BOARDS)
    print(f"Rendered {run_dir / 'nginx.conf'} and {run_dir / 'Procfile'}; logs in {run_dir}.")
    print(f"Processes: {', '.join(topology.processes())}; {topology.postgres_connections()}.")
    print(f"Arena at {topology.url}  (Ctrl-C stops everything)", flush=True)
    if args.prepare_only:
        return 0
    os.chdir(ROOT)
    os.execve(
        str(honcho),
        [str(honcho), "-f", str(run_dir / "Procfile"), "-d", str(ROOT), "start"],
        topology.env,
    )
    return 0  # not reached


if __name__ == "__main__":
    sys.exit(main())
