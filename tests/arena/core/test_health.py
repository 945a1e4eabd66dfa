import re

import httpx
import pytest

from tests.support import daphne_server, manage, server_env

pytestmark = pytest.mark.django_db


def test_healthz_reports_the_database_as_json(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok"}
    assert "no-cache" in response["Cache-Control"]


@pytest.mark.redis
def test_healthz_includes_redis_when_configured(client, redis_settings):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok", "redis": "ok"}


def test_healthz_answers_503_when_redis_is_down(client, settings):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens on port 1
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json() == {"status": "down", "database": "ok", "redis": "down"}


def test_healthz_answers_503_when_the_database_is_down(tmp_path):
    # A pooled connection is waited for up to ARENA_DB_POOL_TIMEOUT: down means "none within 0.3 s".
    env = server_env(
        tmp_path,
        DATABASE_URL="postgres://postgres@127.0.0.1:1/nowhere",
        ARENA_DB_POOL_TIMEOUT="0.3",
    )
    with daphne_server(env, tmp_path / "daphne.log") as base:
        response = httpx.get(base + "/healthz", timeout=10)
    assert response.status_code == 503
    assert response.json() == {"status": "down", "database": "down"}


def test_static_files_are_hashed_and_compressed_with_debug_off(tmp_path):
    env = server_env(tmp_path, ARENA_DEBUG="0", ARENA_SECRET_KEY="s" * 60)
    manage(env, "migrate", "--noinput")
    manage(env, "collectstatic", "--noinput")
    with daphne_server(env, tmp_path / "daphne.log") as base:
        page = httpx.get(base + "/", timeout=10)
        assert page.status_code == 200
        css = re.search(r'href="(/static/arena/arena\.[0-9a-f]{12}\.css)"', page.text)
        assert css, page.text[:500]
        asset = httpx.get(base + css.group(1), headers={"Accept-Encoding": "gzip"}, timeout=10)
        missing = httpx.get(base + "/static/arena/nope.css", timeout=10)
    assert asset.status_code == 200
    assert asset.headers["content-encoding"] == "gzip"
    assert "immutable" in asset.headers["cache-control"]
    assert "--accent" in asset.text
    assert missing.status_code == 404
