"""Django settings. Everything configurable comes from the environment through arena.env.

Defaults make a fresh clone run at once: SQLite in the local data folder, the in-memory
channel layer and eager Celery. DATABASE_URL and REDIS_URL switch on the real services.
"""

import os
import secrets
from datetime import timedelta
from pathlib import Path

import dj_database_url
from csp.constants import NONE, SELF
from django.core.exceptions import ImproperlyConfigured

from arena.env import env_bool, env_float, env_int, env_list, env_str, env_url

BASE_DIR = Path(__file__).resolve().parent.parent
DATA_DIR = Path(env_str("ARENA_DATA_DIR") or BASE_DIR / "var")

# Off unless asked for: `make run` serves like production (no technical error pages, even
# on HOST=0.0.0.0); ARENA_DEBUG=1 turns Django's debug mode on for development.
DEBUG = env_bool("ARENA_DEBUG", False)

SECRET_KEY_FILE = DATA_DIR / "secret_key"


def _secret_key() -> str:
    """ARENA_SECRET_KEY, or a key generated once and kept in the data folder (mode 0600), so
    sessions survive restarts and a fresh clone runs without configuration. Several processes
    starting at once agree: the file is created exclusively and the losers read it."""
    key = env_str("ARENA_SECRET_KEY")
    if key:
        return key
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(SECRET_KEY_FILE, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        key = SECRET_KEY_FILE.read_text().strip()
        if len(key) < 50:
            raise ImproperlyConfigured(
                f"{SECRET_KEY_FILE} holds no usable secret key; delete it to have one "
                "generated, or set ARENA_SECRET_KEY"
            ) from None
        return key
    key = secrets.token_urlsafe(50)
    with os.fdopen(fd, "w") as file:
        file.write(key)
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
    "axes",
    "arena",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "csp.middleware.CSPMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "arena.core.nul.RefuseNulMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "arena.api.middleware.BearerTokenMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, as django-axes asks: it turns a refused sign-in into the lockout page.
    "axes.middleware.AxesMiddleware",
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
# Sign-in throttling (django-axes, arena/core/throttle.py): after ARENA_LOGIN_FAILURE_LIMIT
# wrong passwords in a row for one account from one address, that account is refused from
# that address for ARENA_LOGIN_COOLOFF_MINUTES, counted from the last failure before the lock
# (attempts during the lock do not extend it); other accounts and addresses are not affected.
AUTHENTICATION_BACKENDS = [
    "arena.core.throttle.SignInThrottle",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = env_int("ARENA_LOGIN_FAILURE_LIMIT", 5, minimum=1)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("ARENA_LOGIN_COOLOFF_MINUTES", 15, minimum=1))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False
AXES_LOCKOUT_CALLABLE = "arena.core.throttle.locked_out"
AXES_CLIENT_IP_CALLABLE = "arena.core.throttle.client_ip"
AXES_VERBOSE = False
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "index"
LOGOUT_REDIRECT_URL = "index"

# Letting people in (arena/accounts/): self sign-up for these email domains (empty: off),
# invite links' default lifetime, and leaderboards readable without an account.
ARENA_SIGNUP_DOMAINS = [d.lower().lstrip("@") for d in env_list("ARENA_SIGNUP_DOMAINS", [])]
ARENA_INVITE_DAYS = env_int("ARENA_INVITE_DAYS", 7, minimum=1)
ARENA_PUBLIC_LEADERBOARDS = env_bool("ARENA_PUBLIC_LEADERBOARDS", False)

# Company sign-in over OpenID Connect (arena/accounts/oidc.py): on when a client id is set.
# The provider's endpoints are given one by one (no discovery call at start-up).
ARENA_OIDC_CLIENT_ID = env_str("ARENA_OIDC_CLIENT_ID")
ARENA_OIDC = bool(ARENA_OIDC_CLIENT_ID)
ARENA_OIDC_NAME = env_str("ARENA_OIDC_NAME", "your company account")
ARENA_OIDC_EMAIL_DOMAINS = [d.lower().lstrip("@") for d in env_list("ARENA_OIDC_EMAIL_DOMAINS", [])]
ARENA_OIDC_GROUPS_CLAIM = env_str("ARENA_OIDC_GROUPS_CLAIM", "groups")
ARENA_OIDC_STAFF_GROUPS = env_list("ARENA_OIDC_STAFF_GROUPS", [])
if ARENA_OIDC:

    def _oidc_url(name: str) -> str:
        url = env_url(name, schemes=("https", "http"))
        if not url:
            raise ImproperlyConfigured(f"{name} must be set when ARENA_OIDC_CLIENT_ID is")
        return url

    OIDC_OP_AUTHORIZATION_ENDPOINT = _oidc_url("ARENA_OIDC_AUTHORIZATION_URL")
    OIDC_OP_TOKEN_ENDPOINT = _oidc_url("ARENA_OIDC_TOKEN_URL")
    OIDC_OP_USER_ENDPOINT = _oidc_url("ARENA_OIDC_USERINFO_URL")
    OIDC_OP_JWKS_ENDPOINT = _oidc_url("ARENA_OIDC_JWKS_URL")
    OIDC_RP_CLIENT_ID = ARENA_OIDC_CLIENT_ID
    OIDC_RP_CLIENT_SECRET = env_str("ARENA_OIDC_CLIENT_SECRET")
    if not OIDC_RP_CLIENT_SECRET:
        raise ImproperlyConfigured(
            "ARENA_OIDC_CLIENT_SECRET must be set when ARENA_OIDC_CLIENT_ID is"
        )
    OIDC_RP_SIGN_ALGO = env_str("ARENA_OIDC_SIGN_ALGO", "RS256")
    OIDC_RP_SCOPES = env_str("ARENA_OIDC_SCOPES", "openid email profile")
    OIDC_USE_PKCE = True
    OIDC_USERNAME_ALGO = "arena.accounts.oidc.username_for"
    LOGIN_REDIRECT_URL_FAILURE = "/accounts/login/?oidc=refused"
    AUTHENTICATION_BACKENDS.append("arena.accounts.oidc.CompanyBackend")
    INSTALLED_APPS.append("mozilla_django_oidc")

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
# HTTPS. `make run` serves plain HTTP, so nothing here is on by default; behind a proxy that
# terminates TLS set ARENA_BEHIND_TLS_PROXY=1 (the proxy must set X-Forwarded-Proto and
# append to X-Forwarded-For): requests it marks https count as secure, plain HTTP is
# redirected to HTTPS, cookies are sent over HTTPS only. HSTS is a promise browsers keep for
# ARENA_HSTS_SECONDS, so it is never turned on implicitly.
ARENA_BEHIND_TLS_PROXY = env_bool("ARENA_BEHIND_TLS_PROXY", False)
if ARENA_BEHIND_TLS_PROXY:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env_bool("ARENA_SECURE_SSL_REDIRECT", ARENA_BEHIND_TLS_PROXY)
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]  # the proxy's own health checks may come over HTTP
SECURE_HSTS_SECONDS = env_int("ARENA_HSTS_SECONDS", 0, minimum=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("ARENA_HSTS_INCLUDE_SUBDOMAINS", False)
SECURE_HSTS_PRELOAD = env_bool("ARENA_HSTS_PRELOAD", False)
SESSION_COOKIE_SECURE = env_bool(
    "ARENA_SECURE_COOKIES", ARENA_BEHIND_TLS_PROXY or SECURE_SSL_REDIRECT
)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE

# Arena behaviour.
ARENA_MIN_VOTES = env_int("ARENA_MIN_VOTES", 30, minimum=0)
# How battle pairs are drawn: weighted (by Contestant.sampling_weight), uniform, or active
# (computed after each leaderboard refresh; see arena/battles/sampling.py).
ARENA_SAMPLING_POLICY = env_str("ARENA_SAMPLING_POLICY", "weighted")
if ARENA_SAMPLING_POLICY not in ("weighted", "uniform", "active"):
    raise ImproperlyConfigured("ARENA_SAMPLING_POLICY must be weighted, uniform or active")
# Leaderboard fits: "none" (every vote counts 1) or "ipw" (1 / pair probability, sandwich CIs).
# Fragility refits the boards several times: boards past this many votes go without it.
ARENA_FRAGILITY_MAX_VOTES = env_int("ARENA_FRAGILITY_MAX_VOTES", 200_000, minimum=0)

ARENA_LEADERBOARD_WEIGHTING = env_str("ARENA_LEADERBOARD_WEIGHTING", "none")
if ARENA_LEADERBOARD_WEIGHTING not in ("none", "ipw"):
    raise ImproperlyConfigured("ARENA_LEADERBOARD_WEIGHTING must be none or ipw")
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

# One handler, on the root logger: every line once. Django's own "django" logger would print
# through its console handler and again through the root's (its default config propagates).
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"client_errors": {"()": "arena.core.logging.ClientErrorsWithoutTraceback"}},
    "handlers": {
        "console": {"class": "logging.StreamHandler", "filters": ["client_errors"]},
    },
    "root": {"handlers": ["console"], "level": env_str("ARENA_LOG_LEVEL", "INFO").upper()},
    "loggers": {
        "django": {"handlers": [], "propagate": True},
        # httpx logs every request at INFO; upstream failures are reported by the providers.
        "httpx": {"level": "WARNING"},
        "httpcore": {"level": "WARNING"},
        # django-axes logs every sign-in at INFO; failures and lockouts come at WARNING.
        "axes": {"level": "WARNING"},
    },
}

