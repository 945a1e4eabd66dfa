from django.contrib import admin

from arena import models
from arena.accounts import admin as accounts_admin  # noqa: F401  (registers Invite)
from arena.evalsets.admin import generate_missing_answers


@admin.register(models.Contestant)
class ContestantAdmin(admin.ModelAdmin):
    list_display = ["name", "organisation", "kind", "model_id", "sampling_weight", "active"]
    list_filter = ["kind", "active"]
    search_fields = ["name", "organisation", "model_id"]


@admin.register(models.Category)
class CategoryAdmin(admin.ModelAdmin):
    list_display = ["name", "slug"]
    prepopulated_fields = {"slug": ["name"]}


class PromptItemInline(admin.TabularInline):
    model = models.PromptItem
    extra = 0
    fields = ["external_id", "text", "category"]


@admin.register(models.PromptSet)
class PromptSetAdmin(admin.ModelAdmin):
    list_display = ["name", "created_at"]
    inlines = [PromptItemInline]
    actions = [generate_missing_answers]


@admin.register(models.Battle)
class BattleAdmin(admin.ModelAdmin):
    list_display = ["id", "mode", "status", "contestant_a", "contestant_b", "user", "created_at"]
    list_filter = ["mode", "status"]
    raw_id_fields = ["user", "prompt_item", "answer_a", "answer_b"]


@admin.register(models.Vote)
class VoteAdmin(admin.ModelAdmin):
    list_display = ["battle", "outcome", "voter", "voter_label", "void_reason", "created_at"]
    list_filter = ["outcome"]
    raw_id_fields = ["battle", "voter"]


@admin.register(models.Judge)
class JudgeAdmin(admin.ModelAdmin):
    list_display = ["name", "contestant", "template_version", "verdict_format"]


@admin.register(models.LeaderboardSnapshot)
class LeaderboardSnapshotAdmin(admin.ModelAdmin):
    list_display = ["id", "scope", "category", "style_control", "method", "status", "created_at"]
    list_filter = ["scope", "status", "style_control"]


@admin.register(models.SamplingSettings)
class SamplingSettingsAdmin(admin.ModelAdmin):
    """One row: the sampling policy that beats ARENA_SAMPLING_POLICY (arena.battles.sampling)."""

    list_display = ["__str__", "policy", "exposure_cap", "cap_per", "updated_at"]

    def has_add_permission(self, request) -> bool:
        return not models.SamplingSettings.objects.exists()

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
