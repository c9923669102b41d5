"""Every write of escrow: funding, deciding, settling, paying out, timers.

Lock order: engagement (marketplace) -> escrow -> outbox item. No lock is held
while a payment provider is called: provider calls happen before the
transaction that records them (funding) or after the one that decided them
(payouts and refunds, through the outbox).
"""

from __future__ import annotations

import datetime
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.db import transaction
from django.db.models import Sum
from django.utils import timezone

from core.errors import Conflict, DomainError, NotAllowed, ValidationFailed
from core.models import User
from core.money import BPS_DENOMINATOR
from core.services import evidence_append
from core.state_machine import move_status
from escrow import ledger
from escrow import money as escrow_money
from escrow.gateways import GatewayError, get_gateway
from escrow.gateways.base import FundingRequest, RefundRequest, TransferRequest
from escrow.lock_objects import escrow_lock, outbox_lock
from escrow.models import (
    Escrow,
    EscrowStatusChange,
    EscrowTimer,
    LedgerEntry,
    LedgerTransaction,
    OutboxItem,
    PayoutAccount,
    Settlement,
    WebhookEvent,
)
from escrow.states import TRANSITIONS
from marketplace import services as marketplace_services
from marketplace.lock_objects import engagement_lock
from marketplace.models import Engagement
from trust import selectors as trust_selectors
from trust import services as trust_services

if TYPE_CHECKING:
    from escrow.gateways.stripe import StripeGateway

logger = logging.getLogger(__name__)

K = ledger.K
MAX_OUTBOX_ATTEMPTS = 8
# The hold reason of an escrow whose card payment is being charged back.
CHARGEBACK_HOLD_REASON = "card chargeback"
MANUAL_RELEASE_HOLD_REASON = (
    "A trust policy requires a manual release and the buyer has not released: an admin decides."
)
OUTBOX_BACKOFF_CAP = datetime.timedelta(hours=1)


def _move(escrow: Escrow, to_status: str, *, actor: User | None = None, reason: str = "") -> Escrow:
    """Move a *locked* escrow, writing its history row."""
    return move_status(
        escrow,
        to_status,
        transitions=TRANSITIONS,
        history=EscrowStatusChange,
        history_fk="escrow",
        noun="escrow",
        actor=actor,
        reason=reason,
    )


# --- funding ---------------------------------------------------------------------------------


def escrow_fund(*, engagement_id: int, actor: User, via_api: bool = True) -> tuple[Escrow, str | None]:
    """Open (once) the escrow of an agreed engagement and start its funding.

    Returns the escrow and, when the buyer must still pay, the checkout URL.
    With the local gateway through the API the escrow is funded at once.
    """
    with transaction.atomic():
        engagement = engagement_lock(engagement_id)
        if actor.pk != engagement.buyer_id:
            raise NotAllowed("Only the buyer funds the escrow.")
        escrow = Escrow.objects.filter(engagement=engagement).first()
        if escrow is not None and escrow.status != Escrow.Status.AWAITING_FUNDS:
            raise Conflict(f"This escrow is already {escrow.get_status_display().lower()}.", code="already_funded")
        if engagement.status != Engagement.Status.AGREED:
            raise Conflict(
                f"Only an agreed engagement can be funded; this one is {engagement.status}.", code="not_agreed"
            )
        if escrow is None:
            terms = engagement.pact_version.terms  # type: ignore[union-attr]  # agreed => locked
            escrow = Escrow.objects.create(
                engagement=engagement,
                amount_minor=terms["price_minor"],
                currency=terms["currency"],
                fee_bps=terms["platform_fee_bps"],
                gateway=get_gateway().name,
            )
            EscrowStatusChange.objects.create(escrow=escrow, to_status=escrow.status, actor=actor, reason="opened")
    gateway = get_gateway(escrow.gateway)
    base = settings.PACTUM_BASE_URL.rstrip("/")
    start = gateway.start_funding(
        FundingRequest(
            escrow_id=escrow.pk,
            engagement_id=engagement_id,
            amount_minor=escrow.amount_minor,
            currency=escrow.currency,
            description=f"Pactum engagement #{engagement_id}",
            success_url=f"{base}/engagements/{engagement_id}/?funded=1",
            cancel_url=f"{base}/engagements/{engagement_id}/",
            idempotency_key=f"escrow-{escrow.pk}-checkout",
        ),
        via_api=via_api,
    )
    Escrow.objects.filter(pk=escrow.pk, checkout_reference="").update(checkout_reference=start.reference)
    if start.funded:
        escrow = escrow_confirm_funding(escrow_id=escrow.pk, charge_reference=start.charge_reference, actor=actor)
    return escrow, start.checkout_url


@transaction.atomic
def escrow_confirm_funding(*, escrow_id: int, charge_reference: str = "", actor: User | None = None) -> Escrow:
    """The money is in: book it, start the delivery clock. Idempotent (webhooks repeat)."""
    engagement_id = Escrow.objects.values_list("engagement_id", flat=True).get(pk=escrow_id)
    engagement_lock(engagement_id)
    escrow = escrow_lock(escrow_id)
    if escrow.status in (Escrow.Status.FUNDED, Escrow.Status.HELD, Escrow.Status.SETTLED):
        return escrow
    if escrow.status == Escrow.Status.CANCELLED:
        raise Conflict("This escrow was cancelled; the payment must be refunded.", code="cancelled")
    ledger.ledger_post(
        key=f"escrow:{escrow.pk}:funding",
        kind="funding",
        escrow=escrow,
        memo=f"buyer funded engagement {engagement_id}",
        legs=[
            (ledger.account(K.GATEWAY_CLEARING, escrow.currency), -escrow.amount_minor),
            (ledger.account(K.ESCROW_HOLDING, escrow.currency, escrow=escrow), escrow.amount_minor),
        ],
    )
    escrow.charge_reference = charge_reference or escrow.charge_reference
    escrow.funded_at = timezone.now()
    escrow.save(update_fields=["charge_reference", "funded_at", "updated_at"])
    _move(escrow, Escrow.Status.FUNDED, actor=actor, reason="payment received")
    if escrow.engagement.status != Engagement.Status.AGREED:
        # The payment arrived after the engagement was cancelled (a checkout left
        # open): the money is in, so book it and give it straight back.
        _settle(
            escrow,
            escrow_money.refund(escrow.amount_minor, escrow.fee_bps),
            reason=Settlement.Reason.ENGAGEMENT_CANCELLED,
            actor=None,
        )
        return escrow
    engagement = marketplace_services.engagement_mark_active(engagement_id=engagement_id, actor=actor)
    if engagement.delivery_due_at is not None:
        EscrowTimer.objects.update_or_create(
            escrow=escrow,
            action=EscrowTimer.Action.EXPIRE,
            defaults={"due_at": engagement.delivery_due_at, "status": EscrowTimer.Status.PENDING},
        )
    evidence_append(
        kind="escrow.funded",
        subject=f"engagement:{engagement_id}",
        payload={
            "escrow": escrow.pk,
            "amount_minor": escrow.amount_minor,
            "currency": escrow.currency,
            "gateway": escrow.gateway,
            "charge": escrow.charge_reference,
        },
    )
    return escrow


@transaction.atomic
def escrow_funding_failed(*, escrow_id: int, reason: str) -> Escrow:
    escrow = escrow_lock(escrow_id)
    if escrow.status == Escrow.Status.AWAITING_FUNDS:
        EscrowStatusChange.objects.create(
            escrow=escrow, from_status=escrow.status, to_status=escrow.status, reason=f"payment failed: {reason}"[:300]
        )
    return escrow


# --- deciding ------------------------------------------------------------------------------------


