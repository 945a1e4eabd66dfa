"""Who may see what: one decorator for pages that need staff, one for every JSON endpoint.

JSON endpoints answer ``{"error": "..."}`` with 401, 403 or 404 instead of redirecting to the
sign-in page, so scripts get a status they can act on. They take the session or an API token
(``Authorization: Bearer``), which ``arena.api.middleware`` identifies as ``request.api_token``;
here a token acts as its user, within its scopes.
"""

import functools
from collections.abc import Callable
from typing import TYPE_CHECKING, Concatenate, ParamSpec, overload

from django.conf import settings
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.middleware.csrf import CsrfViewMiddleware

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractBaseUser, AnonymousUser

P = ParamSpec("P")
View = Callable[Concatenate[HttpRequest, P], HttpResponse]
"""A view function: the request, then the URL's arguments; answers a response."""


def json_error(message: str, status: int) -> JsonResponse:
    return JsonResponse({"error": message}, status=status)


def is_staff(user: "AbstractBaseUser | AnonymousUser") -> bool:
    return bool(user.is_authenticated and user.is_active and user.is_staff)


def staff_page(reason: str) -> Callable[[View[P]], View[P]]:
    """Staff only: the sign-in page for visitors, a 403 page saying ``reason`` for others."""

    def decorate(view: View[P]) -> View[P]:
        @functools.wraps(view)
        def wrapped(request: HttpRequest, *args: P.args, **kwargs: P.kwargs) -> HttpResponse:
            if not request.user.is_authenticated:
                return redirect_to_login(request.get_full_path())
            if not is_staff(request.user):
                raise PermissionDenied(reason)
            return view(request, *args, **kwargs)

        return wrapped

    return decorate


def public_board(request: HttpRequest) -> bool:
    """Anyone may read the leaderboards when ``ARENA_PUBLIC_LEADERBOARDS`` is on."""
    return bool(request.method in ("GET", "HEAD") and settings.ARENA_PUBLIC_LEADERBOARDS)


def board_page(view: View[P]) -> View[P]:
    """A leaderboard page: signed-in accounts, or anyone with public leaderboards."""

    @functools.wraps(view)
    def wrapped(request: HttpRequest, *args: P.args, **kwargs: P.kwargs) -> HttpResponse:
        if not request.user.is_authenticated and not public_board(request):
            return redirect_to_login(request.get_full_path())
        return view(request, *args, **kwargs)

    return wrapped


SCOPES = ("read", "vote", "admin")
"""What an API token may do: ``read`` boards, snapshots, pairwise, calibration and judge runs;
``vote`` send external battles; ``admin`` everything (tokens of staff accounts only)."""


def _unauthorized(message: str) -> JsonResponse:
    response = json_error(message, 401)
    response["WWW-Authenticate"] = 'Bearer realm="arena"'
    return response


def _csrf_refusal(request: HttpRequest) -> HttpResponse | None:
    """The CSRF check for a request signed in by its session (the views are exempt from the
    middleware's, which would answer a request without credentials 403 before the 401)."""
    check = CsrfViewMiddleware(lambda r: HttpResponse())
    return check.process_view(request, lambda r: HttpResponse(), (), {})


def _token_refusal(request: HttpRequest, scope: str, board: bool) -> JsonResponse | None:
    """None when the request may go on; else the 401/403 answer. A valid token replaces the
    session's user for this request; a leaderboard read (``board``) needs neither when
    leaderboards are public."""
    error = getattr(request, "api_token_error", None)
    if error:
        return _unauthorized(error)
    token = getattr(request, "api_token", None)
    if token is None:
        if not request.user.is_authenticated:
            if board and public_board(request):
                return None
            return _unauthorized("Sign in first, or send Authorization: Bearer <token>.")
        return _csrf_refusal(request)
    request.user = token.user
    if "admin" in token.scopes and token.user.is_staff:
        return None
    if scope not in token.scopes:
        return json_error(f"This token lacks the {scope!r} scope.", 403)
    return None


@overload
def api_view(
    view: View[P], *, staff: bool = False, scope: str = "read", board: bool = False
) -> View[P]: ...
@overload
def api_view(
    view: None = None, *, staff: bool = False, scope: str = "read", board: bool = False
) -> Callable[[View[P]], View[P]]: ...
def api_view(
    view: View[P] | None = None, *, staff: bool = False, scope: str = "read", board: bool = False
) -> View[P] | Callable[[View[P]], View[P]]:
    """A JSON endpoint for signed-in accounts or API tokens with ``scope`` (staff only with
    ``staff=True``; anyone for a leaderboard read, ``board=True``, with public leaderboards);
    ``Http404`` and ``PermissionDenied`` raised by the view become JSON
    errors. The wrapped view carries ``api_scope`` and ``api_staff`` (read by the schema)."""
    if scope not in SCOPES:
        raise ValueError(f"scope: expected one of {SCOPES}, got {scope!r}")

    def decorate(view: View[P]) -> View[P]:
        @functools.wraps(view)
        def wrapped(request: HttpRequest, *args: P.args, **kwargs: P.kwargs) -> HttpResponse:
            refusal = _token_refusal(request, scope, board)
            if refusal is not None:
                return refusal
            if staff and not is_staff(request.user):
                return json_error("Only staff can see this.", 403)
            try:
                return view(request, *args, **kwargs)
            except Http404 as exc:
                return json_error(str(exc) or "Not found.", 404)
            except PermissionDenied as exc:
                return json_error(str(exc) or "Not allowed.", 403)

        wrapped.csrf_exempt = True  # type: ignore[attr-defined]  # checked in _token_refusal
        wrapped.api_scope = scope  # type: ignore[attr-defined]
        wrapped.api_staff = staff  # type: ignore[attr-defined]
        return wrapped

    return decorate(view) if view is not None else decorate
