from django.contrib import admin

from arena.models.invites import Invite


@admin.register(Invite)
class InviteAdmin(admin.ModelAdmin):
    list_display = ["note", "uses", "max_uses", "expires_at", "revoked", "created_by"]
    list_filter = ["revoked"]
    readonly_fields = ["token", "uses", "created_at"]
    search_fields = ["note"]

    def save_model(self, request, obj, form, change):
        if not change and obj.created_by_id is None:
            obj.created_by = request.user
        super().save_model(request, obj, form, change)
