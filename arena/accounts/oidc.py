"""Company sign-in over OpenID Connect (mozilla-django-oidc), beside password sign-in.

Settings come from ``ARENA_OIDC_*`` (arena/settings.py). A sign-in is refused when
``ARENA_OIDC_EMAIL_DOMAINS`` is set and the provider's verified email is elsewhere; members of
one of ``ARENA_OIDC_STAFF_GROUPS`` (from the ``ARENA_OIDC_GROUPS_CLAIM`` claim) become staff,
checked again at each sign-in so leaving the group takes staff away.
"""

import logging

from django.conf import settings
from mozilla_django_oidc.auth import OIDCAuthenticationBackend

from arena.accounts.services import email_domain

log = logging.getLogger(__name__)


def username_for(email: str, claims: dict | None = None) -> str:
    """The account's username: the email address, as people know it (Django's 150 chars)."""
    return email.strip().lower()[:150]


def _groups(claims: dict) -> set[str]:
    value = claims.get(settings.ARENA_OIDC_GROUPS_CLAIM) or []
    return {value} if isinstance(value, str) else {str(g) for g in value}


class CompanyBackend(OIDCAuthenticationBackend):
    def get_userinfo(self, access_token, id_token, payload):
        """The verified ID token's claims, then userinfo's: Entra ID, for one, puts the groups
        in the ID token only."""
        return {**payload, **super().get_userinfo(access_token, id_token, payload)}

    def verify_claims(self, claims: dict) -> bool:
        email = claims.get("email") or ""
        if "@" not in email:
            log.warning("OIDC sign-in refused: the provider sent no email address")
            return False
        domains = settings.ARENA_OIDC_EMAIL_DOMAINS
        if domains:
            if claims.get("email_verified") is False:
                log.warning("OIDC sign-in refused: %s is not verified by the provider", email)
                return False
            if email_domain(email) not in domains:
                log.warning("OIDC sign-in refused: %s is not in %s", email, ", ".join(domains))
                return False
        return True

    def create_user(self, claims: dict):
        user = super().create_user(claims)
        return self.update_user(user, claims)

    def update_user(self, user, claims: dict):
        staff_groups = set(settings.ARENA_OIDC_STAFF_GROUPS)
        if staff_groups:
            is_staff = bool(_groups(claims) & staff_groups) or user.is_superuser
            if user.is_staff != is_staff:
                user.is_staff = is_staff
                user.save(update_fields=["is_staff"])
        return user
