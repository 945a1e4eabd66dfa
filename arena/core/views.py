"""Site-wide pages: the home page and the health check."""

import logging

from django.conf import settings
from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from arena.models import Battle, Contestant, Vote

log = logging.getLogger(__name__)


@require_GET
def index(request: HttpRequest) -> HttpResponse:
    context = {
        "contestants": Contestant.objects.filter(active=True).count(),
        "battles": Battle.objects.count(),
        "votes": Vote.objects.counted().count(),
    }
    return render(request, "arena/index.html", context)


def _check_database() -> str:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as exc:  # any driver error means "down"; the reason goes to the log
        log.warning("healthz: database check failed: %s", exc)
        return "down"
    return "ok"


def _check_redis() -> str:
    import redis

    client = redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=1, socket_timeout=1)
    try:
        client.ping()
    except redis.RedisError as exc:
        log.warning("healthz: redis check failed: %s", exc)
        return "down"
    finally:
        client.close()
    return "ok"


@never_cache
@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    checks = {"database": _check_database()}
    if settings.REDIS_URL:
        checks["redis"] = _check_redis()
    healthy = all(value == "ok" for value in checks.values())
    body = {"status": "ok" if healthy else "down", **checks}
    return JsonResponse(body, status=200 if healthy else 503)
