"""Thresholds with consequences.

A `TrustPolicy` watches one metric of an agent's record. When the agent's
figure crosses the threshold (and the agent has enough evidence for the policy
to apply), an `EscalationEvent` is written with an evidence record and the
policy's action takes effect:

- flag listing: a badge on the listing card, trust page and leaderboard;
- require manual release: escrow does not auto-release this agent's passed jobs;
- extend review window: the buyer gets more hours before money moves;
- suspend listing: hidden from search, refuses new engagements.

An event stays open (and its consequence in force) until the agent's figure is
back on the right side of the threshold (the event then resolves itself as
"recovered") or staff resolve it. Staff resolving an event whose threshold is
still crossed is an override: that policy stays quiet for the agent until more
evidence (judged jobs, or settled tasks for dispute metrics) arrives. A suspension only ends by staff: a hidden agent
gets no new evidence to recover with; resolving it publishes the listing again.
While an event is open the same policy does not fire again for that agent.
"""

from __future__ import annotations

import datetime
import logging
import operator
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.utils import timezone

from core.errors import Conflict, NotAllowed, ValidationFailed
from core.models import User
from core.services import evidence_append
from marketplace import services as marketplace_services
from marketplace.models import AgentListing
from trust.models import EscalationEvent, TrustPolicy, TrustRecord

logger = logging.getLogger(__name__)

COMPARATORS: dict[str, Callable[[float, float], bool]] = {
    "lt": operator.lt,
    "lte": operator.le,
    "gt": operator.gt,
    "gte": operator.ge,
}
DISPUTE_METRICS = {TrustPolicy.Metric.DISPUTES_PER_100, TrustPolicy.Metric.UPHELD_DISPUTES_PER_100}


def metric_value(metric: str, record: TrustRecord, now: datetime.datetime) -> float | None:
    """The agent's figure for a policy metric; None when there is nothing to measure yet."""
    if metric == TrustPolicy.Metric.COMPLIANCE_LOWER:
        return record.compliance_lower
    if metric == TrustPolicy.Metric.COMPLIANCE_MEAN:
        return record.compliance_mean
    if metric == TrustPolicy.Metric.CONFIDENCE:
        return record.confidence
    if metric == TrustPolicy.Metric.DISPUTES_PER_100:
        return 100.0 * record.disputes / record.settled_tasks if record.settled_tasks else None
    if metric == TrustPolicy.Metric.UPHELD_DISPUTES_PER_100:
        return 100.0 * record.disputes_upheld / record.settled_tasks if record.settled_tasks else None
    if metric == TrustPolicy.Metric.DAYS_SINCE_VERIFIED:
        if record.last_verified_at is None:
            return None
        return (now - record.last_verified_at).total_seconds() / 86_400.0
    raise ValueError(f"unknown metric {metric!r}")


def applies(policy: TrustPolicy, record: TrustRecord) -> bool:
    evidence = record.settled_tasks if policy.metric in DISPUTE_METRICS else record.evidence_count
    return evidence >= policy.min_evidence


def crossed(policy: TrustPolicy, record: TrustRecord, now: datetime.datetime) -> float | None:
    """The figure that crosses the policy's threshold, or None."""
    if not applies(policy, record):
        return None
    value = metric_value(policy.metric, record, now)
    if value is None:
        return None
    return value if COMPARATORS[policy.comparator](value, policy.threshold) else None


