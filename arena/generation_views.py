"""``/runs/<id>.json``: a background run's progress, for the page's poller (progress.js).

Include with ``path("", include("arena.generation_views"))`` in ``arena/urls.py``.
"""

from django.contrib.auth.decorators import login_required
from django.http import JsonResponse
from django.shortcuts import get_object_or_404
from django.urls import path
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from arena.models import Run


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


@login_required
@never_cache
@require_GET
def run_progress(request, run_id: int):
    return JsonResponse(run_progress_data(get_object_or_404(Run, pk=run_id)))


urlpatterns = [path("runs/<int:run_id>.json", run_progress, name="run_progress")]
