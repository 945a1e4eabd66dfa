import logging

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.db import connection
from django.http import JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods

from arena import services
from arena.evalsets import NoPairLeft, evalset_next_battle, evalset_progress
from arena.generation import generation_runs_recent
from arena.models import Battle, Category, Contestant, PromptItem, PromptSet, Vote

log = logging.getLogger(__name__)


@require_GET
def index(request):
    context = {
        "contestants": Contestant.objects.filter(active=True).count(),
        "battles": Battle.objects.count(),
        "votes": Vote.objects.counted().count(),
    }
    return render(request, "arena/index.html", context)


@login_required
@require_GET
def battle(request):
    recorded = Contestant.objects.filter(active=True, kind=Contestant.Kind.RECORDED)
    suggestions = (
        PromptItem.objects.filter(answers__contestant__in=recorded)
        .values_list("text", flat=True)
        .distinct()
        .order_by("text")[:50]
    )
    context = {
        "recorded": recorded.exists(),
        "suggestions": list(suggestions),
        "categories": Category.objects.all(),
        "max_prompt_chars": settings.ARENA_MAX_PROMPT_CHARS,
    }
    return render(request, "arena/battle.html", context)


def _get_battle_for_user(request, battle_id: int) -> Battle:
    """The battle if it belongs to the signed-in user; 404 / 403 otherwise."""
    battle = get_object_or_404(
        Battle.objects.select_related(
            "contestant_a", "contestant_b", "answer_a", "answer_b", "prompt_item"
        ),
        pk=battle_id,
    )
    if battle.user_id != request.user.pk:
        raise PermissionDenied("This battle belongs to someone else.")
    return battle


@login_required
@require_GET
def evalset_list(request):
    sets = [
        {"set": prompt_set, **evalset_progress(prompt_set=prompt_set)}
        for prompt_set in PromptSet.objects.order_by("name")
    ]
    context = {"sets": sets, "runs": generation_runs_recent()}
    return render(request, "arena/evalset_list.html", context)


@login_required
@never_cache
@require_http_methods(["GET", "POST"])
def evalset_vote(request, set_id: int):
    prompt_set = get_object_or_404(PromptSet, pk=set_id)
    if request.method == "POST":
        battle = _get_battle_for_user(request, int(request.POST.get("battle", 0) or 0))
        try:
            services.vote_record(
                battle_id=battle.pk, user=request.user, outcome=request.POST.get("outcome", "")
            )
        except services.ArenaError as exc:
            messages.error(request, str(exc))
            return redirect("evalset_vote", set_id=prompt_set.pk)
        return redirect("battle_result", battle_id=battle.pk)
    try:
        battle = evalset_next_battle(voter=request.user, prompt_set=prompt_set)
    except NoPairLeft as exc:
        return render(request, "arena/evalset_done.html", {"set": prompt_set, "message": exc})
    answers = {"a": battle.answer_a.text, "b": battle.answer_b.text}
    context = {
        "set": prompt_set,
        "battle": battle,
        "prompt": battle.prompt_item.text,
        "answers": answers,
        "leak": bool(services.battle_identity_leak(battle=battle)),
    }
    return render(request, "arena/evalset_vote.html", context)


@login_required
@require_GET
def battle_result(request, battle_id: int):
    battle = _get_battle_for_user(request, battle_id)
    vote = Vote.objects.filter(battle=battle).first()
    if vote is None:
        raise PermissionDenied("The names are shown only after the vote.")
    context = {
        "battle": battle,
        "vote": vote,
        "sides": services.battle_reveal(battle=battle),
        "transcript": services.battle_transcript(battle=battle),
    }
    return render(request, "arena/battle_result.html", context)


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
def healthz(request):
    checks = {"database": _check_database()}
    if settings.REDIS_URL:
        checks["redis"] = _check_redis()
    healthy = all(value == "ok" for value in checks.values())
    body = {"status": "ok" if healthy else "down", **checks}
    return JsonResponse(body, status=200 if healthy else 503)
