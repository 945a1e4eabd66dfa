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
