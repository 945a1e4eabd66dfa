"""Personal API tokens: created with a secret shown once, stored as its SHA-256, revoked.

The secret is 32 random bytes, so a plain SHA-256 is enough (no password hashing: nothing to
guess); the first characters are kept as the prefix by which a user tells tokens apart.
"""

import hashlib
import secrets
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.core.cache import cache
from django.utils import timezone

from arena.core.errors import ArenaError
from arena.models import ApiToken

PREFIX = "arena_"
PREFIX_CHARS = 8  # after PREFIX: what the token page shows
LAST_USE_EVERY = timedelta(minutes=1)  # last_used_at is written at most this often
SCOPES = tuple(ApiToken.Scope.values)


@dataclass(frozen=True)
class Created:
    token: ApiToken
    secret: str  # shown once, never stored


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def token_create(*, user, name: str, scopes) -> Created:
    name = (name or "").strip() if isinstance(name, str) or name is None else ""
    if not name or len(name) > 100 or "\x00" in name:
        raise ArenaError("name: give the token a name of 1 to 100 characters (no NUL).")
    scopes = list(dict.fromkeys(scopes))
    unknown = [s for s in scopes if s not in SCOPES]
    if unknown or not scopes:
        raise ArenaError(f"scopes: expected one or more of {', '.join(SCOPES)}; got {scopes!r}.")
    if ApiToken.Scope.ADMIN in scopes and not user.is_staff:
        raise ArenaError("scopes: only staff accounts can have admin tokens.")
    secret = PREFIX + secrets.token_urlsafe(32)
    token = ApiToken.objects.create(
        user=user,
        name=name,
        prefix=secret[: len(PREFIX) + PREFIX_CHARS],
        digest=_digest(secret),
        scopes=scopes,
    )
    return Created(token=token, secret=secret)


def token_revoke(*, user, token_id: int) -> ApiToken:
    token = ApiToken.objects.filter(pk=token_id, user=user).first()
    if token is None:
        raise ArenaError("No such token.")
    if token.revoked_at is None:
        token.revoked_at = timezone.now()
        token.save(update_fields=["revoked_at"])
    return token


def token_authenticate(secret: str) -> ApiToken | None:
    """The live token of ``secret`` (its user active) or None; records the use, at most once a
    minute per token."""
    token = (
        ApiToken.objects.select_related("user")
        .filter(digest=_digest(secret), revoked_at__isnull=True, user__is_active=True)
        .first()
    )
    if token is None:
        return None
    now = timezone.now()
    if token.last_used_at is None or now - token.last_used_at >= LAST_USE_EVERY:
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
        token.last_used_at = now
    return token


def token_allows(token: ApiToken, scope: str) -> bool:
    """``admin`` covers everything; the admin scope itself needs a staff account still."""
    if ApiToken.Scope.ADMIN in token.scopes:
        return token.user.is_staff
    return scope in token.scopes


def token_over_limit(token: ApiToken) -> bool:
    """Counts this request in the token's current minute (the cache: Redis when configured);
    True past ARENA_API_REQUESTS_PER_MINUTE."""
    limit = settings.ARENA_API_REQUESTS_PER_MINUTE
    if limit <= 0:
        return False
    key = f"arena:api-rate:{token.pk}:{int(timezone.now().timestamp() // 60)}"
    cache.add(key, 0, timeout=120)
    try:
        count = cache.incr(key)
    except ValueError:  # expired between add and incr
        cache.set(key, 1, timeout=120)
        count = 1
    return count > limit
