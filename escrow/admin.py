from django.contrib import admin
from django.urls import reverse
from django.utils.html import format_html

from core.admin import ReadOnlyAdmin
from escrow.models import (
    Dispute,
    DisputeEvidenceFile,
    DisputeStatusChange,
    Escrow,
    EscrowStatusChange,
    EscrowTimer,
    LedgerAccount,
    LedgerEntry,
    LedgerTransaction,
    OutboxItem,
    PayoutAccount,
    Settlement,
    WebhookEvent,
)


class StatusChangeInline(admin.TabularInline):
    model = EscrowStatusChange
    fields = ("from_status", "to_status", "actor", "reason", "created_at")
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None) -> bool:  # type: ignore[no-untyped-def]
        return False


@admin.register(Escrow)
class EscrowAdmin(ReadOnlyAdmin):
    """Money moves only through the services (ledger, locks, evidence): read-only here."""

    list_display = ("id", "engagement", "status", "amount_minor", "currency", "gateway", "funded_at", "settled_at")
    list_filter = ("status", "gateway", "currency")
    search_fields = ("id", "engagement__id", "charge_reference", "checkout_reference")
    list_select_related = ("engagement",)
    inlines = [StatusChangeInline]


class EntryInline(admin.TabularInline):
    model = LedgerEntry
    fields = ("account", "amount_minor", "currency")
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None) -> bool:  # type: ignore[no-untyped-def]
        return False


@admin.register(LedgerTransaction)
class LedgerTransactionAdmin(ReadOnlyAdmin):
    list_display = ("idempotency_key", "kind", "escrow", "memo", "created_at")
    list_filter = ("kind",)
    search_fields = ("idempotency_key", "memo")
    inlines = [EntryInline]


@admin.register(LedgerEntry)
class LedgerEntryAdmin(ReadOnlyAdmin):
    list_display = ("transaction", "account", "amount_minor", "currency")
    list_filter = ("currency", "account__kind")
    search_fields = ("account__code", "transaction__idempotency_key")
    list_select_related = ("transaction", "account")


@admin.register(LedgerAccount)
class LedgerAccountAdmin(ReadOnlyAdmin):
    list_display = ("code", "kind", "currency")
    list_filter = ("kind", "currency")
    search_fields = ("code",)


@admin.register(Settlement)
class SettlementAdmin(ReadOnlyAdmin):
    list_display = (
        "escrow",
        "outcome",
        "reason",
        "seller_net_minor",
        "platform_fee_minor",
        "buyer_refund_minor",
        "payout_status",
        "refund_status",
        "created_at",
    )
    list_filter = ("outcome", "reason", "payout_status", "refund_status")


@admin.register(EscrowTimer)
class EscrowTimerAdmin(ReadOnlyAdmin):
    list_display = ("escrow", "action", "due_at", "status", "result")
    list_filter = ("action", "status")


@admin.register(OutboxItem)
class OutboxItemAdmin(ReadOnlyAdmin):
    list_display = (
        "idempotency_key",
        "kind",
        "amount_minor",
        "currency",
        "status",
        "attempts",
        "last_error",
        "created_at",
    )
    list_filter = ("kind", "status")
    search_fields = ("idempotency_key", "provider_reference")


@admin.register(WebhookEvent)
class WebhookEventAdmin(ReadOnlyAdmin):
    list_display = ("event_id", "type", "received_at", "processed_at", "attempts", "result", "error")
    list_filter = ("type",)
    search_fields = ("event_id",)


@admin.register(PayoutAccount)
class PayoutAccountAdmin(ReadOnlyAdmin):
    list_display = ("seller", "gateway", "provider_account", "payouts_enabled")
    list_filter = ("gateway", "payouts_enabled")


@admin.register(EscrowStatusChange)
class EscrowStatusChangeAdmin(ReadOnlyAdmin):
    list_display = ("escrow", "from_status", "to_status", "actor", "reason", "created_at")
    list_filter = ("to_status",)
    search_fields = ("escrow__id", "reason")
    list_select_related = ("escrow", "actor")


# --- disputes: they change only through escrow.disputes (locks, history, evidence, money) -------------


class DisputeStatusChangeInline(admin.TabularInline):
    model = DisputeStatusChange
    fields = ("from_status", "to_status", "actor", "reason", "created_at")
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None) -> bool:  # type: ignore[no-untyped-def]
        return False


class DisputeEvidenceFileInline(admin.TabularInline):
    model = DisputeEvidenceFile
    fields = ("original_name", "content_type", "size", "party", "sha256", "download", "created_at")
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None) -> bool:  # type: ignore[no-untyped-def]
        return False

    @admin.display(description="file")
    def download(self, obj: DisputeEvidenceFile) -> str:
        # Through the authorizing view, never a public media URL.
        return format_html('<a href="{}">download</a>', reverse("disputes:file", args=[obj.pk]))


@admin.register(Dispute)
class DisputeAdmin(ReadOnlyAdmin):
    """Disputes are worked and ruled in the staff console (/console/); read-only here."""

    list_display = (
        "id",
        "engagement",
        "status",
        "opened_by_party",
        "ruling_outcome",
        "seller_share_bps",
        "upheld",
        "created_at",
        "answer_due_at",
        "ruled_at",
    )
    list_filter = ("status", "opened_by_party", "ruling_outcome", "upheld")
    search_fields = ("id", "engagement__id", "reason", "opened_by__username", "engagement__listing__name")
    list_select_related = ("engagement",)
    date_hierarchy = "created_at"
    inlines = [DisputeEvidenceFileInline, DisputeStatusChangeInline]


@admin.register(DisputeStatusChange)
class DisputeStatusChangeAdmin(ReadOnlyAdmin):
    list_display = ("dispute", "from_status", "to_status", "actor", "reason", "created_at")
    list_filter = ("to_status",)
    search_fields = ("dispute__id", "reason")
    list_select_related = ("dispute", "actor")


@admin.register(DisputeEvidenceFile)
class DisputeEvidenceFileAdmin(ReadOnlyAdmin):
    list_display = ("original_name", "dispute", "party", "content_type", "size", "created_at")
    list_filter = ("party", "content_type")
    search_fields = ("original_name", "sha256", "dispute__id")
    exclude = ("file",)  # the stored name stays private; download through the dispute's page
    list_select_related = ("dispute",)
