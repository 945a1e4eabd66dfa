"""Letting people in: invite links and sign-up for configured email domains."""

import datetime as dt

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from arena.models.invites import Invite


def invite_create(
    *,
    created_by: AbstractBaseUser | None,
    note: str = "",
    max_uses: int = 1,
    days: int | None = None,
) -> Invite:
    if max_uses < 1:
        raise ValidationError({"max_uses": "An invite allows at least one account."})
    days = settings.ARENA_INVITE_DAYS if days is None else days
    if days < 1:
        raise ValidationError({"days": "An invite lasts at least one day."})
    return Invite.objects.create(
        created_by=created_by,
        note=note,
        max_uses=max_uses,
        expires_at=timezone.now() + dt.timedelta(days=days),
    )


def invite_redeem(*, token: str, username: str, password: str, email: str = "") -> AbstractBaseUser:
    """Create an account with the invite ``token``; one use counted, under a row lock so two
    people racing for the last use cannot both get in."""
    with transaction.atomic():
        invite = Invite.objects.select_for_update().filter(token=token).first()
        if invite is None:
            raise ValidationError({"token": "This invite link is not valid."})
        if problem := invite.problem():
            raise ValidationError({"token": problem})
        user = get_user_model().objects.create_user(
            username=username, email=email, password=password
        )
        invite.uses += 1
        invite.save(update_fields=["uses"])
    return user


def email_domain(email: str) -> str:
    return email.rpartition("@")[2].strip().lower()


def signup_open() -> bool:
    return bool(settings.ARENA_SIGNUP_DOMAINS)


def signup_allows(email: str) -> bool:
    """Whether ``email`` is at one of ``ARENA_SIGNUP_DOMAINS`` (exact domain, no subdomains)."""
    return "@" in email and email_domain(email) in settings.ARENA_SIGNUP_DOMAINS
