"""Escrow data: where the buyer's money is, provably, at every moment.

- `Escrow` (one per engagement) moves awaiting_funds -> funded -> (held) ->
  settled, or cancelled, through `escrow.states`, under a row lock, with an
  `EscrowStatusChange` row per move.
- The double-entry ledger: `LedgerAccount`s, `LedgerTransaction`s (unique
  idempotency key) and their `LedgerEntry` legs (signed integer minor units).
  Every transaction sums to zero per currency (checked by `ledger_post` and, on
  PostgreSQL, by a deferred constraint trigger at commit); entries are never
  updated or deleted (a trigger refuses it); balances are sums of entries.
  Sign convention: a positive balance is money the account holds
  (escrow holding, seller payable, buyer refund, platform fees); the gateway
  clearing account goes negative by what came in from card networks and back
  up by what was paid out.
- `Settlement`: at most one per escrow (a database constraint), booked by
  exactly one ledger transaction.
- `EscrowTimer`: a due time for an action (release after the review window,
  refund after a failed evaluation, expiry at the delivery deadline), scanned by
  beat; never a long Celery countdown.
- `OutboxItem`: a money movement at the payment provider (payout, refund),
  written in the same transaction as the ledger posting and performed after
  commit by a `settlement` task with a deterministic idempotency key.
- `WebhookEvent`: the inbox of the payment provider's signed events, stored
  once by event id and processed after commit (`escrow.webhooks` verifies,
  `services.webhook_event_process` applies); `processed_at` is set in the
  same transaction as the event's effects, so an event takes effect once.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import F, Q

from core.models import StatusChange, TimeStampedModel
from marketplace.models import Engagement


class Escrow(TimeStampedModel):
    class Status(models.TextChoices):
        AWAITING_FUNDS = "awaiting_funds", "Awaiting funds"
        FUNDED = "funded", "Funded"
        HELD = "held", "Held for an admin"
        SETTLED = "settled", "Settled"
        CANCELLED = "cancelled", "Cancelled"

    engagement = models.OneToOneField(Engagement, on_delete=models.PROTECT, related_name="escrow")
    amount_minor = models.BigIntegerField()
    currency = models.CharField(max_length=3)
    fee_bps = models.PositiveIntegerField()
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.AWAITING_FUNDS, db_index=True)
    gateway = models.CharField(max_length=16)
    checkout_reference = models.CharField(max_length=255, blank=True)
    charge_reference = models.CharField(max_length=255, blank=True)
    hold_reason = models.CharField(max_length=300, blank=True)
    manual_release_required = models.BooleanField(default=False)
    # A card chargeback is open on this (unsettled) payment: nothing settles until it closes,
    # whatever else holds the escrow (a dispute, an inconclusive evaluation).
    chargeback_open = models.BooleanField(default=False)
    evaluation_outcome = models.CharField(max_length=16, blank=True)
    funded_at = models.DateTimeField(null=True, blank=True)
    settled_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=Q(amount_minor__gt=0), name="escrow_amount_positive"),
            models.CheckConstraint(condition=Q(currency__regex=r"^[a-z]{3}$"), name="escrow_currency_iso"),
            models.CheckConstraint(condition=Q(fee_bps__lte=10_000), name="escrow_fee_bps_range"),
        ]

    def __str__(self) -> str:
        return f"Escrow {self.pk} ({self.status}, {self.amount_minor} {self.currency})"


class EscrowStatusChange(StatusChange):
    escrow = models.ForeignKey(Escrow, on_delete=models.CASCADE, related_name="status_changes")


class LedgerAccount(models.Model):
    class Kind(models.TextChoices):
        GATEWAY_CLEARING = "gateway_clearing", "Gateway clearing"
        ESCROW_HOLDING = "escrow_holding", "Escrow holding"
        SELLER_PAYABLE = "seller_payable", "Seller payable"
        BUYER_REFUND = "buyer_refund", "Buyer refund"
        PLATFORM_FEES = "platform_fees", "Platform fees"
        CHARGEBACK_LOSSES = "chargeback_losses", "Chargeback losses"

    code = models.CharField(max_length=100, unique=True)
    kind = models.CharField(max_length=24, choices=Kind.choices)
    currency = models.CharField(max_length=3)
    escrow = models.ForeignKey(Escrow, on_delete=models.PROTECT, null=True, blank=True, related_name="accounts")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True)

    class Meta:
        ordering = ["code"]

    def __str__(self) -> str:
        return self.code


class LedgerTransaction(models.Model):
    idempotency_key = models.CharField(max_length=200, unique=True)
    kind = models.CharField(max_length=32)
    escrow = models.ForeignKey(Escrow, on_delete=models.PROTECT, null=True, blank=True, related_name="transactions")
    memo = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"{self.kind} {self.idempotency_key}"


class LedgerEntry(models.Model):
    transaction = models.ForeignKey(LedgerTransaction, on_delete=models.PROTECT, related_name="entries")
    account = models.ForeignKey(LedgerAccount, on_delete=models.PROTECT, related_name="entries")
    amount_minor = models.BigIntegerField()
    currency = models.CharField(max_length=3)

    class Meta:
        ordering = ["transaction", "id"]
        constraints = [
            models.CheckConstraint(condition=~Q(amount_minor=0), name="ledger_entry_nonzero"),
        ]

    def __str__(self) -> str:
        return f"{self.account_id}: {self.amount_minor} {self.currency}"


class Settlement(models.Model):
    class Outcome(models.TextChoices):
        RELEASE = "release", "Release to the seller"
        REFUND = "refund", "Refund to the buyer"
        SPLIT = "split", "Split"

    class Reason(models.TextChoices):
        EVALUATION = "evaluation", "Evaluation"
        BUYER_RELEASED = "buyer_released", "Released by the buyer"
        REVIEW_WINDOW_LAPSED = "review_window_lapsed", "Review window lapsed"
        DISPUTE_RULING = "dispute_ruling", "Dispute ruling"
        DELIVERY_EXPIRED = "delivery_expired", "Delivery expired"
        ENGAGEMENT_CANCELLED = "engagement_cancelled", "Paid after the engagement was cancelled"
        ADMIN = "admin", "Admin"

    class PayoutStatus(models.TextChoices):
        NOT_APPLICABLE = "not_applicable", "Nothing to pay out"
        PENDING = "pending", "Pending"
        PAID = "paid", "Paid"
        FAILED = "failed", "Failed"

    escrow = models.OneToOneField(Escrow, on_delete=models.PROTECT, related_name="settlement")
    transaction = models.OneToOneField(LedgerTransaction, on_delete=models.PROTECT, related_name="settlement")
    outcome = models.CharField(max_length=8, choices=Outcome.choices)
    reason = models.CharField(max_length=24, choices=Reason.choices)
    seller_gross_minor = models.BigIntegerField()
    platform_fee_minor = models.BigIntegerField()
    seller_net_minor = models.BigIntegerField()
    buyer_refund_minor = models.BigIntegerField()
    payout_status = models.CharField(max_length=16, choices=PayoutStatus.choices)
    refund_status = models.CharField(max_length=16, choices=PayoutStatus.choices)
    note = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(seller_gross_minor__gte=0)
                & Q(platform_fee_minor__gte=0)
                & Q(seller_net_minor__gte=0)
                & Q(buyer_refund_minor__gte=0),
                name="settlement_amounts_non_negative",
            ),
            models.CheckConstraint(
                condition=Q(seller_gross_minor=F("seller_net_minor") + F("platform_fee_minor")),
                name="settlement_gross_is_net_plus_fee",
            ),
        ]

    def __str__(self) -> str:
        return f"Settlement of escrow {self.escrow_id}: {self.outcome}"


class EscrowTimer(models.Model):
    class Action(models.TextChoices):
        RELEASE = "release", "Release when the review window lapses"
        SETTLE_FAILED = "settle_failed", "Refund or split when the review window lapses"
        EXPIRE = "expire", "Expire and refund at the delivery deadline"
        MANUAL_RELEASE_DUE = "manual_release", "Hold for an admin when a manual release is still due"

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        DONE = "done", "Done"
        CANCELLED = "cancelled", "Cancelled"

    escrow = models.ForeignKey(Escrow, on_delete=models.CASCADE, related_name="timers")
    action = models.CharField(max_length=16, choices=Action.choices)
    due_at = models.DateTimeField(db_index=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING, db_index=True)
    result = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    fired_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["due_at", "id"]
        constraints = [
            models.UniqueConstraint(fields=["escrow", "action"], name="escrow_timer_unique_action"),
        ]

    def __str__(self) -> str:
        return f"{self.action} at {self.due_at:%Y-%m-%d %H:%M} ({self.status})"


class OutboxItem(models.Model):
    class Kind(models.TextChoices):
        PAYOUT = "payout", "Payout to the seller"
        REFUND = "refund", "Refund to the buyer"

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    settlement = models.ForeignKey(Settlement, on_delete=models.PROTECT, related_name="outbox")
    kind = models.CharField(max_length=8, choices=Kind.choices)
    amount_minor = models.BigIntegerField()
    currency = models.CharField(max_length=3)
    idempotency_key = models.CharField(max_length=200, unique=True)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.PENDING, db_index=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True, db_index=True)
    provider_reference = models.CharField(max_length=255, blank=True)
    last_error = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    done_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            models.CheckConstraint(condition=Q(amount_minor__gt=0), name="outbox_amount_positive"),
            models.UniqueConstraint(fields=["settlement", "kind"], name="outbox_one_per_kind"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.amount_minor} {self.currency} ({self.status})"


class PayoutAccount(TimeStampedModel):
    """A seller's account at the payment provider (Stripe Connect Express, or the local simulator)."""

    seller = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="payout_account")
    gateway = models.CharField(max_length=16)
    provider_account = models.CharField(max_length=255, blank=True)
    payouts_enabled = models.BooleanField(default=False)

    def __str__(self) -> str:
        return f"{self.gateway} account of {self.seller_id}"


