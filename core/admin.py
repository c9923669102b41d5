from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django.http import HttpRequest

from core.models import EvidenceRecord, IdempotencyRecord, User


@admin.register(User)
class UserAdmin(BaseUserAdmin):
    list_display = ("username", "email", "role", "is_staff", "is_active", "date_joined")
    list_filter = ("role", "is_staff", "is_active")
    fieldsets = (*(BaseUserAdmin.fieldsets or ()), ("Marketplace", {"fields": ("role",)}))


class ReadOnlyAdmin(admin.ModelAdmin):
    """Evidence is never edited, from the admin or anywhere else."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(EvidenceRecord)
class EvidenceRecordAdmin(ReadOnlyAdmin):
    list_display = ("seq", "kind", "subject", "short_hash", "created_at")
    list_filter = ("kind",)
    search_fields = ("subject", "hash")
    ordering = ("-seq",)

    @admin.display(description="hash")
    def short_hash(self, obj: EvidenceRecord) -> str:
        return obj.hash[:12] + "…"


@admin.register(IdempotencyRecord)
class IdempotencyRecordAdmin(ReadOnlyAdmin):
    list_display = ("key", "status_code", "created_at")
    search_fields = ("key",)
    exclude = ("body",)
