"""Which environment variables may hold a provider's API key.

Staff name a contestant's key by the variable that holds it (``api_key_env``), and the value is
sent upstream as a bearer token: a free choice would let staff send any server secret to a URL
of theirs. So only names the operator allows (``ARENA_PROVIDER_KEY_VARS``: names or shell
patterns, default ``*_API_KEY``) are used, and the server's own settings never, whatever the
allowlist says. Checked when a contestant is validated (admin, ``models sync``) and again at
call time, for rows written before or around the validation.
"""

from fnmatch import fnmatchcase

from django.conf import settings

DEFAULT_ALLOWED = ("*_API_KEY",)
# Never a provider key: the arena's own configuration and the usual server secrets.
NEVER = (
    "ARENA_*",
    "DJANGO_*",
    "CELERY_*",
    "DATABASE_*",
    "REDIS_*",
    "PG*",
    "*SECRET*",
    "*PASSWORD*",
    "*PASSWD*",
)


def key_var_refusal(name: str) -> str:
    """Why ``name`` may not be used as an API key variable, or '' when it may."""
    allowed = tuple(getattr(settings, "ARENA_PROVIDER_KEY_VARS", DEFAULT_ALLOWED))
    if any(fnmatchcase(name, pattern) for pattern in NEVER):
        return f"{name} looks like one of the server's own settings or secrets, never an API key"
    if not any(fnmatchcase(name, pattern) for pattern in allowed):
        return (
            f"{name} is not an allowed API key variable "
            f"(ARENA_PROVIDER_KEY_VARS allows {', '.join(allowed)})"
        )
    return ""
