import re
import secrets
import subprocess
import sys

import pytest
from django.core.exceptions import ImproperlyConfigured

from arena.env import env_bool, env_int, env_list, env_url
from tests.support import ROOT, manage, server_env


def _django_setup(env) -> subprocess.CompletedProcess:
    code = (
        "import django; django.setup(); from django.conf import settings; "
        "print(settings.SECRET_KEY)"
    )
    return subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )


@pytest.mark.parametrize(
    ("raw", "expected"), [("1", True), ("true", True), ("YES", True), ("0", False), ("off", False)]
)
def test_env_bool_reads_the_usual_spellings(monkeypatch, raw, expected):
    monkeypatch.setenv("ARENA_X", raw)
    assert env_bool("ARENA_X", not expected) is expected


def test_env_bool_names_the_variable_when_malformed(monkeypatch):
    monkeypatch.setenv("ARENA_DEBUG", "maybe")
    with pytest.raises(ImproperlyConfigured, match="ARENA_DEBUG"):
        env_bool("ARENA_DEBUG", True)


def test_env_int_checks_type_and_minimum(monkeypatch):
    monkeypatch.setenv("ARENA_N", "twelve")
    with pytest.raises(ImproperlyConfigured, match="ARENA_N must be an integer"):
        env_int("ARENA_N", 1)
    monkeypatch.setenv("ARENA_N", "-3")
    with pytest.raises(ImproperlyConfigured, match="ARENA_N must be >= 0"):
        env_int("ARENA_N", 1, minimum=0)
    monkeypatch.setenv("ARENA_N", " 42 ")
    assert env_int("ARENA_N", 1) == 42


def test_env_list_splits_on_commas(monkeypatch):
    monkeypatch.setenv("ARENA_HOSTS", "a.example, b.example,,")
    assert env_list("ARENA_HOSTS", []) == ["a.example", "b.example"]


def test_env_url_rejects_unknown_schemes(monkeypatch):
    monkeypatch.setenv("DATABASE_URL", "mysql://root@localhost/db")
    with pytest.raises(ImproperlyConfigured, match="DATABASE_URL must start with"):
        env_url("DATABASE_URL", schemes=("sqlite", "postgres"))


def _setting(env, expression: str) -> str:
    code = f"import django; django.setup(); from django.conf import settings; print({expression})"
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_debug_is_off_unless_asked_for(tmp_path):
    env = server_env(tmp_path)
    del env["ARENA_DEBUG"]
    assert _setting(env, "settings.DEBUG") == "False"
    assert _setting({**env, "ARENA_DEBUG": "1"}, "settings.DEBUG") == "True"


def test_without_a_secret_key_one_is_generated_once_and_kept_private(tmp_path):
    env = server_env(tmp_path, ARENA_DEBUG="0")
    first = _django_setup(env)
    second = _django_setup(env)
    assert first.returncode == 0, first.stderr
    key = first.stdout.strip()
    assert len(key) >= 50
    assert second.stdout.strip() == key
    path = tmp_path / "secret_key"
    assert path.read_text().strip() == key
    assert path.stat().st_mode & 0o777 == 0o600


def test_a_damaged_secret_key_file_stops_start_up_naming_it(tmp_path):
    (tmp_path / "secret_key").write_text("short\n")
    result = _django_setup(server_env(tmp_path, ARENA_DEBUG="0"))
    assert result.returncode != 0
    assert "holds no usable secret key" in result.stderr


def test_https_settings_follow_the_tls_proxy_switch(tmp_path):
    names = (
        "settings.SECURE_SSL_REDIRECT, settings.SESSION_COOKIE_SECURE, "
        "settings.CSRF_COOKIE_SECURE, getattr(settings, 'SECURE_PROXY_SSL_HEADER', None), "
        "settings.SECURE_HSTS_SECONDS"
    )
    plain = _setting(server_env(tmp_path, ARENA_DEBUG="0"), names)
    assert plain == "False False False None 0"
    proxied = _setting(
        server_env(tmp_path, ARENA_DEBUG="0", ARENA_BEHIND_TLS_PROXY="1", ARENA_HSTS_SECONDS="60"),
        names,
    )
    assert proxied == "True True True ('HTTP_X_FORWARDED_PROTO', 'https') 60"


def test_check_deploy_reports_only_the_https_settings_a_plain_http_server_lacks(tmp_path):
    env = server_env(tmp_path, ARENA_DEBUG="0", ARENA_SECRET_KEY=secrets.token_urlsafe(50))
    plain = manage(env, "check", "--deploy", check=False)
    assert plain.returncode == 0, plain.stderr
    found = set(re.findall(r"\(security\.(W\d+)\)", plain.stderr + plain.stdout))
    assert found == {"W004", "W008", "W012", "W016"}  # each explained in the README
    tls = {
        "ARENA_BEHIND_TLS_PROXY": "1",
        "ARENA_HSTS_SECONDS": "31536000",
        "ARENA_HSTS_INCLUDE_SUBDOMAINS": "1",
        "ARENA_HSTS_PRELOAD": "1",
    }
    behind_proxy = manage({**env, **tls}, "check", "--deploy", check=False)
    assert behind_proxy.returncode == 0, behind_proxy.stderr
    assert "System check identified no issues" in behind_proxy.stdout


def test_startup_with_a_malformed_variable_names_it(tmp_path):
    result = _django_setup(server_env(tmp_path, REDIS_URL="localhost:6379"))
    assert result.returncode != 0
    assert "REDIS_URL must start with" in result.stderr


def test_debug_mode_generates_a_secret_key_once_and_keeps_it(tmp_path):
    env = server_env(tmp_path, ARENA_DEBUG="1")
    first = _django_setup(env)
    second = _django_setup(env)
    assert first.returncode == 0, first.stderr
    key = first.stdout.strip()
    assert len(key) >= 50
    assert second.stdout.strip() == key
    assert (tmp_path / "secret_key").read_text().strip() == key
    assert (tmp_path / "secret_key").stat().st_mode & 0o077 == 0


def test_the_secret_key_comes_from_the_environment_when_set(tmp_path):
    result = _django_setup(server_env(tmp_path, ARENA_DEBUG="0", ARENA_SECRET_KEY="k" * 60))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "k" * 60
    assert not (tmp_path / "secret_key").exists()


def test_redis_url_switches_layer_and_celery_off_eager(tmp_path):
    code = (
        "import django; django.setup(); from django.conf import settings as s; "
        "print(s.CHANNEL_LAYERS['default']['BACKEND'], s.CELERY_TASK_ALWAYS_EAGER, "
        "s.CELERY_BROKER_URL, s.DATABASES['default']['ENGINE'])"
    )
    env = server_env(
        tmp_path, REDIS_URL="redis://127.0.0.1:6379/3", DATABASE_URL="postgres://u@db.example/x"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [
        "channels_redis.core.RedisChannelLayer",
        "False",
        "redis://127.0.0.1:6379/3",
        "django.db.backends.postgresql",
    ]
