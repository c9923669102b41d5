"""Reads of escrow for pages and API views."""

from __future__ import annotations

import datetime
from typing import Any

from django.db.models import Count, OuterRef, Prefetch, Q, QuerySet, Subquery

from core.models import User
from escrow import ledger
from escrow import money as escrow_money
from escrow.models import (
    Dispute,
    DisputeEvidenceFile,
    DisputeStatusChange,
    Escrow,
    EscrowStatusChange,
    LedgerEntry,
    LedgerTransaction,
    PayoutAccount,
    Settlement,
)


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


# --- disputes and the staff console -------------------------------------------------------------


def dispute_visible_to(user: User) -> Q:
    if user.is_staff:
        return Q()
    return Q(engagement__buyer_id=user.pk) | Q(engagement__listing__seller_id=user.pk)


def _dispute_details(qs: QuerySet[Dispute]) -> QuerySet[Dispute]:
    return qs.select_related(
        "engagement__buyer", "engagement__listing__seller", "escrow", "opened_by", "answered_by", "ruled_by"
    ).prefetch_related(
        Prefetch("files", queryset=DisputeEvidenceFile.objects.select_related("uploaded_by").order_by("id")),
        Prefetch("status_changes", queryset=DisputeStatusChange.objects.select_related("actor").order_by("id")),
    )


def dispute_get(*, user: User, pk: int) -> Dispute:
    """Raises Dispute.DoesNotExist for anyone but the engagement's parties and staff."""
    return _dispute_details(Dispute.objects.filter(dispute_visible_to(user))).get(pk=pk)


def dispute_for_engagement(*, engagement_id: int) -> Dispute | None:
    """The engagement's latest dispute (the active one, if any), with its files and history."""
    return _dispute_details(Dispute.objects.filter(engagement_id=engagement_id)).order_by("-created_at", "-id").first()


def dispute_list(*, status: str = "") -> QuerySet[Dispute]:
    """Disputes oldest first: the active ones when `status` is "" or "active", else that status."""
    qs = Dispute.objects.select_related(
        "engagement__buyer", "engagement__listing__seller", "escrow", "opened_by", "answered_by", "ruled_by"
    )
    if status in ("", "active"):
        qs = qs.filter(status__in=Dispute.ACTIVE)
    elif status != "all":
        qs = qs.filter(status=status)
    return qs.order_by("created_at", "id")


def dispute_evidence_file_get(*, user: User, pk: int) -> DisputeEvidenceFile:
    """An evidence file, for the engagement's parties and staff only (DoesNotExist for anyone else)."""
    visible = (
        Q()
        if user.is_staff
        else (Q(dispute__engagement__buyer_id=user.pk) | Q(dispute__engagement__listing__seller_id=user.pk))
    )
    return DisputeEvidenceFile.objects.filter(visible).get(pk=pk)


def dispute_report(dispute: Dispute) -> dict[str, Any]:
    """The dispute representation of the design notes (plus its files, windows and history)."""
    ruling = None
    if dispute.status == Dispute.Status.RULED:
        ruling = {
            "outcome": dispute.ruling_outcome,
            "seller_share_bps": dispute.seller_share_bps,
            "rationale": dispute.rationale,
            "ruled_by": dispute.ruled_by.username if dispute.ruled_by else None,
            "ruled_at": dispute.ruled_at.isoformat() if dispute.ruled_at else None,
            "upheld": dispute.upheld,
        }
    return {
        "id": dispute.pk,
        "engagement": dispute.engagement_id,
        "status": dispute.status,
        "opened_by": dispute.opened_by_party,
        "reason": dispute.reason,
        "evidence": dispute.evidence,
        "answer": dispute.answer or None,
        "ruling": ruling,
        "opened_at": dispute.created_at.isoformat(),
        "answer_due_at": dispute.answer_due_at.isoformat(),
        "answered_at": dispute.answered_at.isoformat() if dispute.answered_at else None,
        "answer_lapsed_at": dispute.answer_lapsed_at.isoformat() if dispute.answer_lapsed_at else None,
        "evaluation": dispute.evaluation_id,
        "evaluation_outcome": dispute.evaluation_outcome,
        "files": [
            {
                "id": f.pk,
                "party": f.party,
                "name": f.original_name,
                "content_type": f.content_type,
                "size": f.size,
                "sha256": f.sha256,
                "uploaded_at": f.created_at.isoformat(),
            }
            for f in dispute.files.all()
        ],
        "history": [
            {
                "from": c.from_status or None,
                "to": c.to_status,
                "by": c.actor.username if c.actor else None,
                "reason": c.reason,
                "at": c.created_at.isoformat(),
            }
            for c in dispute.status_changes.all()
        ],
    }


