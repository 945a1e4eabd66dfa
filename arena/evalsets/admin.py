"""Admin for answer generation: the Run list with progress, and the PromptSet action.

``arena/admin.py`` attaches the action to its PromptSetAdmin (``actions = [...]``); importing
this module registers ``RunAdmin``.
"""

from django.contrib import admin, messages
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.html import format_html
from django.utils.safestring import mark_safe

from arena.evalsets.generation import GenerationError, generation_run_create
from arena.evalsets.tasks import generation_run_enqueue
from arena.models import Contestant, Run

__all__ = ["RunAdmin", "generate_missing_answers"]


@admin.action(description="Generate missing answers for all active models", permissions=["change"])
def generate_missing_answers(modeladmin, request, queryset):
    contestants = list(
        Contestant.objects.filter(active=True)
        .exclude(kind=Contestant.Kind.RECORDED)
        .order_by("name")
    )
    if not contestants:
        modeladmin.message_user(
            request,
            "No active model can generate answers (recorded models only replay theirs).",
            messages.WARNING,
        )
        return
    for prompt_set in queryset.order_by("name"):
        try:
            run = generation_run_create(
                prompt_set=prompt_set, contestants=contestants, started_by=request.user
            )
        except GenerationError as exc:
            modeladmin.message_user(request, f"{prompt_set}: {exc}", messages.ERROR)
            continue
        if run is None:
            modeladmin.message_user(request, f"{prompt_set}: no answer is missing.", messages.INFO)
            continue
        generation_run_enqueue(run=run)
        run.refresh_from_db()  # without a worker the run has already happened
        modeladmin.message_user(
            request,
            format_html(
                '{}: {} missing answers, {}. <a href="{}">Follow run {}</a>.',
                prompt_set,
                run.total,
                run.get_status_display().lower(),
                reverse("admin:arena_run_change", args=[run.pk]),
                run.pk,
            ),
            messages.ERROR if run.status == Run.Status.FAILED else messages.SUCCESS,
        )


@admin.register(Run)
class RunAdmin(admin.ModelAdmin):
    list_display = ["id", "kind", "status", "progress", "started_by", "created_at", "finished_at"]
    list_filter = ["kind", "status"]
    fields = [
        "kind",
        "status",
        "progress_bar",
        "total",
        "done",
        "failed",
        "message",
        "params",
        "started_by",
        "created_at",
        "finished_at",
    ]
    readonly_fields = fields

    class Media:
        js = ["arena/progress.js"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False  # runs are written by their jobs only; the admin shows and deletes them

    @admin.display(description="progress")
    def progress(self, run: Run) -> str:
        return format_html(
            '<progress max="{}" value="{}"></progress> {} / {}{}',
            run.total or 1,
            run.done + run.failed,
            run.done,
            run.total,
            f", {run.failed} failed" if run.failed else "",
        )

    @admin.display(description="progress")
    def progress_bar(self, run: Run) -> str:
        return mark_safe(render_to_string("arena/_run_progress.html", {"run": run}))