def _review_window(escrow: Escrow) -> datetime.timedelta:
    terms = escrow.engagement.pact_version.terms  # type: ignore[union-attr]
    return datetime.timedelta(hours=terms.get("review_window_hours", 72))


def settleable_minor(escrow: Escrow) -> int:
    """What a settlement of this escrow splits: the money its holding account holds (the
    escrow amount, less any part a card network already returned to the buyer)."""
    return ledger.escrow_holding_balance(escrow)


@transaction.atomic
def escrow_decide(*, engagement_id: int, outcome: str) -> Escrow | None:
    """An evaluation finished: schedule the release or refund, or hold for an admin."""
    engagement_lock(engagement_id)
    escrow_id = Escrow.objects.filter(engagement_id=engagement_id).values_list("id", flat=True).first()
    if escrow_id is None:
        return None  # never funded through escrow (nothing to move)
    engagement_status = Engagement.objects.values_list("status", flat=True).get(pk=engagement_id)
    escrow = escrow_lock(escrow_id)
    if escrow.status == Escrow.Status.SETTLED and engagement_status == Engagement.Status.EVALUATED:
        # The money already went back through a card chargeback before the job was judged:
        # nothing is left to decide, and the engagement must not wait for a settlement.
        marketplace_services.engagement_mark_closed(
            engagement_id=engagement_id, reason="the payment was already returned through a card chargeback"
        )
        return escrow
    if escrow.status not in (Escrow.Status.FUNDED, Escrow.Status.HELD):
        return escrow
    escrow.evaluation_outcome = outcome
    escrow.save(update_fields=["evaluation_outcome", "updated_at"])
    # Delivered and judged: the delivery deadline no longer applies; a newer
    # evaluation (a re-evaluation) replaces any earlier decision.
    EscrowTimer.objects.filter(escrow=escrow, status=EscrowTimer.Status.PENDING).update(
        status=EscrowTimer.Status.CANCELLED, result=f"superseded by the evaluation ({outcome})"
    )
    if escrow.chargeback_open:
        return escrow  # a card chargeback is open: nothing moves until it closes
    if escrow.status == Escrow.Status.HELD and escrow.hold_reason.startswith(f"{CHARGEBACK_HOLD_REASON} lost"):
        return escrow  # part of the payment went back through the card network: an admin settles the rest
    if outcome == "inconclusive":
        if escrow.status == Escrow.Status.FUNDED:
            _move(escrow, Escrow.Status.HELD, reason="evaluation inconclusive: an admin decides")
        escrow.hold_reason = "The evaluation was inconclusive; an admin decides."
        escrow.save(update_fields=["hold_reason", "updated_at"])
        return escrow
    if escrow.status == Escrow.Status.HELD:
        _move(escrow, Escrow.Status.FUNDED, reason=f"evaluation {outcome}")
        escrow.hold_reason = ""
        escrow.save(update_fields=["hold_reason", "updated_at"])
    # Open trust escalations on this agent change what happens next.
    consequences = trust_selectors.listing_consequences(listing_id=escrow.engagement.listing_id)
    due = timezone.now() + _review_window(escrow) + datetime.timedelta(hours=consequences.extra_review_hours)
    if outcome == "passed":
        if consequences.manual_release and not escrow.manual_release_required:
            escrow.manual_release_required = True
            escrow.save(update_fields=["manual_release_required", "updated_at"])
            EscrowStatusChange.objects.create(
                escrow=escrow,
                from_status=escrow.status,
                to_status=escrow.status,
                reason=("no auto-release: trust policy " + ", ".join(consequences.reasons))[:300],
            )
        # A trust policy may demand the buyer (or an admin) releases by hand: no auto-release.
        # If the buyer has not released when the review window ends, the money is held for
        # an admin (it reaches the staff console) instead of waiting forever.
        action = EscrowTimer.Action.MANUAL_RELEASE_DUE if escrow.manual_release_required else EscrowTimer.Action.RELEASE
    else:
        action = EscrowTimer.Action.SETTLE_FAILED
    EscrowTimer.objects.update_or_create(
        escrow=escrow, action=action, defaults={"due_at": due, "status": EscrowTimer.Status.PENDING, "result": ""}
    )
    return escrow


# --- settling -----------------------------------------------------------------------------------


def _failed_amounts(escrow: Escrow, *, evaluation: Any = None) -> escrow_money.Amounts:
    """Refund in full, or split pro rata by clause weight when the terms say so
    and no critical clause failed (by the latest evaluation, or the one given)."""
    terms = escrow.engagement.pact_version.terms  # type: ignore[union-attr]
    if evaluation is None:
        evaluation = trust_selectors.evaluation_latest(engagement_id=escrow.engagement_id)
    results = list(evaluation.clause_results.all()) if evaluation is not None else []
    critical_failed = any(r.severity == "critical" and r.outcome == "failed" for r in results)
    if terms.get("settlement") == "pro_rata" and results and not critical_failed:
        passed = sum(r.weight for r in results if r.outcome == "passed")
        return escrow_money.pro_rata(
            settleable_minor(escrow),
            escrow.fee_bps,
            passed_weight=passed,
            total_weight=sum(r.weight for r in results),
        )
    return escrow_money.refund(settleable_minor(escrow), escrow.fee_bps)


