"""Reads of escrow for pages and API views."""

from __future__ import annotations

from typing import Any

from django.db.models import Prefetch, Q, QuerySet

from core.models import User
from escrow import ledger
from escrow.models import Escrow, LedgerEntry, LedgerTransaction, PayoutAccount, Settlement


def _visible_to(user: User) -> Q:
    if user.is_staff:
        return Q()
    return Q(engagement__buyer_id=user.pk) | Q(engagement__listing__seller_id=user.pk)


def _with_details(qs: QuerySet[Escrow]) -> QuerySet[Escrow]:
    return qs.select_related("engagement__listing", "settlement").prefetch_related(
        Prefetch(
            "transactions",
            queryset=LedgerTransaction.objects.order_by("created_at", "id").prefetch_related(
                Prefetch("entries", queryset=LedgerEntry.objects.select_related("account").order_by("id"))
            ),
        ),
        "status_changes",
        "timers",
    )


def escrow_get(*, user: User, pk: int) -> Escrow:
    """Raises Escrow.DoesNotExist for anyone but the parties and staff."""
    return _with_details(Escrow.objects.filter(_visible_to(user))).get(pk=pk)


def escrow_for_engagement(*, engagement_id: int) -> Escrow | None:
    return _with_details(Escrow.objects.filter(engagement_id=engagement_id)).first()


def escrow_summaries(*, engagement_ids: list[int]) -> dict[int, dict[str, Any]]:
    return {
        row["engagement_id"]: {"id": row["id"], "status": row["status"]}
        for row in Escrow.objects.filter(engagement_id__in=engagement_ids).values("id", "engagement_id", "status")
    }


def escrow_report(escrow: Escrow) -> dict[str, Any]:
    """The escrow representation of the design notes, from a prefetched escrow."""
    entries = []
    holding = 0
    funded = 0
    for txn in escrow.transactions.all():
        for entry in txn.entries.all():
            entries.append(
                {
                    "transaction": txn.idempotency_key,
                    "kind": txn.kind,
                    "account": entry.account.code,
                    "amount_minor": entry.amount_minor,
                    "currency": entry.currency,
                    "at": txn.created_at.isoformat(),
                }
            )
            if entry.account.kind == ledger.K.ESCROW_HOLDING:
                holding += entry.amount_minor
                if txn.kind == "funding":
                    funded += entry.amount_minor
    settlement = getattr(escrow, "settlement", None)
    return {
        "id": escrow.pk,
        "engagement": escrow.engagement_id,
        "status": escrow.status,
        "currency": escrow.currency,
        "amount_minor": escrow.amount_minor,
        "funded_minor": funded,
        "held_minor": holding,
        "released_minor": settlement.seller_gross_minor if settlement else 0,
        "refunded_minor": settlement.buyer_refund_minor if settlement else 0,
        "fee_minor": settlement.platform_fee_minor if settlement else 0,
        "hold_reason": escrow.hold_reason,
        "gateway": escrow.gateway,
        "settlement": settlement_report(settlement) if settlement else None,
        "timers": [
            {"action": t.action, "due_at": t.due_at.isoformat(), "status": t.status, "result": t.result}
            for t in escrow.timers.all()
        ],
        "history": [
            {"from": c.from_status or None, "to": c.to_status, "reason": c.reason, "at": c.created_at.isoformat()}
            for c in escrow.status_changes.all()
        ],
        "entries": entries,
    }


def settlement_report(settlement: Settlement) -> dict[str, Any]:
    return {
        "id": settlement.pk,
        "outcome": settlement.outcome,
        "reason": settlement.reason,
        "seller_gross_minor": settlement.seller_gross_minor,
        "platform_fee_minor": settlement.platform_fee_minor,
        "seller_net_minor": settlement.seller_net_minor,
        "buyer_refund_minor": settlement.buyer_refund_minor,
        "payout_status": settlement.payout_status,
        "refund_status": settlement.refund_status,
        "created_at": settlement.created_at.isoformat(),
    }


def seller_payouts(*, seller: User) -> dict[str, Any]:
    account = PayoutAccount.objects.filter(seller=seller).first()
    settlements = (
        Settlement.objects.filter(escrow__engagement__listing__seller_id=seller.pk)
        .select_related("escrow")
        .order_by("-created_at", "-id")
    )
    return {
        "account": account.provider_account if account else None,
        "gateway": account.gateway if account else None,
        "payouts_enabled": bool(account and account.payouts_enabled),
        "settlements": [
            {**settlement_report(s), "engagement": s.escrow.engagement_id, "currency": s.escrow.currency}
            for s in settlements
        ],
    }


def buyer_spending(*, buyer: User) -> QuerySet[Escrow]:
    return (
        Escrow.objects.filter(engagement__buyer_id=buyer.pk)
        .select_related("engagement__listing", "settlement")
        .order_by("-created_at", "-id")
    )