def held_escrows() -> QuerySet[Escrow]:
    """Escrows held for an admin (an inconclusive evaluation, a part-lost chargeback), not by a
    dispute nor by an open card chargeback, oldest hold first (`held_since`)."""
    held_since = (
        EscrowStatusChange.objects.filter(escrow=OuterRef("pk"), to_status=Escrow.Status.HELD)
        .order_by("-created_at", "-id")
        .values("created_at")[:1]
    )
    return (
        Escrow.objects.filter(status=Escrow.Status.HELD)
        .exclude(chargeback_open=True)
        .exclude(disputes__status__in=Dispute.ACTIVE)
        .annotate(held_since=Subquery(held_since))
        .select_related("engagement__buyer", "engagement__listing__seller")
        .order_by("held_since", "id")
    )


def console_counts() -> dict[str, int]:
    """How many cases wait, per kind and dispute status (a few aggregate queries)."""
    by_status = dict(
        Dispute.objects.filter(status__in=Dispute.ACTIVE)
        .values_list("status")
        .annotate(n=Count("id"))
        .values_list("status", "n")
    )
    counts: dict[str, int] = {str(status): by_status.get(status, 0) for status in Dispute.ACTIVE}
    counts["disputes"] = sum(by_status.values())
    counts["held"] = held_escrows().count()
    return counts


def case_evaluations(*, engagement_id: int) -> list[Any]:
    """Every evaluation round of an engagement, oldest first, prefetched for `evaluation_report`."""
    from trust.models import ClauseResult, Evaluation, JudgeRun, JudgeVerdict

    return list(
        Evaluation.objects.filter(engagement_id=engagement_id)
        .select_related("pact_version")
        .prefetch_related(
            Prefetch("verdicts", queryset=JudgeVerdict.objects.order_by("clause_key", "judge")),
            Prefetch("clause_results", queryset=ClauseResult.objects.order_by("clause_key")),
            Prefetch("judge_runs", queryset=JudgeRun.objects.order_by("judge")),
        )
        .order_by("round", "id")
    )


def case_timeline(*, engagement: Any, escrow: Escrow | None, dispute: Dispute | None) -> list[dict[str, Any]]:
    """Engagement, escrow and dispute history merged in time order (from prefetched rows)."""
    rows: list[dict[str, Any]] = []
    for source, changes in (
        ("engagement", engagement.status_changes.all()),
        ("escrow", escrow.status_changes.all() if escrow is not None else []),
        ("dispute", dispute.status_changes.all() if dispute is not None else []),
    ):
        for c in changes:
            rows.append(
                {
                    "source": source,
                    "from": c.from_status,
                    "to": c.to_status,
                    "actor": c.actor.username if c.actor_id and c.actor else None,
                    "reason": c.reason,
                    "at": c.created_at,
                }
            )
    rows.sort(key=lambda r: r["at"])
    return rows