def _settle(
    escrow: Escrow, amounts: escrow_money.Amounts, *, reason: str, actor: User | None, note: str = ""
) -> Settlement:
    """Settle a *locked* escrow: one settlement, one ledger transaction, outbox rows, evidence."""
    if escrow.status not in (Escrow.Status.FUNDED, Escrow.Status.HELD):
        raise Conflict(f"This escrow is {escrow.status}; it cannot be settled.", code="already_settled")
    if escrow.chargeback_open:
        raise Conflict(
            "A card chargeback is open on this payment; it settles when the chargeback closes.", code="chargeback_open"
        )
    held = settleable_minor(escrow)
    if held <= 0:
        raise Conflict("Nothing is left in this escrow to settle.", code="nothing_held")
    if amounts.seller_gross + amounts.buyer_refund != held:  # pragma: no cover - callers split settleable_minor
        raise ValueError("settlement amounts do not add up to the money the escrow holds")
    engagement = escrow.engagement
    seller_id = engagement.listing.seller_id
    currency = escrow.currency
    legs: list[ledger.Leg] = [(ledger.account(K.ESCROW_HOLDING, currency, escrow=escrow), -held)]
    if amounts.seller_net:
        legs.append((ledger.account(K.SELLER_PAYABLE, currency, user_id=seller_id), amounts.seller_net))
    if amounts.platform_fee:
        legs.append((ledger.account(K.PLATFORM_FEES, currency), amounts.platform_fee))
    if amounts.buyer_refund:
        legs.append((ledger.account(K.BUYER_REFUND, currency, user_id=engagement.buyer_id), amounts.buyer_refund))
    txn = ledger.ledger_post(
        key=f"escrow:{escrow.pk}:settlement",
        kind="settlement",
        escrow=escrow,
        legs=legs,
        memo=f"{amounts.outcome} ({reason})",
    )
    pending, nothing = Settlement.PayoutStatus.PENDING, Settlement.PayoutStatus.NOT_APPLICABLE
    settlement = Settlement.objects.create(
        escrow=escrow,
        transaction=txn,
        outcome=amounts.outcome,
        reason=reason,
        seller_gross_minor=amounts.seller_gross,
        platform_fee_minor=amounts.platform_fee,
        seller_net_minor=amounts.seller_net,
        buyer_refund_minor=amounts.buyer_refund,
        payout_status=pending if amounts.seller_net else nothing,
        refund_status=pending if amounts.buyer_refund else nothing,
        note=note[:500],
    )
    items = []
    if amounts.seller_net:
        items.append(
            OutboxItem.objects.create(
                settlement=settlement,
                kind=OutboxItem.Kind.PAYOUT,
                amount_minor=amounts.seller_net,
                currency=currency,
                idempotency_key=f"pactum-settlement-{settlement.pk}-payout",
            )
        )
    if amounts.buyer_refund:
        items.append(
            OutboxItem.objects.create(
                settlement=settlement,
                kind=OutboxItem.Kind.REFUND,
                amount_minor=amounts.buyer_refund,
                currency=currency,
                idempotency_key=f"pactum-settlement-{settlement.pk}-refund",
            )
        )
    escrow.settled_at = timezone.now()
    escrow.hold_reason = ""
    escrow.save(update_fields=["settled_at", "hold_reason", "updated_at"])
    _move(escrow, Escrow.Status.SETTLED, actor=actor, reason=f"{amounts.outcome}: {reason}")
    EscrowTimer.objects.filter(escrow=escrow, status=EscrowTimer.Status.PENDING).update(
        status=EscrowTimer.Status.CANCELLED, result="escrow settled"
    )
    if engagement.status in (Engagement.Status.EVALUATED, Engagement.Status.DISPUTED):
        marketplace_services.engagement_mark_closed(
            engagement_id=engagement.pk, actor=actor, reason=f"settled: {amounts.outcome}"
        )
        # A delivered, judged job settled: one more task in the agent's dispute rate (taken
        # before the evidence lock). Expired or cancelled jobs are not the agent's tasks.
        trust_services.trust_task_settled(engagement_id=engagement.pk)
    evidence_append(
        kind="settlement",
        subject=f"engagement:{engagement.pk}",
        payload={
            "escrow": escrow.pk,
            "settlement": settlement.pk,
            "outcome": amounts.outcome,
            "reason": reason,
            "amount_minor": escrow.amount_minor,
            "seller_gross_minor": amounts.seller_gross,
            "platform_fee_minor": amounts.platform_fee,
            "seller_net_minor": amounts.seller_net,
            "buyer_refund_minor": amounts.buyer_refund,
            "currency": currency,
            "ledger_transaction": txn.idempotency_key,
        },
    )
    item_ids = [item.pk for item in items]
    transaction.on_commit(lambda: _enqueue_outbox(item_ids))
    return settlement


def _enqueue_outbox(item_ids: list[int]) -> None:
    from escrow.tasks import perform_outbox_item

    for item_id in item_ids:
        perform_outbox_item.delay(item_id)


@transaction.atomic(durable=True)
def escrow_release(*, engagement_id: int, actor: User) -> Settlement:
    """The buyer releases the money to the seller now (after the evaluation finished)."""
    engagement = engagement_lock(engagement_id)
    if actor.pk != engagement.buyer_id:
        raise NotAllowed("Only the buyer can release the escrow early.")
    escrow_id = Escrow.objects.filter(engagement=engagement).values_list("id", flat=True).first()
    if escrow_id is None:
        raise Conflict("This engagement has no funded escrow.", code="not_funded")
    escrow = escrow_lock(escrow_id)
    if escrow.status == Escrow.Status.SETTLED:
        raise Conflict("This escrow has already been settled.", code="already_settled")
    if escrow.status not in (Escrow.Status.FUNDED, Escrow.Status.HELD):
        raise Conflict(f"This escrow is {escrow.status}; nothing to release.", code="not_funded")
    if engagement.status != Engagement.Status.EVALUATED:
        raise Conflict("The money can be released once the delivery has been evaluated.", code="not_evaluated")
    return _settle(
        escrow, escrow_money.release(settleable_minor(escrow), escrow.fee_bps), reason="buyer_released", actor=actor
    )


@transaction.atomic(durable=True)
def escrow_settle_share(
    *, escrow_id: int, seller_share_bps: int, reason: str, actor: User | None, note: str = ""
) -> Settlement:
    """Settle with an explicit seller share (admin rulings, dispute outcomes)."""
    if (
        not isinstance(seller_share_bps, int)
        or isinstance(seller_share_bps, bool)
        or not 0 <= seller_share_bps <= BPS_DENOMINATOR
    ):
        raise ValidationFailed("seller_share_bps: an integer from 0 to 10000.")
    engagement_id = Escrow.objects.values_list("engagement_id", flat=True).get(pk=escrow_id)
    engagement_lock(engagement_id)
    escrow = escrow_lock(escrow_id)
    return _settle(
        escrow,
        escrow_money.amounts_for_share(settleable_minor(escrow), seller_share_bps, escrow.fee_bps),
        reason=reason,
        actor=actor,
        note=note,
    )


# --- timers ------------------------------------------------------------------------------------------


@transaction.atomic
def escrow_timer_fire(*, timer_id: int, now: datetime.datetime | None = None) -> str:
    """Perform one due timer (idempotent: a fired or cancelled timer does nothing)."""
    now = now or timezone.now()
    engagement_id, escrow_id = EscrowTimer.objects.values_list("escrow__engagement_id", "escrow_id").get(pk=timer_id)
    engagement = engagement_lock(engagement_id)
    escrow = escrow_lock(escrow_id)
    timer = EscrowTimer.objects.select_for_update().get(pk=timer_id)
    if timer.status != EscrowTimer.Status.PENDING or timer.due_at > now:
        return "not due"
    result = "nothing to do"
    if timer.action == EscrowTimer.Action.EXPIRE:
        if engagement.status == Engagement.Status.ACTIVE and escrow.status == Escrow.Status.FUNDED:
            marketplace_services.engagement_mark_expired(engagement_id=engagement_id)
            _settle(
                escrow,
                escrow_money.refund(settleable_minor(escrow), escrow.fee_bps),
                reason="delivery_expired",
                actor=None,
            )
            result = "expired: refunded"
    elif escrow.status == Escrow.Status.FUNDED and engagement.status == Engagement.Status.EVALUATED:
        if timer.action == EscrowTimer.Action.MANUAL_RELEASE_DUE:
            escrow.hold_reason = MANUAL_RELEASE_HOLD_REASON
            escrow.save(update_fields=["hold_reason", "updated_at"])
            _move(escrow, Escrow.Status.HELD, reason="review window over; a manual release is required")
            result = "held for an admin: manual release required"
        elif timer.action == EscrowTimer.Action.RELEASE:
            _settle(
                escrow,
                escrow_money.release(settleable_minor(escrow), escrow.fee_bps),
                reason="review_window_lapsed",
                actor=None,
            )
            result = "released"
        else:
            amounts = _failed_amounts(escrow)
            _settle(escrow, amounts, reason="review_window_lapsed", actor=None)
            result = amounts.outcome
    timer.status = EscrowTimer.Status.DONE
    timer.fired_at = now
    timer.result = result
    timer.save(update_fields=["status", "fired_at", "result"])
    return result


def escrow_fire_due_timers(*, now: datetime.datetime | None = None, limit: int = 200) -> int:
    """Fire every pending timer that is due (beat calls this every 30 s)."""
    now = now or timezone.now()
    due = list(
        EscrowTimer.objects.filter(status=EscrowTimer.Status.PENDING, due_at__lte=now)
        .order_by("due_at", "id")
        .values_list("id", flat=True)[:limit]
    )
    for timer_id in due:
        try:
            escrow_timer_fire(timer_id=timer_id, now=now)
        except Conflict as exc:  # the escrow moved on meanwhile (settled by hand, say)
            logger.info("timer %s skipped: %s", timer_id, exc.detail)
    return len(due)


