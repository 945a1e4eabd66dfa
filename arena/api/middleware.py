"""Reads ``Authorization: Bearer <token>`` once per request, before the CSRF check.

It only identifies the token (``request.api_token``, or ``request.api_token_error``); the JSON
API decorator (``arena.core.access.api_view``) is what lets a token act as its user, so pages
keep using the session. A bearer request needs no CSRF token: a browser never adds this header
across sites by itself.
"""

from django.conf import settings
from django.http import HttpRequest

from arena.api.tokens import token_authenticate, token_over_limit
from arena.core.access import json_error


class BearerTokenMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest):
        header = request.META.get("HTTP_AUTHORIZATION", "")
        if header:
            scheme, _, secret = header.partition(" ")
            token = None
            if scheme.lower() == "bearer" and secret.strip():
                token = token_authenticate(secret.strip())
            if token is None:
                request.api_token_error = "Unknown, revoked or malformed API token."
            elif token_over_limit(token):
                return json_error(
                    "This token made more than ARENA_API_REQUESTS_PER_MINUTE "
                    f"({settings.ARENA_API_REQUESTS_PER_MINUTE}) requests this minute.",
                    429,
                )
            else:
                request.api_token = token
                request._dont_enforce_csrf_checks = True
        return self.get_response(request)