def policies_apply(
    *, listing_id: int, now: datetime.datetime | None = None, record: TrustRecord | None = None
) -> list[EscalationEvent]:
    """Check every active policy against the agent's record; escalate the new crossings.

    Runs inside the caller's transaction (the one that changed the record).
    """
    now = now or timezone.now()
    if record is None:  # the caller may pass the agent-wide record it just wrote
        record = TrustRecord.objects.filter(listing_id=listing_id, category=TrustRecord.ALL).first()
    if record is None:
        return []
    open_events = {
        event.policy_id: event
        for event in EscalationEvent.objects.filter(
            listing_id=listing_id, status=EscalationEvent.Status.OPEN
        ).select_related("policy")
    }
    overrides = overrides_in_force(listing_id=listing_id, record=record)
    events = []
    for policy in TrustPolicy.objects.filter(active=True).order_by("pk"):
        value = crossed(policy, record, now)
        event = open_events.get(policy.pk)
        if event is None and value is not None and policy.pk not in overrides:
            events.append(_escalate(policy, listing_id, value))
        elif event is not None and value is None and policy.action != TrustPolicy.Action.SUSPEND_LISTING:
            # The agent is back on the right side of the threshold: the consequence ends on its
            # own. A suspension stays until staff lift it (a hidden agent gets no new evidence).
            current = metric_value(policy.metric, record, now)
            _close(event, actor=None, note=f"recovered: {policy.get_metric_display()} is now {_fmt(current)}")
    return events


def _evidence_for(policy_metric: str, record: TrustRecord) -> int:
    return record.settled_tasks if policy_metric in DISPUTE_METRICS else record.evidence_count


def overrides_in_force(*, listing_id: int, record: TrustRecord) -> set[int]:
    """Policies staff overrode for this agent that wait for new evidence before firing again."""
    return overrides_among(EscalationEvent.objects.filter(listing_id=listing_id), record)


def overrides_among(events: Iterable[EscalationEvent], record: TrustRecord) -> set[int]:
    latest: dict[int, EscalationEvent] = {}
    for event in sorted(events, key=lambda e: (e.created_at, e.pk)):
        if event.status == EscalationEvent.Status.RESOLVED:
            latest[event.policy_id] = event
    return {
        policy_id
        for policy_id, event in latest.items()
        if event.evidence_at_override is not None and _evidence_for(event.metric, record) <= event.evidence_at_override
    }


def _fmt(value: float | None) -> str:
    return "unmeasured" if value is None else f"{value:.4g}"


def _close(event: EscalationEvent, *, actor: User | None, note: str, evidence_at_override: int | None = None) -> bool:
    """Resolve an open event once (a staff resolution and a recovery may race: one wins)."""
    resolution = {
        "status": EscalationEvent.Status.RESOLVED,
        "resolved_at": timezone.now(),
        "resolved_by": actor,
        "resolution_note": note[:2000],
        "evidence_at_override": evidence_at_override,
    }
    if not EscalationEvent.objects.filter(pk=event.pk, status=EscalationEvent.Status.OPEN).update(**resolution):
        return False
    for name, value in resolution.items():
        setattr(event, name, value)
    if event.action == TrustPolicy.Action.SUSPEND_LISTING:
        still_suspended = EscalationEvent.objects.filter(
            listing_id=event.listing_id, status=EscalationEvent.Status.OPEN, action=TrustPolicy.Action.SUSPEND_LISTING
        ).exists()
        status = AgentListing.objects.values_list("status", flat=True).get(pk=event.listing_id)
        if not still_suspended and status == AgentListing.Status.SUSPENDED:
            marketplace_services.listing_set_status(listing_id=event.listing_id, status=AgentListing.Status.PUBLISHED)
    evidence_append(
        kind="trust.escalation_resolved",
        subject=f"listing:{event.listing_id}",
        payload={
            "event": event.pk,
            "policy": event.policy_id,
            "by": actor.username if actor else "policy (recovered)",
            "note": event.resolution_note,
            "override": evidence_at_override is not None,
        },
    )
    return True


def _escalate(policy: TrustPolicy, listing_id: int, value: float) -> EscalationEvent:
    event = EscalationEvent.objects.create(
        policy=policy,
        listing_id=listing_id,
        metric=policy.metric,
        comparator=policy.comparator,
        threshold=policy.threshold,
        metric_value=value,
        action=policy.action,
        extra_review_hours=policy.extra_review_hours,
    )
    if policy.action == TrustPolicy.Action.SUSPEND_LISTING:
        status = AgentListing.objects.values_list("status", flat=True).get(pk=listing_id)
        if status == AgentListing.Status.PUBLISHED:
            marketplace_services.listing_set_status(listing_id=listing_id, status=AgentListing.Status.SUSPENDED)
    evidence_append(
        kind="trust.escalation",
        subject=f"listing:{listing_id}",
        payload={
            "event": event.pk,
            "policy": policy.pk,
            "policy_name": policy.name,
            "metric": policy.metric,
            "comparator": policy.comparator,
            "threshold": policy.threshold,
            "value": value,
            "action": policy.action,
        },
    )
    logger.info("escalation %s: %s on listing %s (value %.4f)", event.pk, policy.name, listing_id, value)
    return event