# --- payouts and refunds at the provider (outbox) ---------------------------------------------------


def outbox_perform(*, item_id: int) -> OutboxItem:
    """Perform one outbox item at the provider, then record it (no lock held during the call)."""
    item = OutboxItem.objects.select_related("settlement__escrow__engagement__listing").get(pk=item_id)
    if item.status != OutboxItem.Status.PENDING:
        return item
    escrow = item.settlement.escrow
    gateway = get_gateway(escrow.gateway)
    try:
        if item.kind == OutboxItem.Kind.PAYOUT:
            seller_id = escrow.engagement.listing.seller_id
            account = PayoutAccount.objects.filter(seller_id=seller_id, payouts_enabled=True).first()
            if account is None and gateway.name != "local":
                raise GatewayError("the seller has not finished payout onboarding", retryable=True)
            result = gateway.transfer(
                TransferRequest(
                    amount_minor=item.amount_minor,
                    currency=item.currency,
                    destination_account=account.provider_account if account else f"acct_sim_{seller_id}",
                    source_transaction=escrow.charge_reference,
                    transfer_group=f"engagement-{escrow.engagement_id}",
                    idempotency_key=item.idempotency_key,
                )
            )
        else:
            result = gateway.refund(
                RefundRequest(
                    amount_minor=item.amount_minor,
                    charge_reference=escrow.charge_reference,
                    idempotency_key=item.idempotency_key,
                )
            )
    except GatewayError as exc:
        return _outbox_failed(item_id, exc.reason, retryable=exc.retryable)
    return _outbox_done(item_id, result.reference)


@transaction.atomic
def _outbox_done(item_id: int, reference: str) -> OutboxItem:
    item = outbox_lock(item_id)
    if item.status != OutboxItem.Status.PENDING:
        return item  # done already, or failed meanwhile (a webhook reported it): book nothing
    escrow = item.settlement.escrow
    engagement = escrow.engagement
    currency = item.currency
    if item.kind == OutboxItem.Kind.PAYOUT:
        source = ledger.account(K.SELLER_PAYABLE, currency, user_id=engagement.listing.seller_id)
    else:
        source = ledger.account(K.BUYER_REFUND, currency, user_id=engagement.buyer_id)
    ledger.ledger_post(
        key=f"outbox:{item.idempotency_key}",
        kind=item.kind,
        escrow=escrow,
        legs=[(source, -item.amount_minor), (ledger.account(K.GATEWAY_CLEARING, currency), item.amount_minor)],
        memo=f"{item.kind} {reference}",
    )
    item.status = OutboxItem.Status.DONE
    item.provider_reference = reference
    item.done_at = timezone.now()
    item.attempts += 1
    item.save(update_fields=["status", "provider_reference", "done_at", "attempts"])
    field = "payout_status" if item.kind == OutboxItem.Kind.PAYOUT else "refund_status"
    Settlement.objects.filter(pk=item.settlement_id).update(**{field: Settlement.PayoutStatus.PAID})
    return item


@transaction.atomic
def _outbox_failed(item_id: int, reason: str, *, retryable: bool) -> OutboxItem:
    item = outbox_lock(item_id)
    if item.status != OutboxItem.Status.PENDING:
        return item
    item.attempts += 1
    item.last_error = reason[:500]
    if not retryable or item.attempts >= MAX_OUTBOX_ATTEMPTS:
        item.status = OutboxItem.Status.FAILED
        field = "payout_status" if item.kind == OutboxItem.Kind.PAYOUT else "refund_status"
        Settlement.objects.filter(pk=item.settlement_id).update(**{field: Settlement.PayoutStatus.FAILED})
    else:
        backoff = min(datetime.timedelta(seconds=30 * 2 ** (item.attempts - 1)), OUTBOX_BACKOFF_CAP)
        item.next_attempt_at = timezone.now() + backoff
    item.save(update_fields=["attempts", "last_error", "status", "next_attempt_at"])
    return item


def outbox_sweep(
    *, now: datetime.datetime | None = None, stale_after: datetime.timedelta = datetime.timedelta(minutes=2)
) -> int:
    """Re-enqueue outbox items whose retry is due, or that nobody performed (a lost message)."""
    now = now or timezone.now()
    due = list(
        OutboxItem.objects.filter(status=OutboxItem.Status.PENDING)
        .filter(next_attempt_at__lte=now)
        .values_list("id", flat=True)
    ) + list(
        OutboxItem.objects.filter(
            status=OutboxItem.Status.PENDING, next_attempt_at__isnull=True, created_at__lte=now - stale_after
        ).values_list("id", flat=True)
    )
    transaction.on_commit(lambda: _enqueue_outbox(due))
    return len(due)


# --- payout accounts ------------------------------------------------------------------------------------


def payout_onboard(*, seller: User) -> tuple[PayoutAccount, str | None]:
    if seller.role != User.Role.SELLER:
        raise NotAllowed("Only sellers receive payouts.")
    gateway = get_gateway()
    existing = PayoutAccount.objects.filter(seller=seller).first()
    result = gateway.onboard(
        seller_id=seller.pk,
        email=seller.email,
        existing_account=existing.provider_account if existing else "",
        return_url=f"{settings.PACTUM_BASE_URL.rstrip('/')}/seller/payouts/",
    )
    with transaction.atomic():
        account, _ = PayoutAccount.objects.update_or_create(
            seller=seller,
            defaults={
                "gateway": gateway.name,
                "provider_account": result.account,
                "payouts_enabled": result.payouts_enabled,
            },
        )
    return account, result.url


@transaction.atomic
def payout_account_update(*, provider_account: str, payouts_enabled: bool) -> int:
    return PayoutAccount.objects.filter(provider_account=provider_account).update(
        payouts_enabled=payouts_enabled, updated_at=timezone.now()
    )


# --- the Stripe webhook inbox ---------------------------------------------------------------------
#
# `escrow.webhooks` verifies the signature and calls `webhook_event_record`, which stores the event
# once (its id is unique) and enqueues `webhook_event_process` after commit. Processing re-reads from
# Stripe what it needs (outside any transaction), then applies the event in one transaction that
# also marks it processed, under a lock of the event row: an event takes effect once. Effects are
# keyed by the provider's *object* ids (the escrow's funding, `dispute:<dp>:loss`,
# `refund:<re>:failed`, ...), not by the event id, so two events that tell the same fact (a
# `checkout.session.completed` and a `payment_intent.succeeded`) or the same fact twice book it once.
# Where order matters (disputes, accounts) the provider's current state is re-read and the escrow
# is brought to match it, so late or out-of-order deliveries converge instead of going backwards.

WEBHOOK_MAX_ATTEMPTS = 20
# Dispute statuses (Stripe): money withdrawn and still contested / decided against us / kept by us.
DISPUTE_OPEN = frozenset({"needs_response", "under_review"})
DISPUTE_INQUIRY = frozenset({"warning_needs_response", "warning_under_review"})  # nothing withdrawn yet
DISPUTE_LOST = frozenset({"lost"})
DISPUTE_KEPT = frozenset({"won", "warning_closed", "prevented"})

_Apply = Callable[[], str]


class WebhookRetryLater(Exception):
    """The event cannot be applied yet (the provider is unreachable, or what it depends on has
    not arrived); the task retries it and the sweeper picks it up again."""


class WebhookRejected(Exception):
    """The event contradicts what we know (a wrong amount, an unknown escrow): recorded as an
    error for an admin and not retried."""


def _stripe() -> StripeGateway:
    from escrow.gateways.stripe import StripeGateway

    return StripeGateway()


