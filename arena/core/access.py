"""Who may see what: one decorator for pages that need staff, one for every JSON endpoint.

JSON endpoints answer ``{"error": "..."}`` with 403 or 404 instead of redirecting to the sign-in
page, so scripts get a status they can act on.
"""

import functools
from collections.abc import Callable
from typing import TYPE_CHECKING, Concatenate, ParamSpec, overload

from django.conf import settings
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse

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


@overload
def api_view(view: View[P], *, staff: bool = False, board: bool = False) -> View[P]: ...
@overload
def api_view(
    view: None = None, *, staff: bool = False, board: bool = False
) -> Callable[[View[P]], View[P]]: ...
def api_view(
    view: View[P] | None = None, *, staff: bool = False, board: bool = False
) -> View[P] | Callable[[View[P]], View[P]]:
    """A JSON endpoint for signed-in accounts (staff only with ``staff=True``; anyone for a
    leaderboard read, ``board=True``, with public leaderboards); ``Http404`` and
    ``PermissionDenied`` raised by the view become JSON errors."""

    def decorate(view: View[P]) -> View[P]:
        @functools.wraps(view)
        def wrapped(request: HttpRequest, *args: P.args, **kwargs: P.kwargs) -> HttpResponse:
            if not request.user.is_authenticated and not (board and public_board(request)):
                return json_error("Sign in first.", 403)
            if staff and not is_staff(request.user):
                return json_error("Only staff can see this.", 403)
            try:
                return view(request, *args, **kwargs)
            except Http404 as exc:
                return json_error(str(exc) or "Not found.", 404)
            except PermissionDenied as exc:
                return json_error(str(exc) or "Not allowed.", 403)

        return wrapped

    return decorate(view) if view is not None else decorate
