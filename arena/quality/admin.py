from django.contrib import admin

from arena.models import VoteReview, VoterStanding


@admin.register(VoterStanding)
class VoterStandingAdmin(admin.ModelAdmin):
    list_display = ["voter", "status", "reason", "figure", "votes_checked", "updated_at"]
    list_filter = ["status"]
    readonly_fields = ["evidence"]


@admin.register(VoteReview)
class VoteReviewAdmin(admin.ModelAdmin):
    list_display = ["vote", "status", "checks", "surprise", "updated_at"]
    list_filter = ["status"]
    raw_id_fields = ["vote"]