def _ref(value: Any) -> str:
    """An object id whether Stripe sent the id or the expanded object."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and isinstance(value.get("id"), str):
        return value["id"]
    return ""


def _int(obj: dict[str, Any], key: str) -> int | None:
    value = obj.get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _metadata(obj: dict[str, Any]) -> dict[str, Any]:
    metadata = obj.get("metadata")
    return metadata if isinstance(metadata, dict) else {}


def _meta_escrow_id(obj: dict[str, Any]) -> int | None:
    value = str(_metadata(obj).get("pactum_escrow_id", ""))
    return int(value) if value.isdigit() else None


def _lock_escrow(escrow_id: int) -> Escrow:
    """Lock in the house order: engagement, then escrow."""
    engagement_id = Escrow.objects.values_list("engagement_id", flat=True).get(pk=escrow_id)
    engagement_lock(engagement_id)
    return escrow_lock(escrow_id)


@transaction.atomic(durable=True)
def webhook_event_record(*, event_id: str, event_type: str, payload: dict[str, Any]) -> tuple[WebhookEvent, bool]:
    """Store a verified provider event once and process it after commit.

    Returns the event and whether it is new; a duplicate delivery changes nothing. Locks nothing:
    the unique event id settles two deliveries racing each other.
    """
    event, created = WebhookEvent.objects.get_or_create(
        event_id=event_id, defaults={"type": event_type, "payload": payload}
    )
    if created:
        transaction.on_commit(lambda: _enqueue_webhook([event_id]))
    return event, created


def _enqueue_webhook(event_ids: list[str]) -> None:
    from escrow.tasks import process_webhook_event

    for event_id in event_ids:
        process_webhook_event.delay(event_id)


def webhook_event_process(*, event_id: str) -> WebhookEvent:
    """Apply one stored event, exactly once; safe to call again, from any worker, in any order.

    Re-reads from the provider happen first, with no lock held; then one transaction locks the
    event row (then engagement -> escrow -> outbox item, as everywhere), applies the event and
    marks it processed. Raises `WebhookRetryLater` when a later attempt can succeed.
    """
    event = WebhookEvent.objects.get(event_id=event_id)
    if event.processed_at is not None:
        return event
    payload = event.payload if isinstance(event.payload, dict) else {}
    data = payload.get("data")
    obj = data.get("object") if isinstance(data, dict) else None
    handler = _WEBHOOK_HANDLERS.get(event.type)
    try:
        if not isinstance(obj, dict):
            raise WebhookRejected("the event carries no object")
        if handler is None:
            return _webhook_apply(event.pk, lambda: f"ignored: {event.type} is not handled")
        return _webhook_apply(event.pk, handler(event.type, obj))
    except GatewayError as exc:
        if not exc.retryable:
            return _webhook_failed(event.pk, exc.reason, final=True)
        _webhook_failed(event.pk, exc.reason, final=False)
        raise WebhookRetryLater(exc.reason) from exc
    except WebhookRetryLater as exc:
        _webhook_failed(event.pk, str(exc), final=False)
        raise
    except WebhookRejected as exc:
        return _webhook_failed(event.pk, str(exc), final=True)
    except DomainError as exc:
        return _webhook_failed(event.pk, exc.detail, final=True)


@transaction.atomic(durable=True)
def _webhook_apply(pk: int, apply: _Apply) -> WebhookEvent:
    event = WebhookEvent.objects.select_for_update().get(pk=pk)
    if event.processed_at is not None:
        return event  # another worker applied it meanwhile
    event.result = apply()[:300]
    event.error = ""
    event.attempts += 1
    event.processed_at = timezone.now()
    event.save(update_fields=["result", "error", "attempts", "processed_at"])
    return event


@transaction.atomic
def _webhook_failed(pk: int, reason: str, *, final: bool) -> WebhookEvent:
    event = WebhookEvent.objects.select_for_update().get(pk=pk)
    if event.processed_at is not None:
        return event
    event.attempts += 1
    event.error = reason[:500]
    if final or event.attempts >= WEBHOOK_MAX_ATTEMPTS:
        event.processed_at = timezone.now()
        event.result = "failed: an admin should look at the error"
    event.save(update_fields=["attempts", "error", "processed_at", "result"])
    logger.warning(
        "webhook event %s (%s) %s: %s", event.event_id, event.type, "failed" if final else "deferred", reason
    )
    return event


def webhook_event_sweep(
    *, now: datetime.datetime | None = None, stale_after: datetime.timedelta = datetime.timedelta(minutes=5)
) -> int:
    """Re-enqueue events stored but not processed (a lost message, or a retry that ran out)."""
    now = now or timezone.now()
    due = list(
        WebhookEvent.objects.filter(processed_at__isnull=True, received_at__lte=now - stale_after)
        .order_by("received_at", "id")
        .values_list("event_id", flat=True)[:200]
    )
    transaction.on_commit(lambda: _enqueue_webhook(due))
    return len(due)


# Each handler reads what it needs from the provider (no transaction open) and returns the part
# that runs inside the event's transaction.


def _on_checkout_session(event_type: str, session: dict[str, Any]) -> _Apply:
    escrow_id = _meta_escrow_id(session)
    if event_type in ("checkout.session.expired", "checkout.session.async_payment_failed"):
        reason = "the checkout expired" if event_type.endswith("expired") else "the payment failed"
        return lambda: _funding_failed(escrow_id, reason)
    intent_id = _ref(session.get("payment_intent"))
    if escrow_id is None or not intent_id:
        return lambda: f"ignored: checkout session {session.get('id')} is not a Pactum payment"
    # A session carries no charge: the PaymentIntent does (and says whether the money is in).
    intent = _stripe().retrieve_payment_intent(intent_id)
    return lambda: _fund(intent, fallback_escrow_id=escrow_id)


def _on_payment_intent(event_type: str, intent: dict[str, Any]) -> _Apply:
    if _meta_escrow_id(intent) is None:
        return lambda: f"ignored: payment intent {intent.get('id')} is not a Pactum payment"
    if event_type == "payment_intent.payment_failed":
        error = intent.get("last_payment_error")
        error = error if isinstance(error, dict) else {}
        reason = str(error.get("message") or error.get("code") or "the payment failed")
        return lambda: _funding_failed(_meta_escrow_id(intent), reason)
    if not _ref(intent.get("latest_charge")) and isinstance(intent.get("id"), str):
        intent = _stripe().retrieve_payment_intent(intent["id"])
    return lambda: _fund(intent)


def _fund(intent: dict[str, Any], *, fallback_escrow_id: int | None = None) -> str:
    escrow_id = _meta_escrow_id(intent) or fallback_escrow_id
    intent_id = intent.get("id")
    if escrow_id is None:
        return f"ignored: payment intent {intent_id} is not a Pactum payment"
    if not Escrow.objects.filter(pk=escrow_id, gateway="stripe").exists():
        raise WebhookRejected(f"payment intent {intent_id} names escrow {escrow_id}, which is not a Stripe escrow")
    if intent.get("status") != "succeeded":
        return f"waiting: payment intent {intent_id} is {intent.get('status')}"
    escrow = _lock_escrow(escrow_id)
    amount = _int(intent, "amount_received") or _int(intent, "amount")
    currency = str(intent.get("currency", "")).lower()
    if (amount, currency) != (escrow.amount_minor, escrow.currency):
        raise WebhookRejected(
            f"payment intent {intent_id} took {amount} {currency}; escrow {escrow.pk} is "
            f"{escrow.amount_minor} {escrow.currency}"
        )
    charge = _ref(intent.get("latest_charge"))
    if not charge:
        raise WebhookRetryLater(f"payment intent {intent_id} has succeeded but shows no charge yet")
    if escrow.status != Escrow.Status.AWAITING_FUNDS:
        if escrow.charge_reference and escrow.charge_reference != charge:
            # A second payment for one escrow (two checkouts both paid): keep it visible, never swallow it.
            raise WebhookRejected(
                f"escrow {escrow.pk} is already funded by {escrow.charge_reference}; charge {charge} "
                "is a second payment and must be refunded by hand"
            )
        return f"escrow {escrow.pk} already funded"
    escrow_confirm_funding(escrow_id=escrow.pk, charge_reference=charge)
    return f"escrow {escrow.pk} funded by {charge}"


def _funding_failed(escrow_id: int | None, reason: str) -> str:
    if escrow_id is None or not Escrow.objects.filter(pk=escrow_id).exists():
        return "ignored: not a Pactum payment"
    escrow_funding_failed(escrow_id=escrow_id, reason=reason)
    return f"escrow {escrow_id}: {reason}"


def _outbox_item_for(obj: dict[str, Any], kind: str) -> OutboxItem | None:
    """Our outbox row for a transfer or refund: by the idempotency key we put in its metadata, or
    by the reference we recorded."""
    from escrow.gateways.stripe import META_KEY

    items = OutboxItem.objects.filter(kind=kind).select_related("settlement__escrow__engagement__listing")
    key = _metadata(obj).get(META_KEY)
    item = items.filter(idempotency_key=key).first() if isinstance(key, str) and key else None
    if item is None and _ref(obj):
        item = items.filter(provider_reference=_ref(obj)).first()
    return item


def _on_refund(event_type: str, refund: dict[str, Any]) -> _Apply:
    return lambda: _refund_update(refund)


def _on_charge_refunded(event_type: str, charge: dict[str, Any]) -> _Apply:
    refunds = charge.get("refunds")
    listed = refunds.get("data") if isinstance(refunds, dict) else None
    items = [r for r in listed if isinstance(r, dict)] if isinstance(listed, list) else []
    # Newer API versions leave the list out; each refund also arrives as a `refund.*` event.
    return lambda: "; ".join(_refund_update(r) for r in items) or f"charge {charge.get('id')}: no refunds listed"


def _refund_update(refund: dict[str, Any]) -> str:
    refund_id = _ref(refund)
    item = _outbox_item_for(refund, OutboxItem.Kind.REFUND)
    if item is None:
        return f"ignored: refund {refund_id} is not one of ours"
    _lock_escrow(item.settlement.escrow_id)
    status = refund.get("status")
    if status in ("failed", "canceled"):
        reason = f"refund {refund_id} {status}: {refund.get('failure_reason') or 'no reason given'}"
        return _outbox_reversed(item, refund_id, item.amount_minor, reason=reason)
    if status in ("succeeded", "pending", "requires_action"):
        current = outbox_lock(item.pk).status
        if current == OutboxItem.Status.PENDING:
            _outbox_done(item.pk, refund_id)  # our call's answer was lost; Stripe says it happened
            return f"refund {refund_id} recorded"
        return f"refund {refund_id} is {status}; our record is already {current}"
    return f"ignored: refund {refund_id} is {status}"


def _on_transfer(event_type: str, transfer: dict[str, Any]) -> _Apply:
    return lambda: _transfer_update(transfer, failed=event_type == "transfer.failed")


def _transfer_update(transfer: dict[str, Any], *, failed: bool) -> str:
    transfer_id = _ref(transfer)
    item = _outbox_item_for(transfer, OutboxItem.Kind.PAYOUT)
    if item is None:
        return f"ignored: transfer {transfer_id} is not one of ours"
    _lock_escrow(item.settlement.escrow_id)
    if outbox_lock(item.pk).status == OutboxItem.Status.PENDING:
        _outbox_done(item.pk, transfer_id)  # the transfer exists at Stripe even if our call never heard back
    # `amount_reversed` is cumulative (partial reversals add up); a (legacy) failed transfer came back whole.
    reversed_total = (_int(transfer, "amount") if failed else _int(transfer, "amount_reversed")) or 0
    if reversed_total <= 0:
        return f"transfer {transfer_id} recorded"
    return _outbox_reversed(item, transfer_id, reversed_total, reason=f"transfer {transfer_id} reversed or failed")


def _outbox_reversed(item: OutboxItem, reference: str, total: int, *, reason: str) -> str:
    """Money we booked as gone to the seller (or the buyer) came back to the platform's balance.

    The platform owes it again: clearing -x, seller payable (or buyer refund) +x, where x is what
    has come back beyond what is already booked (`total` is cumulative, keyed by its value, so a
    repeat or an older, smaller total books nothing). The settlement's status turns failed for
    an admin to pay again. Called with the escrow locked.
    """
    item = outbox_lock(item.pk)
    if not LedgerTransaction.objects.filter(idempotency_key=f"outbox:{item.idempotency_key}").exists():
        if item.status == OutboxItem.Status.PENDING:
            _outbox_failed(item.pk, reason, retryable=False)
        return f"{reason}: nothing had been booked"
    escrow = item.settlement.escrow
    engagement = escrow.engagement
    if item.kind == OutboxItem.Kind.PAYOUT:
        owed = ledger.account(K.SELLER_PAYABLE, item.currency, user_id=engagement.listing.seller_id)
        prefix, field = f"transfer:{reference}:reversed:", "payout_status"
    else:
        owed = ledger.account(K.BUYER_REFUND, item.currency, user_id=engagement.buyer_id)
        prefix, field = f"refund:{reference}:failed:", "refund_status"
    booked = LedgerEntry.objects.filter(account=owed, transaction__idempotency_key__startswith=prefix).aggregate(
        total=Sum("amount_minor")
    )["total"]
    delta = min(total, item.amount_minor) - int(booked or 0)
    if delta > 0:
        ledger.ledger_post(
            key=f"{prefix}{min(total, item.amount_minor)}",
            kind=f"{item.kind}_returned",
            escrow=escrow,
            legs=[(ledger.account(K.GATEWAY_CLEARING, item.currency), -delta), (owed, delta)],
            memo=reason,
        )
    OutboxItem.objects.filter(pk=item.pk).update(status=OutboxItem.Status.FAILED, last_error=reason[:500])
    Settlement.objects.filter(pk=item.settlement_id).update(**{field: Settlement.PayoutStatus.FAILED})
    return f"{reason}: {delta if delta > 0 else 0} booked back"


def _on_dispute(event_type: str, obj: dict[str, Any]) -> _Apply:
    gateway = _stripe()
    # The dispute's current state, not the event's: deliveries come late and out of order.
    dispute = gateway.retrieve_dispute(_ref(obj)) if _ref(obj) else obj
    charge = _ref(dispute.get("charge"))
    escrow_id = (
        Escrow.objects.filter(gateway="stripe", charge_reference=charge).values_list("id", flat=True).first()
        if charge
        else None
    )
    intent = None
    if escrow_id is None and _ref(dispute.get("payment_intent")):
        # Disputed before we recorded the funding: the payment intent names the escrow.
        intent = gateway.retrieve_payment_intent(_ref(dispute.get("payment_intent")))
        escrow_id = _meta_escrow_id(intent)
    return lambda: _dispute_reconcile(dispute, escrow_id, intent)


def _dispute_reconcile(dispute: dict[str, Any], escrow_id: int | None, intent: dict[str, Any] | None) -> str:
    """Bring the escrow to what the dispute's current status implies (each step once):

    | status                      | escrow not settled                   | escrow settled                 |
    | needs_response/under_review | hold it ("card chargeback")          | book the chargeback loss       |
    | warning_* (an inquiry)      | hold it                              | nothing: no money withdrawn    |
    | lost                        | the held money went back to the buyer | book the loss (if not yet)    |
    | won/warning_closed/prevented| release our hold                     | reverse the loss if booked     |
    """
    dispute_id, status = _ref(dispute), str(dispute.get("status", ""))
    if escrow_id is None or not Escrow.objects.filter(pk=escrow_id).exists():
        return f"ignored: dispute {dispute_id} is not on a Pactum payment"
    if intent is not None and Escrow.objects.filter(pk=escrow_id, status=Escrow.Status.AWAITING_FUNDS).exists():
        _fund(intent)  # a disputed payment did succeed: record it first
    escrow = _lock_escrow(escrow_id)
    if escrow.status == Escrow.Status.AWAITING_FUNDS:
        raise WebhookRetryLater(f"dispute {dispute_id}: the payment of escrow {escrow.pk} is not recorded yet")
    if escrow.status == Escrow.Status.CANCELLED:
        return f"ignored: escrow {escrow.pk} is cancelled"
    amount, currency = _int(dispute, "amount"), str(dispute.get("currency", "")).lower()
    if amount is None or amount <= 0 or currency != escrow.currency:
        raise WebhookRejected(
            f"dispute {dispute_id} is for {amount} {currency}; escrow {escrow.pk} is {escrow.currency}"
        )
    settled = escrow.status == Escrow.Status.SETTLED
    if status in DISPUTE_OPEN:
        return _chargeback_loss(escrow, dispute_id, amount) if settled else _chargeback_hold(escrow, dispute_id)
    if status in DISPUTE_INQUIRY:
        return (
            f"dispute {dispute_id} is an inquiry: nothing withdrawn"
            if settled
            else _chargeback_hold(escrow, dispute_id)
        )
    if status in DISPUTE_LOST:
        return (
            _chargeback_loss(escrow, dispute_id, amount) if settled else _chargeback_return(escrow, dispute_id, amount)
        )
    if status in DISPUTE_KEPT:
        return _chargeback_reinstate(escrow, dispute_id) if settled else _chargeback_release(escrow, dispute_id)
    return f"ignored: dispute {dispute_id} has status {status!r}"


def _chargeback_evidence(escrow: Escrow, dispute_id: str, effect: str, **extra: Any) -> None:
    evidence_append(
        kind="escrow.chargeback",
        subject=f"engagement:{escrow.engagement_id}",
        payload={"escrow": escrow.pk, "dispute": dispute_id, "effect": effect, "currency": escrow.currency, **extra},
    )


def _chargeback_hold(escrow: Escrow, dispute_id: str) -> str:
    """Freeze an unsettled escrow while the card network decides (no money moves in our ledger yet).

    `chargeback_open` blocks every settlement, whatever else holds the escrow; an escrow held
    already (a dispute, an inconclusive evaluation) keeps its own reason beside it.
    """
    if escrow.chargeback_open:
        return f"escrow {escrow.pk} already held"
    opened = f"{CHARGEBACK_HOLD_REASON} {dispute_id} opened"
    escrow.chargeback_open = True
    if escrow.status == Escrow.Status.HELD:
        escrow.save(update_fields=["chargeback_open", "updated_at"])
        EscrowStatusChange.objects.create(
            escrow=escrow, from_status=escrow.status, to_status=escrow.status, reason=opened
        )
        _chargeback_evidence(escrow, dispute_id, "noted on a held escrow")
        return f"escrow {escrow.pk} was already held; chargeback noted"
    escrow.hold_reason = CHARGEBACK_HOLD_REASON
    escrow.save(update_fields=["chargeback_open", "hold_reason", "updated_at"])
    _move(escrow, Escrow.Status.HELD, reason=opened)
    _chargeback_evidence(escrow, dispute_id, "held")
    return f"escrow {escrow.pk} held: {CHARGEBACK_HOLD_REASON}"


def _chargeback_release(escrow: Escrow, dispute_id: str) -> str:
    """The card network kept the payment with us: lift the chargeback (never another hold)."""
    if not escrow.chargeback_open:
        return f"escrow {escrow.pk}: no chargeback hold to release"
    escrow.chargeback_open = False
    if escrow.status != Escrow.Status.HELD or escrow.hold_reason != CHARGEBACK_HOLD_REASON:
        # Held for its own reason too (a dispute, an admin's decision): that hold stays.
        escrow.save(update_fields=["chargeback_open", "updated_at"])
        EscrowStatusChange.objects.create(
            escrow=escrow,
            from_status=escrow.status,
            to_status=escrow.status,
            reason=f"{CHARGEBACK_HOLD_REASON} {dispute_id} closed in our favour",
        )
        _chargeback_evidence(escrow, dispute_id, "released; the escrow stays held for its own reason")
        return f"escrow {escrow.pk}: chargeback closed; still held ({escrow.hold_reason})"
    held_at = (
        escrow.status_changes.filter(to_status=Escrow.Status.HELD, reason__startswith=CHARGEBACK_HOLD_REASON)
        .order_by("-created_at", "-id")
        .values_list("created_at", flat=True)
        .first()
    )
    escrow.hold_reason = ""
    escrow.save(update_fields=["chargeback_open", "hold_reason", "updated_at"])
    _move(escrow, Escrow.Status.FUNDED, reason=f"{CHARGEBACK_HOLD_REASON} {dispute_id} closed in our favour")
    if held_at is not None:
        # Timers that came due while the money was frozen did nothing; they apply now.
        EscrowTimer.objects.filter(
            escrow=escrow, status=EscrowTimer.Status.DONE, result="nothing to do", fired_at__gte=held_at
        ).update(status=EscrowTimer.Status.PENDING, due_at=timezone.now(), fired_at=None, result="")
    _chargeback_evidence(escrow, dispute_id, "released")
    if (
        escrow.evaluation_outcome
        and escrow.engagement.status == Engagement.Status.EVALUATED
        and not EscrowTimer.objects.filter(escrow=escrow, status=EscrowTimer.Status.PENDING).exists()
    ):
        # The evaluation finished while the chargeback froze the money (its decision was put
        # off, or a re-evaluation changed it): decide now.
        escrow_decide(engagement_id=escrow.engagement_id, outcome=escrow.evaluation_outcome)
    return f"escrow {escrow.pk} released from the chargeback hold"


def _chargeback_return(escrow: Escrow, dispute_id: str, amount: int) -> str:
    """Lost before settling: the card network gave the buyer (part of) the money the escrow held.

    Ledger: escrow holding -amount, gateway clearing +amount (money out of our Stripe balance,
    like a refund, but paid by the network). All of it returned: the escrow ends settled with no
    `Settlement` (nothing is left to decide, no refund may be sent on top) and an open dispute
    on it ends too (the card network decided it). Part of it: the rest stays held for an admin,
    who can only settle what is left.
    """
    key = f"dispute:{dispute_id}:returned"
    if LedgerTransaction.objects.filter(idempotency_key=key).exists():
        return f"escrow {escrow.pk}: chargeback already booked"
    held = ledger.escrow_holding_balance(escrow)
    returned = min(amount, held)
    if returned > 0:
        ledger.ledger_post(
            key=key,
            kind="chargeback",
            escrow=escrow,
            memo=f"chargeback {dispute_id} lost: the card network refunded the buyer {returned}",
            legs=[
                (ledger.account(K.ESCROW_HOLDING, escrow.currency, escrow=escrow), -returned),
                (ledger.account(K.GATEWAY_CLEARING, escrow.currency), returned),
            ],
        )
    escrow.chargeback_open = False
    if returned < held:
        # Part of the payment: the rest must be settled by a person who knows the story.
        if escrow.status == Escrow.Status.FUNDED:
            _move(escrow, Escrow.Status.HELD, reason=f"{CHARGEBACK_HOLD_REASON} {dispute_id} lost in part")
        escrow.hold_reason = (
            f"{CHARGEBACK_HOLD_REASON} lost for {returned} of {escrow.amount_minor}: "
            f"an admin settles the {held - returned} left"
        )
        escrow.save(update_fields=["chargeback_open", "hold_reason", "updated_at"])
        _chargeback_evidence(escrow, dispute_id, "returned in part to the buyer", amount_minor=returned)
        return f"needs an admin: dispute {dispute_id} lost for {returned} of escrow {escrow.pk}'s {held}"
    escrow.hold_reason = ""
    escrow.settled_at = timezone.now()
    escrow.save(update_fields=["chargeback_open", "hold_reason", "settled_at", "updated_at"])
    _move(escrow, Escrow.Status.SETTLED, reason=f"{CHARGEBACK_HOLD_REASON} {dispute_id} lost: the buyer was refunded")
    EscrowTimer.objects.filter(escrow=escrow, status=EscrowTimer.Status.PENDING).update(
        status=EscrowTimer.Status.CANCELLED, result="chargeback lost"
    )
    from escrow.disputes import disputes_end_for_chargeback

    disputes_end_for_chargeback(escrow=escrow, reason=f"card chargeback {dispute_id} lost: the buyer was refunded")
    if escrow.engagement.status in (Engagement.Status.EVALUATED, Engagement.Status.DISPUTED):
        marketplace_services.engagement_mark_closed(engagement_id=escrow.engagement_id, reason="chargeback lost")
    elif escrow.engagement.status == Engagement.Status.ACTIVE:
        # Not delivered yet, and the buyer has the money back: the job ends here.
        marketplace_services.engagement_mark_expired(
            engagement_id=escrow.engagement_id, reason="chargeback lost: the buyer was refunded by the card network"
        )
    _chargeback_evidence(escrow, dispute_id, "returned to the buyer", amount_minor=returned)
    return f"escrow {escrow.pk}: chargeback lost, the held money went back to the buyer"


def _chargeback_loss(escrow: Escrow, dispute_id: str, amount: int) -> str:
    """Disputed after settling: the network took `amount` from our Stripe balance.

    Ledger, one balanced transaction keyed `dispute:<dp>:loss` (the sign convention of this ledger:
    clearing goes up by money that leaves the platform's Stripe balance):
      gateway clearing          +amount        the network withdrew it
      seller payable (seller)   -recoverable   a receivable: the seller was paid (or is owed) for
                                               a sale the buyer took back; recovering it (a
                                               transfer reversal, or netting a later payout) books
                                               it back up to zero
      chargeback losses         -(the rest)    what the platform bears: its fee, plus anything the
                                               buyer also had refunded (the balance of this account
                                               is the platform's cumulative loss, negative)
    recoverable = min(amount, the settlement's seller net). A refund outbox already paid stays
    booked as it was: the loss account absorbs the double refund.
    """
    key = f"dispute:{dispute_id}:loss"
    if LedgerTransaction.objects.filter(idempotency_key__in=[key, f"dispute:{dispute_id}:returned"]).exists():
        return f"escrow {escrow.pk}: chargeback loss already booked"
    settlement = Settlement.objects.filter(escrow=escrow).first()
    recoverable = min(amount, settlement.seller_net_minor) if settlement else 0
    currency = escrow.currency
    legs: list[ledger.Leg] = [(ledger.account(K.GATEWAY_CLEARING, currency), amount)]
    if recoverable:
        seller_id = escrow.engagement.listing.seller_id
        legs.append((ledger.account(K.SELLER_PAYABLE, currency, user_id=seller_id), -recoverable))
    if amount - recoverable:
        legs.append((ledger.account(K.CHARGEBACK_LOSSES, currency), -(amount - recoverable)))
    ledger.ledger_post(
        key=key, kind="chargeback", escrow=escrow, legs=legs, memo=f"chargeback {dispute_id} on a settled escrow"
    )
    _chargeback_evidence(escrow, dispute_id, "loss booked", amount_minor=amount, seller_receivable_minor=recoverable)
    return f"escrow {escrow.pk}: chargeback loss of {amount} booked ({recoverable} receivable from the seller)"


def _chargeback_reinstate(escrow: Escrow, dispute_id: str) -> str:
    """Won after settling: the network gave the money back; the loss is reversed leg for leg."""
    loss = LedgerTransaction.objects.filter(idempotency_key=f"dispute:{dispute_id}:loss").first()
    if loss is None:
        return f"escrow {escrow.pk}: no chargeback loss to reverse"
    legs = [(entry.account, -entry.amount_minor) for entry in loss.entries.select_related("account")]
    key = f"dispute:{dispute_id}:reinstated"
    if LedgerTransaction.objects.filter(idempotency_key=key).exists():
        return f"escrow {escrow.pk}: chargeback already reversed"
    ledger.ledger_post(
        key=key, kind="chargeback_reversal", escrow=escrow, legs=legs, memo=f"chargeback {dispute_id} won"
    )
    _chargeback_evidence(escrow, dispute_id, "loss reversed")
    return f"escrow {escrow.pk}: chargeback won, the loss is reversed"


def _on_account(event_type: str, account: dict[str, Any]) -> _Apply:
    account_id = _ref(account)
    if not account_id or not PayoutAccount.objects.filter(provider_account=account_id).exists():
        return lambda: f"ignored: account {account_id} is not a seller's payout account"
    from escrow.gateways.stripe import account_payouts_enabled

    # Re-read: two `account.updated` events may arrive in either order; the latest state wins.
    enabled = account_payouts_enabled(_stripe().retrieve_account(account_id))
    return lambda: (
        f"{payout_account_update(provider_account=account_id, payouts_enabled=enabled)} payout account(s): "
        f"payouts {'enabled' if enabled else 'disabled'}"
    )


_WEBHOOK_HANDLERS: dict[str, Callable[[str, dict[str, Any]], _Apply]] = {
    "checkout.session.completed": _on_checkout_session,
    "checkout.session.async_payment_succeeded": _on_checkout_session,
    "checkout.session.async_payment_failed": _on_checkout_session,
    "checkout.session.expired": _on_checkout_session,
    "payment_intent.succeeded": _on_payment_intent,
    "payment_intent.payment_failed": _on_payment_intent,
    "charge.refunded": _on_charge_refunded,
    "charge.refund.updated": _on_refund,
    "refund.created": _on_refund,
    "refund.updated": _on_refund,
    "refund.failed": _on_refund,
    "transfer.created": _on_transfer,
    "transfer.updated": _on_transfer,
    "transfer.reversed": _on_transfer,
    "transfer.failed": _on_transfer,
    "charge.dispute.created": _on_dispute,
    "charge.dispute.updated": _on_dispute,
    "charge.dispute.closed": _on_dispute,
    "charge.dispute.funds_withdrawn": _on_dispute,
    "charge.dispute.funds_reinstated": _on_dispute,
    "account.updated": _on_account,
}


@transaction.atomic
def escrow_chargeback(*, escrow_id: int, dispute_id: str, status: str, amount: int | None = None) -> str:
    """Apply a card dispute's current status to an escrow (what the Stripe webhook does),
    for callers that learn of a chargeback some other way. Idempotent per dispute."""
    escrow = Escrow.objects.get(pk=escrow_id)
    dispute = {"id": dispute_id, "status": status, "amount": amount or escrow.amount_minor, "currency": escrow.currency}
    return _dispute_reconcile(dispute, escrow_id, None)