def engagement_evidence_bundle(*, engagement_id: int) -> dict[str, Any]:
    """The engagement's evidence records with everything needed to recompute each hash offline."""
    from core.selectors import evidence_for_subjects

    records = [
        {
            "seq": r.seq,
            "kind": r.kind,
            "subject": r.subject,
            "payload": r.payload,
            "prev_hash": r.prev_hash,
            "hash": r.hash,
            "created_at": r.created_at.isoformat(),
        }
        for r in evidence_for_subjects(subjects=[f"engagement:{engagement_id}"])
    ]
    return {
        "engagement": engagement_id,
        "hash_rule": "sha256(prev_hash + canonical_json({seq, kind, subject, payload})); canonical JSON: "
        "sorted keys, no whitespace, UTF-8; the first record's prev_hash is 64 zeros",
        "records": records,
    }


def dispute_list_detailed(*, status: str = "") -> QuerySet[Dispute]:
    """`dispute_list` with files and history prefetched, for `dispute_report` over a page."""
    return _dispute_details(dispute_list(status=status))


def escrow_for_case(*, engagement_id: int) -> Escrow | None:
    """The escrow with its settlement, ledger legs, timers and history (with actors) for the case page."""
    return (
        Escrow.objects.filter(engagement_id=engagement_id)
        .select_related("engagement__listing", "settlement")
        .prefetch_related(
            Prefetch(
                "transactions",
                queryset=LedgerTransaction.objects.order_by("created_at", "id").prefetch_related(
                    Prefetch("entries", queryset=LedgerEntry.objects.select_related("account").order_by("id"))
                ),
            ),
            Prefetch("status_changes", queryset=EscrowStatusChange.objects.select_related("actor").order_by("id")),
            "timers",
        )
        .first()
    )


def ruling_previews(escrow: Escrow) -> list[dict[str, Any]]:
    """What release, an even split and refund would pay, so staff see the money before they rule."""
    rows = []
    held = ledger.escrow_holding_balance(escrow)  # less any part a card network already returned
    for label, bps in (("Release", 10_000), ("Split 50/50", 5000), ("Refund", 0)):
        amounts = escrow_money.amounts_for_share(held, bps, escrow.fee_bps)
        rows.append(
            {
                "label": label,
                "bps": bps,
                "seller_net_minor": amounts.seller_net,
                "platform_fee_minor": amounts.platform_fee,
                "buyer_refund_minor": amounts.buyer_refund,
            }
        )
    return rows


def console_disputes(*, status: str = "") -> QuerySet[Dispute]:
    """The console's dispute rows (no files or history: the list shows the case, not its evidence)."""
    return dispute_list(status=status)


def console_held_count() -> int:
    return held_escrows().count()


def disputes_awaiting_answer(*, user: User, now: datetime.datetime | None = None) -> list[Dispute]:
    """Open disputes that `user` must answer, soonest deadline first: the user is the engagement's
    party other than the opener (the seller of a buyer's dispute, the buyer of a seller's), and the
    answer window is still open. One query, with the engagement, its listing and both parties joined."""
    from django.utils import timezone  # kept local: the module's own imports stay as they are

    now = now or timezone.now()
    must_answer = Q(opened_by_party=Dispute.Party.BUYER, engagement__listing__seller_id=user.pk) | Q(
        opened_by_party=Dispute.Party.SELLER, engagement__buyer_id=user.pk
    )
    return list(
        Dispute.objects.filter(must_answer, status=Dispute.Status.OPEN, answer_due_at__gt=now)
        .select_related("engagement__listing", "engagement__buyer", "opened_by")
        .order_by("answer_due_at", "id")
    )


def escrow_engagement_id(*, escrow_id: int) -> int | None:
    """The engagement of an escrow, or None when there is no such escrow."""
    return Escrow.objects.filter(pk=escrow_id).values_list("engagement_id", flat=True).first()


def dispute_engagement_id(*, user: User, dispute_id: int) -> int | None:
    """The engagement of a dispute this user may see (a party or staff), else None."""
    return (
        Dispute.objects.filter(dispute_visible_to(user), pk=dispute_id).values_list("engagement_id", flat=True).first()
    )