# --- Battle sockets: per-user limits and the sweep of battles left streaming ---------------
# (owned by arena/battles; read there with getattr(settings, NAME, default))
# Battles one user can have streaming at once (across sockets and server processes).
ARENA_MAX_CONCURRENT_BATTLES = env_int("ARENA_MAX_CONCURRENT_BATTLES", 3, minimum=1)
# Rounds (new battles, follow-ups, regenerates) one user can start in any 60 s.
ARENA_PROMPTS_PER_MINUTE = env_int("ARENA_PROMPTS_PER_MINUTE", 20, minimum=1)
# Votes one user can cast in any 24 hours (live and eval-set).
ARENA_VOTES_PER_DAY = env_int("ARENA_VOTES_PER_DAY", 500, minimum=1)
# --- API tokens (arena/api) ---------------------------------------------------------------
# Requests one API token can make per minute (counted in the cache); 0: no limit.
ARENA_API_REQUESTS_PER_MINUTE = env_int("ARENA_API_REQUESTS_PER_MINUTE", 600, minimum=0)
# Battles one request to POST /api/battles/batch/ can carry.
ARENA_API_MAX_BATCH = env_int("ARENA_API_MAX_BATCH", 5000, minimum=1)
# A battle still "streaming" this many seconds after its round began was left by a crash and
# is voided by `manage.py battles sweep` / the arena.battles_sweep task (and at `serve`).
ARENA_SWEEP_STREAMING_AFTER = env_float(
    "ARENA_SWEEP_STREAMING_AFTER",
    ARENA_TIMEOUT_TOTAL + 3 * (ARENA_TIMEOUT_CONNECT + ARENA_TIMEOUT_FIRST_TOKEN) + 60,
    minimum=1.0,
)

