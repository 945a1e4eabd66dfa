"""Invite links: staff let people in without creating each account by hand."""

import secrets

from django.conf import settings
from django.db import models
from django.utils import timezone


def new_invite_token() -> str:
    return secrets.token_urlsafe(24)


class Invite(models.Model):
    """One link; ``max_uses`` accounts may be created with it until ``expires_at``."""

    token = models.CharField(max_length=64, unique=True, default=new_invite_token, editable=False)
    note = models.CharField(max_length=200, blank=True, help_text="Who it is for.")
    max_uses = models.PositiveIntegerField(default=1)
    uses = models.PositiveIntegerField(default=0, editable=False)
    expires_at = models.DateTimeField()
    revoked = models.BooleanField(default=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(uses__lte=models.F("max_uses")), name="invite_uses_within_max"
            ),
            models.CheckConstraint(
                condition=models.Q(max_uses__gte=1), name="invite_max_uses_min_1"
            ),
        ]

    def __str__(self) -> str:
        return self.note or f"Invite {self.pk}"

    def problem(self, now=None) -> str:
        """Why this link cannot be used now ("" when it can)."""
        if self.revoked:
            return "This invite link was revoked."
        if (now or timezone.now()) >= self.expires_at:
            return "This invite link has expired."
        if self.uses >= self.max_uses:
            return "This invite link has been used up."
        return ""
