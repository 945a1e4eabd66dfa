"""Eval-set pages: the sets and their generation runs, blind voting on stored answers."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods

from arena.battles.services import battle_identity_leak, vote_record
from arena.battles.views import battle_for_user
from arena.core.access import api_view, is_staff
from arena.core.errors import ArenaError
from arena.evalsets.generation import generation_runs_recent
from arena.evalsets.voting import NoPairLeft, evalset_next_battle, evalset_progress
from arena.models import PromptSet, Run


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
        battle = battle_for_user(request, int(request.POST.get("battle", 0) or 0))
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