# --- Vote quality (owned by arena/quality): a vote failing a check is kept but not rated ----
# Too fast: fewer seconds from answers ready to vote than both answers' characters divided by
# this reading speed (50 chars/s is ~600 words a minute, a fast skim), capped at the next one.
ARENA_QUALITY_READ_CHARS_PER_SECOND = env_float(
    "ARENA_QUALITY_READ_CHARS_PER_SECOND", 50.0, minimum=1.0
)
ARENA_QUALITY_MAX_READ_SECONDS = env_float("ARENA_QUALITY_MAX_READ_SECONDS", 20.0, minimum=0.0)
# Votes past this many by one voter in 24 hours are excluded (ARENA_VOTES_PER_DAY refuses).
ARENA_QUALITY_VOTES_PER_DAY = env_int("ARENA_QUALITY_VOTES_PER_DAY", 200, minimum=1)
# A live battle whose first prompt the voter already voted on this many times is excluded.
ARENA_QUALITY_PROMPT_REPEATS = env_int("ARENA_QUALITY_PROMPT_REPEATS", 2, minimum=1)

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
    "arena.calibration_refresh": {"queue": "ratings"},
}
# Periodic tasks, sent by `celery -A arena beat` (one beat process for the whole deployment).
CELERY_BEAT_SCHEDULE = {
    # Void the battles a crashed server process left streaming (arena/battles/tasks.py).
    "battles-sweep": {"task": "arena.battles_sweep", "schedule": 300.0},
}
