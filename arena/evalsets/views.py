"""Eval-set pages: the sets and their generation runs, blind voting on stored answers."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods

from arena.battles.services import battle_identity_leak, vote_record
from arena.battles.views import battle_for_user
from arena.core.access import api_view, is_staff
from arena.core.errors import ArenaError
from arena.evalsets.generation import generation_runs_recent
from arena.evalsets.voting import NoPairLeft, evalset_next_battle, evalset_progress
from arena.models import Battle, PromptSet, Run

# Ids are 64-bit signed integers in the database (BigAutoField).
MAX_ID = 2**63 - 1


def run_progress_data(run: Run) -> dict:
    return {
        "id": run.pk,
        "kind": run.kind,
        "kind_display": run.get_kind_display(),
        "status": run.status,
        "status_display": run.get_status_display(),
        "total": run.total,
        "done": run.done,
        "failed": run.failed,
        "message": run.message,
        "finished": run.status in (Run.Status.DONE, Run.Status.FAILED),
    }


@api_view
@never_cache
@require_GET
def run_progress(request, run_id: int):
    run = get_object_or_404(Run, pk=run_id)
    if run.kind == Run.Kind.JUDGE and not is_staff(request.user):
        raise Http404("No such run.")  # judge runs are staff-only (judging.views)
    return JsonResponse(run_progress_data(run))


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
        battle_id = _posted_id(request.POST.get("battle", ""))
        if battle_id is None:
            return render(
                request,
                "400.html",
                {"exception": "The vote form named no valid battle; open the set again."},
                status=400,
            )
        battle = _evalset_battle(request, prompt_set, battle_id)
        try:
            vote_record(
                battle_id=battle.pk, user=request.user, outcome=request.POST.get("outcome", "")
            )
        except ArenaError as exc:
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
        "leak": bool(battle_identity_leak(battle=battle)),
    }
    return render(request, "arena/evalset_vote.html", context)


def _posted_id(raw: str) -> int | None:
    """A row id from a form field: decimal digits within the database's range, else None."""
    raw = raw.strip()
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 19:
        return None
    value = int(raw)
    return value if 1 <= value <= MAX_ID else None


def _evalset_battle(request: HttpRequest, prompt_set: PromptSet, battle_id: int) -> Battle:
    """The signed-in user's eval-set battle ``battle_id`` of ``prompt_set``; 404 when it is a
    battle of another set or no eval-set battle at all (a live one is voted on its socket)."""
    battle = battle_for_user(request, battle_id)
    if battle.mode != Battle.Mode.EVALSET or battle.prompt_item is None:
        raise Http404("No such pair in this eval set.")
    if battle.prompt_item.prompt_set_id != prompt_set.pk:
        raise Http404("No such pair in this eval set.")
    return battle