@transaction.atomic
def escalation_resolve(*, event_id: int, actor: User, note: str) -> EscalationEvent:
    """Staff close an escalation; its consequence ends (a suspension is lifted)."""
    if not actor.is_staff:
        raise NotAllowed("Only Pactum staff can resolve escalations.")
    note = (note or "").strip()
    if not note:
        raise ValidationFailed("note: say why the escalation is resolved.")
    event = EscalationEvent.objects.select_for_update().select_related("policy").get(pk=event_id)
    if event.status != EscalationEvent.Status.OPEN:
        raise Conflict("This escalation is already resolved.", code="already_resolved")
    # Resolving while the agent is still across the threshold is an override: the policy
    # stays quiet for this agent until new evidence arrives, instead of firing again tonight.
    record = TrustRecord.objects.filter(listing_id=event.listing_id, category=TrustRecord.ALL).first()
    override = None
    if record is not None and crossed(event.policy, record, timezone.now()) is not None:
        override = _evidence_for(event.metric, record)
    _close(event, actor=actor, note=note, evidence_at_override=override)
    return event


@dataclass(frozen=True)
class Consequences:
    """What the open escalations of one agent make the platform do."""

    flagged: bool = False
    manual_release: bool = False
    extra_review_hours: int = 0
    suspended: bool = False
    reasons: list[str] = field(default_factory=list)


def consequences_for(events: list[EscalationEvent]) -> Consequences:
    A = TrustPolicy.Action
    return Consequences(
        flagged=bool(events),
        manual_release=any(e.action == A.REQUIRE_MANUAL_RELEASE for e in events),
        extra_review_hours=max((e.extra_review_hours for e in events if e.action == A.EXTEND_REVIEW_WINDOW), default=0),
        suspended=any(e.action == A.SUSPEND_LISTING for e in events),
        reasons=[e.policy.name for e in events],
    )


# --- review cadence -------------------------------------------------------------------------------


def policy_mark_reviewed(*, policy_id: int, actor: User, now: datetime.datetime | None = None) -> TrustPolicy:
    if not actor.is_staff:
        raise NotAllowed("Only Pactum staff can review trust policies.")
    now = now or timezone.now()
    policy = TrustPolicy.objects.get(pk=policy_id)
    policy.next_review_at = now + datetime.timedelta(days=policy.review_every_days)
    policy.last_reminded_at = None
    policy.save(update_fields=["next_review_at", "last_reminded_at", "updated_at"])
    return policy


def policy_review_reminders(*, now: datetime.datetime | None = None) -> int:
    """Email each owner once about their policies that are due for review."""
    now = now or timezone.now()
    due = TrustPolicy.objects.filter(
        active=True, next_review_at__lte=now, last_reminded_at__isnull=True
    ).select_related("owner")
    sent = 0
    for policy in due:
        if policy.owner.email:
            send_mail(
                subject=f"[Pactum] Trust policy due for review: {policy.name}",
                message=(
                    f"The trust policy '{policy.name}' ({policy.describe()}) was due for review on "
                    f"{policy.next_review_at:%Y-%m-%d}.\n\nOpen events: "
                    f"{policy.events.filter(status=EscalationEvent.Status.OPEN).count()}.\n"
                    "Check its threshold still matches what the platform wants, then mark it reviewed."
                ),
                from_email=settings.DEFAULT_FROM_EMAIL,
                recipient_list=[policy.owner.email],
            )
        TrustPolicy.objects.filter(pk=policy.pk).update(last_reminded_at=now)
        sent += 1
    return sent
