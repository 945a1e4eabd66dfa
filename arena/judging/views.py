"""Staff pages to start a judge run and watch it: ``/judge/``, ``/judge/runs/<id>/`` and its
JSON (polled by the run page). Include with ``path("", include("arena.judging_views"))``."""

from django import forms
from django.contrib import messages
from django.http import JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods

from arena.core.access import api_view, staff_page
from arena.judging.runs import (
    JudgingError,
    judge_pairs_for_set,
    judge_pairs_voted,
    judge_pairs_voted_in_set,
    voted_pair_counts,
)
from arena.judging.stats import JudgeStats, judge_stats
from arena.judging.tasks import judge_run_start
from arena.models import Contestant, Judge, PromptSet, Run
from arena.providers.recorded_verdicts import VERDICTS_PREFIX

RUNS_SHOWN = 20


STAFF_ONLY = "Only staff can start and watch judge runs."
PAGE_RESAMPLES = 200  # bootstrap resamples for the intervals shown on the pages


class JudgeRunForm(forms.Form):
    judge = forms.ModelChoiceField(
        queryset=Judge.objects.filter(contestant__isnull=False).order_by("name")
    )
    source = forms.ChoiceField(label="Pairs")
    limit = forms.IntegerField(
        min_value=1, required=False, help_text="At most this many pairs not yet judged."
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        sets = list(PromptSet.objects.order_by("name").values_list("id", "name"))
        voted = voted_pair_counts()
        self.fields["source"].choices = (
            [
                (f"voted-set:{pk}", f"Eval set: {name}, the {voted[pk]:,} pairs people voted on")
                for pk, name in sets
                if voted.get(pk)
            ]
            + [("voted", "All human-voted battles")]
            + [(f"set:{pk}", f"Eval set: {name}, every pair of its answers") for pk, name in sets]
        )

    def battle_ids(self) -> tuple[list[int], str]:
        source = self.cleaned_data["source"]
        if source == "voted":
            return judge_pairs_voted(), "voted"
        kind, _, pk = source.partition(":")
        prompt_set = PromptSet.objects.get(pk=int(pk))
        if kind == "voted-set":
            pairs = judge_pairs_voted_in_set(prompt_set=prompt_set)
            return pairs, f"voted pairs, set:{prompt_set.name}"
        return judge_pairs_for_set(prompt_set=prompt_set), f"set:{prompt_set.name}"


def _get_judge_run(run_id: int) -> Run:
    return get_object_or_404(Run, pk=run_id, kind=Run.Kind.JUDGE)


def _estimate(estimate) -> dict | None:
    if estimate is None:
        return None
    return {"value": estimate.value, "lower": estimate.lower, "upper": estimate.upper}


def _stats_dict(stats: JudgeStats | None) -> dict | None:
    if stats is None:
        return None
    return {
        "judgements": stats.judgements,
        "parse_failures": stats.parse_failures,
        "upstream_failures": stats.upstream_failures,
        "pairs_both": stats.pairs_both,
        "consistency": _estimate(stats.consistency),
        "first_position": _estimate(stats.first_position),
        "latency_ms": stats.latency_ms,
        "cost": None if stats.cost is None else str(stats.cost),
    }


def _run_stats(run: Run) -> JudgeStats | None:
    judge = Judge.objects.filter(pk=run.params.get("judge_id")).first()
    if judge is None:
        return None
    return judge_stats(
        judge=judge, battle_ids=run.params.get("battle_ids", []), n_resamples=PAGE_RESAMPLES
    )


def _run_dict(run: Run) -> dict:
    finished = run.done + run.failed
    return {
        "id": run.pk,
        "judge": run.params.get("judge", ""),
        "source": run.params.get("source", ""),
        "status": run.status,
        "total": run.total,
        "done": run.done,
        "failed": run.failed,
        "percent": round(100 * finished / run.total) if run.total else 100,
        "message": run.message,
        "created_at": run.created_at.isoformat(),
        "finished_at": run.finished_at.isoformat() if run.finished_at else None,
        "stats": _stats_dict(_run_stats(run)),
    }


@staff_page(STAFF_ONLY)
@never_cache
@require_http_methods(["GET", "POST"])
def judge_index(request):
    form = JudgeRunForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            battle_ids, source = form.battle_ids()
            run = judge_run_start(
                judge=form.cleaned_data["judge"],
                battle_ids=battle_ids,
                source=source,
                user=request.user,
                limit=form.cleaned_data["limit"],
            )
        except JudgingError as exc:
            messages.error(request, str(exc))
            return redirect("judge_index")
        return redirect("judge_run", run_id=run.pk)
    judges = [
        {"judge": judge, "stats": judge_stats(judge=judge, n_resamples=PAGE_RESAMPLES)}
        for judge in Judge.objects.select_related("contestant").order_by("name")
    ]
    runs = [_run_dict(run) for run in Run.objects.filter(kind=Run.Kind.JUDGE)[:RUNS_SHOWN]]
    replay_judges = [
        row["judge"]
        for row in judges
        if row["judge"].contestant is not None
        and row["judge"].contestant.kind == Contestant.Kind.RECORDED
        and row["judge"].contestant.model_id.startswith(VERDICTS_PREFIX)
    ]
    context = {"form": form, "judges": judges, "runs": runs, "replay_judges": replay_judges}
    return render(request, "arena/judge_index.html", context)


@staff_page(STAFF_ONLY)
@never_cache
@require_GET
def judge_run(request, run_id: int):
    run = _get_judge_run(run_id)
    context = {"run": _run_dict(run), "created_at": run.created_at, "started_by": run.started_by}
    return render(request, "arena/judge_run.html", context)


@api_view(staff=True)
@never_cache
@require_GET
def judge_run_json(request, run_id: int):
    return JsonResponse(_run_dict(_get_judge_run(run_id)))
