"""`make run`'s path: prepare the database, create the first account, serve with Daphne."""

import re
import signal
import subprocess
import sys
import time

import httpx
import pytest

from tests.support import ROOT, daphne_server, free_port, manage, server_env


def test_serve_prepares_once_and_creates_one_first_account(tmp_path):
    env = server_env(tmp_path)
    first = manage(env, "serve", "--prepare-only", "--no-demo")
    password = re.search(r"password (\S+) \(also kept in", first.stdout)
    assert password, first.stdout
    assert "Arena at http://127.0.0.1:8000/" in first.stdout
    login_file = tmp_path / "first-login.txt"
    assert password.group(1) in login_file.read_text()
    assert login_file.stat().st_mode & 0o077 == 0

    second = manage(env, "serve", "--prepare-only", "--no-demo")
    assert "Created the first local account" not in second.stdout
    assert str(login_file) in second.stdout
    count = manage(
        env,
        "shell",
        "-c",
        "from django.contrib.auth.models import User; print(User.objects.count())",
    )
    assert count.stdout.strip().splitlines()[-1] == "1"


def test_serve_answers_and_stops_cleanly_on_ctrl_c(tmp_path):
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "manage.py", "serve", "--no-demo", "--port", str(port)],
        cwd=ROOT,
        env=server_env(tmp_path),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                health = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
                break
            except httpx.TransportError:
                assert proc.poll() is None, proc.stdout.read().decode()
                assert time.monotonic() < deadline, "serve did not answer within 60 s"
                time.sleep(0.2)
        assert health.status_code == 200
        assert httpx.get(f"http://127.0.0.1:{port}/", timeout=5).status_code == 200
        proc.send_signal(signal.SIGINT)
        assert proc.wait(15) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@pytest.mark.browser
def test_a_person_can_sign_in_with_the_first_account(tmp_path, page, artifacts_dir):
    env = server_env(tmp_path)
    out = manage(env, "serve", "--prepare-only", "--no-demo").stdout
    password = re.search(r"password (\S+) \(also kept in", out).group(1)
    with daphne_server(env, tmp_path / "daphne.log") as base:
        page.goto(base + "/")
        assert page.locator("h1").inner_text() == "Pairwise preference arena"
        page.get_by_role("link", name="Sign in").first.click()
        page.get_by_label("Username").fill("admin")
        page.get_by_label("Password").fill("wrong-password")
        page.get_by_role("button", name="Sign in").click()
        assert "did not match" in page.locator(".error").inner_text()
        page.get_by_label("Password").fill(password)
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url(base + "/")
        assert page.locator(".who").inner_text() == "admin"
        page.screenshot(path=str(artifacts_dir / "home-signed-in.png"), full_page=True)


def test_make_runs_default_serves_with_debug_off_and_the_sites_error_pages(tmp_path):
    """`make run` (no ARENA_DEBUG, no ARENA_SECRET_KEY) on every address: no technical pages,
    static files still served (collected by serve), a private generated key."""
    env = server_env(tmp_path)
    del env["ARENA_DEBUG"]
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "manage.py",
            "serve",
            "--no-demo",
            "--host",
            "0.0.0.0",
            "--port",
            str(port),
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                httpx.get(base + "/healthz", timeout=1)
                break
            except httpx.TransportError:
                assert proc.poll() is None, proc.stdout.read().decode()
                assert time.monotonic() < deadline, "serve did not answer within 90 s"
                time.sleep(0.2)
        home = httpx.get(base + "/", timeout=10)
        missing = httpx.get(base + "/no/such/page/", timeout=10)
        bad_host = httpx.get(base + "/", headers={"Host": "evil.example"}, timeout=10)
        css = re.search(r'href="(/static/arena/arena\.[0-9a-f]{12}\.css)"', home.text)
        assert css, home.text[:500]
        asset = httpx.get(base + css.group(1), timeout=10)
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            out = proc.communicate(timeout=15)[0].decode()
        except subprocess.TimeoutExpired:
            proc.kill()
            out = proc.communicate()[0].decode()
    assert home.status_code == 200
    assert asset.status_code == 200 and "--accent" in asset.text
    assert missing.status_code == 404
    assert "Not found" in missing.text and 'class="brand"' in missing.text
    for page in (missing.text, bad_host.text):
        assert "Traceback" not in page and "DEBUG = True" not in page
        assert "URLconf" not in page and "ALLOWED_HOSTS" not in page
    assert bad_host.status_code == 400
    assert "Debug mode is on" not in out
    assert "ARENA_ALLOWED_HOSTS" in out
    key = tmp_path / "secret_key"
    assert key.stat().st_mode & 0o777 == 0o600


def test_serve_on_a_port_in_use_says_so_before_saying_where_the_arena_is(tmp_path):
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = manage(
            server_env(tmp_path), "serve", "--no-demo", "--port", str(port), check=False
        )
    assert result.returncode != 0
    assert f"Cannot serve on 127.0.0.1:{port}" in result.stderr
    assert f"make run PORT={port + 1}" in result.stderr
    assert "Arena at" not in result.stdout
    assert not (tmp_path / "arena.sqlite3").exists()  # nothing prepared


def test_demo_already_loaded_is_plain_text_not_a_red_notice(tmp_path):
    env = {**server_env(tmp_path), "DJANGO_COLORS": ""}
    manage(env, "migrate", "--verbosity", "0")
    manage(env, "load_demo")
    again = manage(env, "load_demo", "--force-color")
    assert "already loaded" in again.stdout
    assert "\x1b[" not in again.stdout.split("already loaded")[0].splitlines()[-1]
