from django.contrib import admin

from core.admin import ReadOnlyAdmin
from escrow.models import (
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
