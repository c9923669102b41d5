"""Every write of escrow: funding, deciding, settling, paying out, timers.

Lock order: engagement (marketplace) -> escrow -> outbox item. No lock is held
while a payment provider is called: provider calls happen before the
transaction that records them (funding) or after the one that decided them
(payouts and refunds, through the outbox).
"""

from __future__ import annotations

import datetime
import logging

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from core.errors import Conflict, NotAllowed, ValidationFailed
from core.models import User
from core.money import BPS_DENOMINATOR
from core.services import evidence_append
from escrow import ledger
from escrow import money as escrow_money
from escrow.gateways import GatewayError, get_gateway
from escrow.gateways.base import FundingRequest, RefundRequest, TransferRequest
from escrow.lock_objects import escrow_lock, outbox_lock
from escrow.models import Escrow, EscrowStatusChange, EscrowTimer, OutboxItem, PayoutAccount, Settlement
from escrow.states import can_move
from marketplace import services as marketplace_services
from marketplace.lock_objects import engagement_lock
from marketplace.models import Engagement
from trust import selectors as trust_selectors

logger = logging.getLogger(__name__)

K = ledger.K
MAX_OUTBOX_ATTEMPTS = 8
OUTBOX_BACKOFF_CAP = datetime.timedelta(hours=1)


def _move(escrow: Escrow, to_status: str, *, actor: User | None = None, reason: str = "") -> Escrow:
    """Move a *locked* escrow, writing its history row."""
    from_status = escrow.status
    if not can_move(from_status, to_status):
        raise Conflict(f"An escrow that is {from_status} cannot become {to_status}.", code="invalid_transition")
    moved = Escrow.objects.filter(pk=escrow.pk, status=from_status).update(status=to_status, updated_at=timezone.now())
    if moved != 1:
        raise Conflict("The escrow changed meanwhile; reload and try again.", code="stale")
    escrow.status = to_status
    EscrowStatusChange.objects.create(
        escrow=escrow, from_status=from_status, to_status=to_status, actor=actor, reason=reason[:300]
    )
    return escrow


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


@transaction.atomic
def escrow_decide(*, engagement_id: int, outcome: str) -> Escrow | None:
    """An evaluation finished: schedule the release or refund, or hold for an admin."""
    engagement_lock(engagement_id)
    escrow_id = Escrow.objects.filter(engagement_id=engagement_id).values_list("id", flat=True).first()
    if escrow_id is None:
        return None  # never funded through escrow (nothing to move)
    escrow = escrow_lock(escrow_id)
    if escrow.status not in (Escrow.Status.FUNDED, Escrow.Status.HELD):
        return escrow
    escrow.evaluation_outcome = outcome
    escrow.save(update_fields=["evaluation_outcome", "updated_at"])
    # Delivered and judged: the delivery deadline no longer applies; a newer
    # evaluation (a re-evaluation) replaces any earlier decision.
    EscrowTimer.objects.filter(escrow=escrow, status=EscrowTimer.Status.PENDING).update(
        status=EscrowTimer.Status.CANCELLED, result=f"superseded by the evaluation ({outcome})"
    )
    if outcome == "inconclusive":
        if escrow.status == Escrow.Status.FUNDED:
            _move(escrow, Escrow.Status.HELD, reason="evaluation inconclusive: an admin decides")
        escrow.hold_reason = "The evaluation was inconclusive; an admin decides."
        escrow.save(update_fields=["hold_reason", "updated_at"])
        return escrow
    if escrow.status == Escrow.Status.HELD:
        _move(escrow, Escrow.Status.FUNDED, reason=f"evaluation {outcome}")
    due = timezone.now() + _review_window(escrow)
    if outcome == "passed":
        if escrow.manual_release_required:
            return escrow  # a trust policy demands the buyer (or an admin) releases by hand
        action = EscrowTimer.Action.RELEASE
    else:
        action = EscrowTimer.Action.SETTLE_FAILED
    EscrowTimer.objects.update_or_create(
        escrow=escrow, action=action, defaults={"due_at": due, "status": EscrowTimer.Status.PENDING, "result": ""}
    )
    return escrow


# --- settling -----------------------------------------------------------------------------------


def _failed_amounts(escrow: Escrow) -> escrow_money.Amounts:
    """Refund in full, or split pro rata by clause weight when the terms say so
    and no critical clause failed."""
    terms = escrow.engagement.pact_version.terms  # type: ignore[union-attr]
    evaluation = trust_selectors.evaluation_latest(engagement_id=escrow.engagement_id)
    results = list(evaluation.clause_results.all()) if evaluation is not None else []
    critical_failed = any(r.severity == "critical" and r.outcome == "failed" for r in results)
    if terms.get("settlement") == "pro_rata" and results and not critical_failed:
        passed = sum(r.weight for r in results if r.outcome == "passed")
        return escrow_money.pro_rata(
            escrow.amount_minor, escrow.fee_bps, passed_weight=passed, total_weight=sum(r.weight for r in results)
        )
    return escrow_money.refund(escrow.amount_minor, escrow.fee_bps)


def _settle(
    escrow: Escrow, amounts: escrow_money.Amounts, *, reason: str, actor: User | None, note: str = ""
) -> Settlement:
    """Settle a *locked* escrow: one settlement, one ledger transaction, outbox rows, evidence."""
    if escrow.status not in (Escrow.Status.FUNDED, Escrow.Status.HELD):
        raise Conflict(f"This escrow is {escrow.status}; it cannot be settled.", code="already_settled")
    if amounts.seller_gross + amounts.buyer_refund != escrow.amount_minor:  # pragma: no cover - money.py guarantees it
        raise ValueError("settlement amounts do not add up to the escrow amount")
    engagement = escrow.engagement
    seller_id = engagement.listing.seller_id
    currency = escrow.currency
    legs: list[ledger.Leg] = [(ledger.account(K.ESCROW_HOLDING, currency, escrow=escrow), -escrow.amount_minor)]
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
        escrow, escrow_money.release(escrow.amount_minor, escrow.fee_bps), reason="buyer_released", actor=actor
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
        escrow_money.amounts_for_share(escrow.amount_minor, seller_share_bps, escrow.fee_bps),
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
                escrow, escrow_money.refund(escrow.amount_minor, escrow.fee_bps), reason="delivery_expired", actor=None
            )
            result = "expired: refunded"
    elif escrow.status == Escrow.Status.FUNDED and engagement.status == Engagement.Status.EVALUATED:
        if timer.action == EscrowTimer.Action.RELEASE:
            _settle(
                escrow,
                escrow_money.release(escrow.amount_minor, escrow.fee_bps),
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
    if item.status == OutboxItem.Status.DONE:
        return item
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
