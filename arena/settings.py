"""Django settings. Everything configurable comes from the environment through arena.env.

Defaults make a fresh clone run at once: SQLite in the local data folder, the in-memory
channel layer and eager Celery. DATABASE_URL and REDIS_URL switch on the real services.
"""

import secrets
from pathlib import Path

import dj_database_url
from csp.constants import NONE, SELF
from django.core.exceptions import ImproperlyConfigured

from arena.env import env_bool, env_float, env_int, env_list, env_str, env_url

BASE_DIR = Path(__file__).resolve().parent.parent
DATA_DIR = Path(env_str("ARENA_DATA_DIR") or BASE_DIR / "var")

DEBUG = env_bool("ARENA_DEBUG", True)


def _secret_key() -> str:
    key = env_str("ARENA_SECRET_KEY")
    if key:
        return key
    if not DEBUG:
        raise ImproperlyConfigured(
            "ARENA_SECRET_KEY is not set. With ARENA_DEBUG=0 the arena needs a secret key from "
            "the environment, e.g. ARENA_SECRET_KEY=\"$(python -c 'import secrets; "
            "print(secrets.token_urlsafe(50))')\""
        )
    # Development: generate once and keep it in the data folder so sessions survive restarts.
    path = DATA_DIR / "secret_key"
    if path.exists():
        return path.read_text().strip()
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(50)
    path.write_text(key)
    path.chmod(0o600)
    return key


SECRET_KEY = _secret_key()
ALLOWED_HOSTS = env_list("ARENA_ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env_list("ARENA_CSRF_TRUSTED_ORIGINS", [])
for _origin in CSRF_TRUSTED_ORIGINS:
    if not _origin.startswith(("http://", "https://")):
        raise ImproperlyConfigured(
            "ARENA_CSRF_TRUSTED_ORIGINS entries must start with http:// or https://, "
            f"got {_origin!r}"
        )

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "channels",
    "arena",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "csp.middleware.CSPMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "arena.urls"
ASGI_APPLICATION = "arena.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# Database: SQLite in the data folder unless DATABASE_URL says otherwise.
DATABASE_URL = (
    env_url("DATABASE_URL", schemes=("sqlite", "postgres", "postgresql", "pgsql"))
    or f"sqlite:///{DATA_DIR / 'arena.sqlite3'}"
)
try:
    DATABASES = {"default": dj_database_url.parse(DATABASE_URL)}
except ValueError as exc:
    raise ImproperlyConfigured(f"DATABASE_URL is malformed: {exc}") from None
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # One bounded pool per process (psycopg_pool): under ASGI every thread of the sync pool
    # would otherwise keep a connection of its own, and bursts ran PostgreSQL out of them. A
    # request borrows a connection and gives it back at its end; when all are in use it waits
    # up to ARENA_DB_POOL_TIMEOUT seconds for one.
    DATABASES["default"]["OPTIONS"] = {
        "pool": {
            "min_size": 1,
            "max_size": env_int("ARENA_DB_POOL_SIZE", 8, minimum=1),
            "timeout": env_float("ARENA_DB_POOL_TIMEOUT", 10.0, minimum=0.1),
            "max_idle": 60.0,
        }
    }
else:
    # Connections are kept between requests: opening one (and checkpointing SQLite's log on
    # close) costs more than most of the arena's queries.
    DATABASES["default"]["CONN_MAX_AGE"] = env_int("ARENA_DB_CONN_MAX_AGE", 60, minimum=0)
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Wait for a writer instead of failing at once; WAL lets readers run beside one writer.
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 20,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Redis: channel layer, Celery broker and result backend. Unset: in-process defaults.
REDIS_URL = env_url("REDIS_URL", schemes=("redis", "rediss", "unix"))
if REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": [REDIS_URL]},
        }
    }
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

# The cache debounces leaderboard refreshes across processes when Redis is there.
if REDIS_URL:
    CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

CELERY_BROKER_URL = REDIS_URL or "memory://"
CELERY_RESULT_BACKEND = REDIS_URL or None
CELERY_TASK_ALWAYS_EAGER = not REDIS_URL
CELERY_TASK_EAGER_PROPAGATES = True
# Eager mode only: tasks a vote triggers run on a thread beside the request.
ARENA_EAGER_TASKS_IN_BACKGROUND = True
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "index"
LOGOUT_REDIRECT_URL = "index"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = Path(env_str("ARENA_STATIC_ROOT") or DATA_DIR / "staticfiles")
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}
# In debug the files are served from the finders, so collectstatic is not needed to develop.
WHITENOISE_USE_FINDERS = DEBUG
WHITENOISE_AUTOREFRESH = DEBUG

SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = False  # the page's JavaScript reads it for fetch() POSTs
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
# Content-Security-Policy (django-csp): the pages run only the arena's own static files. No
# inline script, event handler or style attribute runs (json_script data blocks are not
# scripts); model output cannot make the browser fetch from anywhere else; the battle's
# WebSocket is 'self' (same host and port, ws: or wss:).
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [NONE],
        "script-src": [SELF],
        "style-src": [SELF],
        "img-src": [SELF],
        "font-src": [SELF],
        "connect-src": [SELF],
        "form-action": [SELF],
        "base-uri": [NONE],
        "frame-ancestors": [NONE],
    }
}
if not DEBUG:
    SESSION_COOKIE_SECURE = env_bool("ARENA_SECURE_COOKIES", True)
    CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE

# Arena behaviour.
ARENA_MIN_VOTES = env_int("ARENA_MIN_VOTES", 30, minimum=0)
# Leaderboards: bootstrap rounds, seed, and when a vote triggers a debounced refresh.
ARENA_LEADERBOARD_ROUNDS = env_int("ARENA_LEADERBOARD_ROUNDS", 1000, minimum=1)
ARENA_LEADERBOARD_SEED = env_int("ARENA_LEADERBOARD_SEED", 0, minimum=0)
ARENA_REFRESH_AFTER_VOTES = env_bool("ARENA_REFRESH_AFTER_VOTES", True)
ARENA_REFRESH_EVERY_VOTES = env_int("ARENA_REFRESH_EVERY_VOTES", 50, minimum=1)
ARENA_REFRESH_MINUTES = env_int("ARENA_REFRESH_MINUTES", 10, minimum=0)
ARENA_MAX_TURNS = env_int("ARENA_MAX_TURNS", 8, minimum=1)
# A side's streamed text goes to the browser at most once per this many ms (the first token at
# once); 0 sends every upstream chunk as its own message.
ARENA_STREAM_FLUSH_MS = env_float("ARENA_STREAM_FLUSH_MS", 25.0, minimum=0.0)
ARENA_MAX_PROMPT_CHARS = env_int("ARENA_MAX_PROMPT_CHARS", 20_000, minimum=1)
# Eval-set answer generation: calls at a time per endpoint (kind + base URL + model id).
ARENA_GENERATE_CONCURRENCY = env_int("ARENA_GENERATE_CONCURRENCY", 4, minimum=1)
# Judge runs: calls at once per endpoint, and the first retry's wait in seconds.
ARENA_JUDGE_CONCURRENCY = env_int("ARENA_JUDGE_CONCURRENCY", 4, minimum=1)
ARENA_JUDGE_RETRY_BACKOFF = env_float("ARENA_JUDGE_RETRY_BACKOFF", 2.0)
# Upstream model endpoints, in seconds.
ARENA_TIMEOUT_CONNECT = env_float("ARENA_TIMEOUT_CONNECT", 5.0)
ARENA_TIMEOUT_FIRST_TOKEN = env_float("ARENA_TIMEOUT_FIRST_TOKEN", 30.0)
ARENA_TIMEOUT_TOTAL = env_float("ARENA_TIMEOUT_TOTAL", 300.0)
# Recorded answers replay word by word with this pause, so the demo streams visibly.
# Environment variables a contestant's api_key_env may name (names or shell patterns); the
# server's own settings (ARENA_*, DATABASE_*, REDIS_*, *SECRET*...) never, whatever this says.
ARENA_PROVIDER_KEY_VARS = env_list("ARENA_PROVIDER_KEY_VARS", ["*_API_KEY"])
ARENA_RECORDED_CHUNK_DELAY_MS = env_int("ARENA_RECORDED_CHUNK_DELAY_MS", 10, minimum=0)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env_str("ARENA_LOG_LEVEL", "INFO").upper()},
    # httpx logs every request at INFO; upstream failures are reported by the providers.
    "loggers": {"httpx": {"level": "WARNING"}, "httpcore": {"level": "WARNING"}},
}

# Celery queues: each kind of work has a queue of its own, so a long judge run or a batch of
# answer generation never delays a leaderboard refresh (deploy/prod_local.py starts one worker
# per queue: `celery -A arena worker -Q judge`, ...). Tasks not listed (arena.ping) go to the
# default queue "celery", which the ratings worker also consumes. Routes only matter with
# REDIS_URL; without it tasks run eagerly in the calling process.
CELERY_TASK_ROUTES = {
    "arena.judge_run": {"queue": "judge"},
    "arena.judge_battle": {"queue": "judge"},
    "arena.generate_answers": {"queue": "generation"},
    "arena.leaderboard_refresh": {"queue": "ratings"},
    "arena.battles_sweep": {"queue": "ratings"},
}
# Periodic tasks, sent by `celery -A arena beat` (one beat process for the whole deployment).
CELERY_BEAT_SCHEDULE = {
    # Void the battles a crashed server process left streaming (arena/battles/tasks.py).
    "battles-sweep": {"task": "arena.battles_sweep", "schedule": 300.0},
}
