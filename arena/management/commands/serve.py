"""Prepare the database and serve the arena with Daphne: what `make run` calls."""

import os
import secrets
import socket
import subprocess
import sys

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command, get_commands
from django.core.management.base import BaseCommand, CommandError

from arena.models import LeaderboardSnapshot, Vote

FIRST_LOGIN_FILE = "first-login.txt"
LOOPBACK = {"127.0.0.1", "localhost", "::1"}


class Command(BaseCommand):
    help = "Apply migrations, load demo data when present, then serve with Daphne."

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument("--no-demo", action="store_true", help="Do not load the demo data.")
        parser.add_argument(
            "--prepare-only", action="store_true", help="Do everything but start the server."
        )

    def handle(self, *args, host, port, no_demo, prepare_only, **options):
        if not prepare_only:
            _check_port_free(host, port)
        call_command("migrate", interactive=False, verbosity=0)
        # Battles a previous (crashed) server left streaming can never finish: void them.
        call_command("battles", "sweep", stdout=self.stdout)
        if not settings.DEBUG:
            call_command("collectstatic", interactive=False, verbosity=0)
        if not no_demo and "load_demo" in get_commands():
            call_command("load_demo")
        self._first_account()
        self._leaderboards_in_background(prepare_only)
        url = f"http://{'[' + host + ']' if ':' in host else host}:{port}/"
        self.stdout.write(self.style.SUCCESS(f"Arena at {url}  (Ctrl-C stops it)"))
        self._say_how_it_serves(host)
        if prepare_only:
            return
        sys.stdout.flush()
        sys.stderr.flush()
        # Hand the process over to Daphne so Ctrl-C reaches it directly.
        os.execv(
            sys.executable,
            [sys.executable, "-m", "daphne", "-b", host, "-p", str(port), "arena.asgi:application"],
        )

    def _say_how_it_serves(self, host: str):
        if settings.DEBUG:
            self.stdout.write(
                self.style.WARNING(
                    "Debug mode is on (ARENA_DEBUG=1): error pages show code and settings. "
                    "Never use it where others can reach the server."
                )
            )
        if host not in LOOPBACK:
            hosts = ", ".join(settings.ALLOWED_HOSTS)
            self.stdout.write(
                f"Served on every address: other machines reach it only by a host name listed "
                f"in ARENA_ALLOWED_HOSTS (now: {hosts}); over plain HTTP, so on a network you "
                "do not trust put a TLS proxy in front (README, Production)."
            )

    def _leaderboards_in_background(self, prepare_only: bool):
        """First start with votes but no boards: fit them beside the server, not before it."""
        if not Vote.objects.exists() or LeaderboardSnapshot.objects.exists():
            return
        log_path = settings.DATA_DIR / "leaderboard-refresh.log"
        command = [sys.executable, "manage.py", "leaderboard", "refresh", "--all"]
        if prepare_only:
            call_command("leaderboard", "refresh", "--all")
            return
        with open(log_path, "ab") as log:
            subprocess.Popen(
                command,
                cwd=settings.BASE_DIR,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.stdout.write(f"Computing the first leaderboards in the background (log: {log_path}).")

    def _first_account(self):
        users = get_user_model().objects
        path = settings.DATA_DIR / FIRST_LOGIN_FILE
        if not users.exists():
            password = secrets.token_urlsafe(12)
            users.create_superuser("admin", "", password)
            settings.DATA_DIR.mkdir(parents=True, exist_ok=True)
            path.write_text(f"username: admin\npassword: {password}\n")
            path.chmod(0o600)
            self.stdout.write(
                f"Created the first local account. Sign in as 'admin' with password "
                f"{password} (also kept in {path})."
            )
        elif path.exists():
            self.stdout.write(f"Sign in with the account in {path}.")
        else:
            self.stdout.write(
                "Sign in with your account; add one with: "
                ".venv/bin/python manage.py createsuperuser"
            )


def _check_port_free(host: str, port: int) -> None:
    """Fail before preparing anything (and before saying where the arena is) when Daphne could
    not listen there. Another process could take the port in between; that is rare enough."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise CommandError(
                f"Cannot serve on {host}:{port}: {exc.strerror or exc}. Stop what uses it, or "
                f"pick another port: make run PORT={port + 1}"
            ) from None
