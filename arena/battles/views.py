"""Battle pages: the live battle (its socket is ``consumers.BattleConsumer``) and the result
shown after the vote."""

import logging

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404, render
from django.views.decorators.http import require_GET

from arena.battles.services import battle_reveal, battle_transcript
from arena.models import Battle, Category, Contestant, PromptItem, Vote

log = logging.getLogger(__name__)


@login_required
@require_GET
def battle(request):
    recorded = Contestant.objects.filter(active=True, kind=Contestant.Kind.RECORDED)
    live = Contestant.objects.filter(active=True).exclude(kind=Contestant.Kind.RECORDED)
    suggestions = (
        PromptItem.objects.filter(answers__contestant__in=recorded)
        .values_list("text", flat=True)
        .distinct()
        .order_by("text")[:50]
    )
    context = {
        "recorded": recorded.exists(),
        # Fewer than two models that answer any prompt: only the recorded prompts can be asked.
        "recorded_only": recorded.exists() and live.count() < 2,
        "suggestions": list(suggestions),
        "categories": Category.objects.all(),
        "max_prompt_chars": settings.ARENA_MAX_PROMPT_CHARS,
    }
    return render(request, "arena/battle.html", context)


def battle_for_user(request, battle_id: int) -> Battle:
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
def battle_result(request, battle_id: int):
    battle = battle_for_user(request, battle_id)
    vote = Vote.objects.filter(battle=battle).first()
    if vote is None:
        raise PermissionDenied("The names are shown only after the vote.")
    context = {
        "battle": battle,
        "vote": vote,
        "sides": battle_reveal(battle=battle),
        "transcript": battle_transcript(battle=battle),
    }
    return render(request, "arena/battle_result.html", context)
