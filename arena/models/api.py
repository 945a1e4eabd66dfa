"""Personal API tokens and the idempotency keys of battles sent through the API."""

from django.conf import settings
from django.db import models


class ApiToken(models.Model):
    """A bearer token: only its prefix (shown) and the SHA-256 of the whole are stored."""

    class Scope(models.TextChoices):
        READ = "read", "Read boards, snapshots, calibration and judge runs"
        VOTE = "vote", "Submit external battles"
        ADMIN = "admin", "Everything a staff account can do"

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens"
    )
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=16, unique=True)
    digest = models.CharField(max_length=64, unique=True)
    scopes = models.JSONField(default=list)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}...)"


class ExternalBattleKey(models.Model):
    """One idempotency key of one user, inserted before its battle in the same transaction: a
    retried or concurrent request meets the unique constraint and stores nothing. The battle
    carries the same user and the key as ``external_id``."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=200)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "key"], name="external_battle_key_unique")
        ]

    def __str__(self) -> str:
        return self.key
