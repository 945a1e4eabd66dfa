import os
import shutil
import subprocess
import sys
import uuid

import pytest
from channels.db import database_sync_to_async
from django.conf import settings as django_settings

from tests.factories import make_user
from tests.support import (
    CHROMIUM,
    REQUIRE_SERVICES,
    ROOT,
    TEST_REDIS_URL,
    server_env,
    tcp_reachable,
    unavailable,
)
from tests.upstream import upstream_fixture  # noqa: F401  (the "upstream" fixture)


def _postgres_pass_problem() -> str | None:
    """In the PostgreSQL pass (ARENA_TEST_POSTGRES=1), say why the server cannot be used."""
    if os.environ.get("ARENA_TEST_POSTGRES") != "1":
        return None
    db = django_settings.DATABASES["default"]
    if db["ENGINE"] != "django.db.backends.postgresql":
        return f"ARENA_TEST_POSTGRES=1 but DATABASE_URL is not PostgreSQL ({db['ENGINE']})"
    url = f"postgres://{db.get('HOST') or '127.0.0.1'}:{db.get('PORT') or 5432}"
    if not tcp_reachable(url, 5432):
        return f"PostgreSQL is not reachable at {url}; set TEST_POSTGRES_URL for make test"
    return None


def pytest_collection_modifyitems(config, items):
    # Browser tests last: Playwright's sync API keeps an event loop running in this thread
    # while the session's browser lives, which asyncio tests cannot share.
    items.sort(key=lambda item: item.get_closest_marker("browser") is not None)
    problem = _postgres_pass_problem()
    if problem is None:
        return
    if REQUIRE_SERVICES:
        pytest.exit(f"{problem} (ARENA_REQUIRE_SERVICES=1 makes this a failure)", returncode=1)
    marker = pytest.mark.skip(reason=f"{problem} (set ARENA_REQUIRE_SERVICES=1 to fail instead)")
    for item in items:
        item.add_marker(marker)


@pytest.fixture(scope="session")
def django_db_modify_db_settings(django_db_modify_db_settings_parallel_suffix, tmp_path_factory):
    """Test on a SQLite *file*, as the arena runs, not the shared-cache in-memory database,
    whose table locks ignore the busy timeout and make concurrent writers fail at once. (The
    suffix fixture gives each pytest-xdist worker its own PostgreSQL test database.)"""
    from django.db import connections

    db = connections["default"].settings_dict
    if db["ENGINE"] == "django.db.backends.sqlite3":
        db["TEST"]["NAME"] = str(tmp_path_factory.mktemp("db") / "test-arena.sqlite3")


@pytest.fixture
async def _db_thread_closed():
    """Close the connection database_sync_to_async opened in its worker thread, so the next
    test does not inherit it."""
    yield
    await database_sync_to_async(close_old_connections_for_real)()


def close_old_connections_for_real():
    from django.db import connections

    for conn in connections.all(initialized_only=True):
        conn.close()


@pytest.fixture(scope="session")
def redis_url():
    """A real Redis database for the test, emptied before and after."""
    import redis

    if not tcp_reachable(TEST_REDIS_URL, 6379):
        unavailable(f"Redis is not reachable at {TEST_REDIS_URL}", "Set ARENA_TEST_REDIS_URL.")
    client = redis.Redis.from_url(TEST_REDIS_URL)
    client.flushdb()
    yield TEST_REDIS_URL
    client.flushdb()
    client.close()


@pytest.fixture
def redis_settings(settings, redis_url):
    """Point the channel layer, Celery and /healthz at the real Redis for one test."""
    settings.REDIS_URL = redis_url
    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": [redis_url]},
        }
    }
    return settings


def _test_database_url() -> str:
    """The URL of the database pytest-django created, for child processes to share it."""
    from django.db import connection

    db = connection.settings_dict
    if db["ENGINE"] == "django.db.backends.sqlite3":
        return f"sqlite:///{db['NAME']}"
    auth = db["USER"] + (f":{db['PASSWORD']}" if db.get("PASSWORD") else "")
    return f"postgres://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


WORKER_QUEUES = sorted(
    {"celery"} | {route["queue"] for route in django_settings.CELERY_TASK_ROUTES.values()}
)


@pytest.fixture(scope="session")
def celery_worker_pid(redis_url, tmp_path_factory, django_db_setup, django_db_blocker):
    """A real `celery -A arena worker` process on the Redis broker and the test database;
    stopped by its pid. Tests that need it to see their rows use transaction=True."""
    data_dir = tmp_path_factory.mktemp("worker")
    with django_db_blocker.unblock():
        database_url = _test_database_url()
    env = server_env(data_dir, REDIS_URL=redis_url, DATABASE_URL=database_url)
    log_path = data_dir / "worker.log"
    name = f"test-{uuid.uuid4().hex[:8]}@%h"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "arena",
                "worker",
                "--pool",
                "solo",
                "--loglevel",
                "INFO",
                "-n",
                name,
                "-Q",
                ",".join(WORKER_QUEUES),  # every queue of CELERY_TASK_ROUTES, and the default
                "--without-gossip",
                "--without-mingle",
            ],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    yield proc.pid
    proc.terminate()
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


# Per module, not per session: while it lives, Playwright's sync API keeps an event loop
# running in this thread, which Django's ORM and asyncio tests refuse; under pytest-xdist a
# worker runs other files after a browser file, so the loop must end with the file.
@pytest.fixture(scope="module")
def chromium_browser():
    """Debian's Chromium driven by Playwright (never a downloaded browser)."""
    if not shutil.which(CHROMIUM) and not os.path.exists(CHROMIUM):
        unavailable(
            f"Chromium not found at {CHROMIUM}", "apt-get install chromium, or set ARENA_CHROMIUM."
        )
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
            ],
        )
        yield browser
        browser.close()


@pytest.fixture
def page(chromium_browser):
    # The pages' CSP forbids eval(), which Playwright's wait_for_function polls with; the CSP
    # itself is checked by tests/security/test_csp.py in a context of its own.
    context = chromium_browser.new_context(viewport={"width": 1280, "height": 800}, bypass_csp=True)
    page = context.new_page()
    yield page
    context.close()


@pytest.fixture(scope="session")
def artifacts_dir():
    path = ROOT / "tests" / "artifacts"
    path.mkdir(exist_ok=True)
    return path


@pytest.fixture(autouse=True)
def _no_background_refresh(settings):
    """Votes in tests do not start leaderboard refreshes beside the test; the tests of that
    behaviour turn it back on."""
    settings.ARENA_REFRESH_AFTER_VOTES = False
    settings.ARENA_EAGER_TASKS_IN_BACKGROUND = False


@pytest.fixture(autouse=True)
def _plain_static_storage(settings):
    """In-process tests render templates without collectstatic; the hashed, compressed
    storage is tested for real against a Daphne process in test_health.py."""
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }


# --- named users: alice votes, bob is staff, carol is signed in with no rights -------------


@pytest.fixture
def alice(db):
    return make_user("alice")


@pytest.fixture
def bob(db):
    return make_user("bob", is_staff=True, is_superuser=True)


@pytest.fixture
def carol(db):
    return make_user("carol")
