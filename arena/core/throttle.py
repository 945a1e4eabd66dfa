"""Sign-in throttling with django-axes: after ``AXES_FAILURE_LIMIT`` wrong passwords for one
account from one address, that account is refused from that address for the cool-off.

Settings are in ``arena/settings.py`` (``ARENA_LOGIN_FAILURE_LIMIT``,
``ARENA_LOGIN_COOLOFF_MINUTES``); this module holds what axes calls back: the backend, the
client address, and the page that says what happened and when to try again.
"""

import math
from datetime import timedelta
from typing import Any

from axes.backends import AxesStandaloneBackend
from axes.models import AccessAttempt
from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone


class SignInThrottle(AxesStandaloneBackend):
    """Axes' standalone backend for every sign-in made over HTTP (the sign-in page and the
    admin's pass the request). ``authenticate()`` without a request (a script, the test
    client's ``login()``) has no address to throttle and is left to the next backend."""

    def authenticate(
        self,
        request: HttpRequest | None,
        username: str | None = None,
        password: str | None = None,
        **kwargs: Any,
    ) -> None:
        if request is None:
            return None
        return super().authenticate(request, username, password, **kwargs)


def client_ip(request: HttpRequest) -> str:
    """The address a sign-in comes from: the peer's, or behind the TLS proxy
    (``ARENA_BEHIND_TLS_PROXY``) the last one of ``X-Forwarded-For``, which the proxy itself
    appends (the ones before it are the client's word)."""
    if settings.ARENA_BEHIND_TLS_PROXY:
        forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
        last = forwarded.rsplit(",", 1)[-1].strip()
        if last:
            return last
    return str(request.META.get("REMOTE_ADDR", ""))


def cool_off() -> timedelta:
    value = settings.AXES_COOLOFF_TIME
    assert isinstance(value, timedelta)
    return value


def locked_out(
    request: HttpRequest, response: HttpResponse | None, credentials: Any
) -> HttpResponse:
    """The page shown instead of the sign-in form while an account is locked (status 429)."""
    username = ""
    if isinstance(credentials, dict):
        username = str(credentials.get("username") or "")
    username = username or str(request.POST.get("username", ""))
    last = (
        AccessAttempt.objects.filter(username=username, ip_address=client_ip(request))
        .order_by("-attempt_time")
        .values_list("attempt_time", flat=True)
        .first()
    )
    now = timezone.now()
    until = (last or now) + cool_off()
    minutes = max(1, math.ceil((until - now).total_seconds() / 60))
    context = {
        "username": username,
        "failure_limit": settings.AXES_FAILURE_LIMIT,
        "cool_off_minutes": round(cool_off().total_seconds() / 60),
        "until": until,
        "minutes": minutes,
    }
    return render(request, "registration/lockout.html", context, status=429)
