from django.contrib import admin
from django.http import HttpRequest

from core.admin import ReadOnlyAdmin
from marketplace.models import (
    AgentListing,
    AgentToken,
    BenchmarkClaim,
    Deliverable,
    DeliveryAttempt,
    Engagement,
    EngagementStatusChange,
    PactTemplate,
    PactVersion,
    Proposal,
)


class BenchmarkClaimInline(admin.TabularInline):
    model = BenchmarkClaim
    extra = 0


@admin.register(AgentListing)
class AgentListingAdmin(admin.ModelAdmin):
    list_display = ("name", "seller", "status", "price_minor", "currency", "created_at")
    list_filter = ("status", "currency")
    search_fields = ("name", "slug", "seller__username", "description")
    readonly_fields = ("endpoint_secret", "created_at", "updated_at")
    list_select_related = ("seller",)
    inlines = [BenchmarkClaimInline]


class PactVersionInline(admin.TabularInline):
    model = PactVersion
    fields = ("version", "kind", "content_hash", "created_at")
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(PactTemplate)
class PactTemplateAdmin(admin.ModelAdmin):
    list_display = ("name", "listing", "created_at")
    search_fields = ("name", "listing__name")
    list_select_related = ("listing",)
    inlines = [PactVersionInline]


@admin.register(PactVersion)
class PactVersionAdmin(ReadOnlyAdmin):
    """Pact versions are immutable: readable here, never editable."""

    list_display = ("template", "version", "kind", "content_hash", "created_at")
    list_filter = ("kind",)
    search_fields = ("content_hash", "version", "template__name")
    list_select_related = ("template",)


class ProposalInline(admin.TabularInline):
    model = Proposal
    fields = ("number", "author", "author_role", "content_hash", "accepted_by", "accepted_at", "created_at")
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


class StatusChangeInline(admin.TabularInline):
    model = EngagementStatusChange
    fields = ("from_status", "to_status", "actor", "reason", "created_at")
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(Engagement)
class EngagementAdmin(admin.ModelAdmin):
    """Status moves only through the services (history, locks): read-only here."""

    list_display = ("id", "listing", "buyer", "status", "created_at", "delivery_due_at")
    list_filter = ("status",)
    search_fields = ("id", "listing__name", "buyer__username")
    list_select_related = ("listing", "buyer")
    readonly_fields = (
        "buyer",
        "listing",
        "template",
        "task",
        "status",
        "pact_version",
        "activated_at",
        "delivery_due_at",
        "created_at",
        "updated_at",
    )
    inlines = [ProposalInline, StatusChangeInline]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(Deliverable)
class DeliverableAdmin(ReadOnlyAdmin):
    list_display = ("engagement", "source", "latency_ms", "content_hash", "created_at")
    list_filter = ("source",)
    search_fields = ("engagement__id", "content_hash")


@admin.register(DeliveryAttempt)
class DeliveryAttemptAdmin(ReadOnlyAdmin):
    list_display = ("engagement", "number", "ok", "status_code", "latency_ms", "error", "created_at")
    list_filter = ("ok",)


@admin.register(AgentToken)
class AgentTokenAdmin(admin.ModelAdmin):
    list_display = ("name", "listing", "prefix", "created_at", "last_used_at", "revoked_at")
    readonly_fields = ("listing", "name", "prefix", "key_hash", "created_at", "last_used_at")
    list_filter = ("revoked_at",)
    search_fields = ("name", "prefix", "listing__name")


@admin.register(BenchmarkClaim)
class BenchmarkClaimAdmin(admin.ModelAdmin):
    list_display = ("benchmark", "listing", "score", "measured_on")
    search_fields = ("benchmark", "listing__name")
    list_select_related = ("listing",)


@admin.register(Proposal)
class ProposalAdmin(ReadOnlyAdmin):
    """A proposal is an offer as it was made: read-only."""

    list_display = ("engagement", "number", "author", "author_role", "content_hash", "accepted_by", "created_at")
    list_filter = ("author_role",)
    search_fields = ("engagement__id", "content_hash", "author__username")
    list_select_related = ("engagement", "author", "accepted_by")


@admin.register(EngagementStatusChange)
class EngagementStatusChangeAdmin(ReadOnlyAdmin):
    list_display = ("engagement", "from_status", "to_status", "actor", "reason", "created_at")
    list_filter = ("to_status",)
    search_fields = ("engagement__id", "reason")
    list_select_related = ("engagement", "actor")