class WebhookEvent(models.Model):
    """A provider event as received: the raw JSON, stored once per event id."""

    event_id = models.CharField(max_length=255, unique=True)
    type = models.CharField(max_length=100, db_index=True)
    payload = models.JSONField()
    received_at = models.DateTimeField(auto_now_add=True)
    processed_at = models.DateTimeField(null=True, blank=True, db_index=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    result = models.CharField(max_length=300, blank=True)  # what processing did (or why it did nothing)
    error = models.CharField(max_length=500, blank=True)  # the last failure; set with processed_at when final

    class Meta:
        ordering = ["received_at", "id"]

    def __str__(self) -> str:
        return f"{self.type} {self.event_id}"


# --- disputes ------------------------------------------------------------------------------------
#
# A `Dispute` contests how an evaluated engagement's escrow would settle. The buyer
# opens one within the review window (against any finished evaluation), the seller
# only against a failed one; at most one is active per engagement (a partial unique
# constraint). Its status moves through `escrow.dispute_states` with a
# `DisputeStatusChange` per move (and per note: a lapsed answer window, a
# re-evaluation). While it is active the escrow is held and its timers are paused.
# A ruling settles the escrow once, by the escrow's own settlement path; the
# ruling's fields are set together with status `ruled` (a check constraint).
# `DisputeEvidenceFile`s are stored under MEDIA_ROOT with random names and only
# ever served by an authorizing view, never from a public URL.


class Dispute(TimeStampedModel):
    class Status(models.TextChoices):
        OPEN = "open", "Waiting for an answer"
        ANSWERED = "answered", "Answered"
        UNDER_REVIEW = "under_review", "Under review"
        RULED = "ruled", "Ruled"
        WITHDRAWN = "withdrawn", "Withdrawn"

    class Party(models.TextChoices):
        BUYER = "buyer", "Buyer"
        SELLER = "seller", "Seller"

    ACTIVE = (Status.OPEN, Status.ANSWERED, Status.UNDER_REVIEW)

    engagement = models.ForeignKey(Engagement, on_delete=models.PROTECT, related_name="disputes")
    escrow = models.ForeignKey(Escrow, on_delete=models.PROTECT, related_name="disputes")
    # The evaluation round the opener contested, and its outcome then (a withdrawal
    # goes back to that decision unless a re-evaluation changed it meanwhile).
    evaluation = models.ForeignKey("trust.Evaluation", on_delete=models.PROTECT, related_name="disputes")
    evaluation_outcome = models.CharField(max_length=16)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.OPEN, db_index=True)
    opened_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    opened_by_party = models.CharField(max_length=8, choices=Party.choices)
    reason = models.CharField(max_length=500)
    evidence = models.TextField(blank=True)
    answer_due_at = models.DateTimeField(db_index=True)
    answer = models.TextField(blank=True)
    answered_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    answered_at = models.DateTimeField(null=True, blank=True)
    answer_lapsed_at = models.DateTimeField(null=True, blank=True)
    ruling_outcome = models.CharField(max_length=8, choices=Settlement.Outcome.choices, blank=True)
    seller_share_bps = models.PositiveIntegerField(null=True, blank=True)
    rationale = models.TextField(blank=True)
    ruled_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    ruled_at = models.DateTimeField(null=True, blank=True)
    upheld = models.BooleanField(null=True, blank=True)
    settlement = models.OneToOneField(
        Settlement, on_delete=models.PROTECT, null=True, blank=True, related_name="dispute"
    )
    closed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["engagement"],
                condition=Q(status__in=["open", "answered", "under_review"]),
                name="dispute_one_active_per_engagement",
            ),
            models.CheckConstraint(
                condition=Q(seller_share_bps__isnull=True) | Q(seller_share_bps__lte=10_000),
                name="dispute_share_bps_range",
            ),
            models.CheckConstraint(
                condition=(
                    Q(status="ruled")
                    & ~Q(ruling_outcome="")
                    & Q(seller_share_bps__isnull=False)
                    & ~Q(rationale="")
                    & Q(ruled_at__isnull=False)
                    & Q(upheld__isnull=False)
                )
                | (~Q(status="ruled") & Q(ruling_outcome="") & Q(ruled_at__isnull=True)),
                name="dispute_ruling_iff_ruled",
            ),
        ]

    def __str__(self) -> str:
        return f"Dispute {self.pk} on engagement {self.engagement_id} ({self.status})"

    @property
    def is_active(self) -> bool:
        return self.status in self.ACTIVE


class DisputeStatusChange(StatusChange):
    dispute = models.ForeignKey(Dispute, on_delete=models.CASCADE, related_name="status_changes")


def _dispute_file_path(instance: DisputeEvidenceFile, filename: str) -> str:
    # The caller names the file (a random token); nothing of the uploader's name reaches the disk.
    return f"disputes/{instance.dispute_id}/{filename}"


class DisputeEvidenceFile(models.Model):
    dispute = models.ForeignKey(Dispute, on_delete=models.PROTECT, related_name="files")
    uploaded_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    party = models.CharField(max_length=8, choices=Dispute.Party.choices)
    file = models.FileField(upload_to=_dispute_file_path, max_length=200)
    original_name = models.CharField(max_length=200)
    content_type = models.CharField(max_length=64)
    size = models.PositiveIntegerField()
    sha256 = models.CharField(max_length=64)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"{self.original_name} ({self.content_type}, {self.size} bytes)"
