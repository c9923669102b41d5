"""Trust policies: crossing a threshold writes an escalation and changes what the platform does."""

from __future__ import annotations

import datetime

import pytest
from django.core import mail
from django.db import IntegrityError, transaction
from django.forms import modelform_factory
from django.test.utils import override_settings
from django.utils import timezone

from core.errors import Conflict, NotAllowed, ValidationFailed
from core.models import EvidenceRecord
from escrow.models import EscrowTimer
from marketplace import selectors as marketplace_selectors
from marketplace import services as marketplace
from marketplace.models import AgentListing
from tests.escrow.conftest import evaluated_engagement
from tests.factories import BuyerFactory, TrustPolicyFactory, UserFactory
from tests.trust.test_trust_record import T0, delivered_job, history, judged, make_listing
from trust import metrics, policies, selectors, services
from trust.models import EscalationEvent, TrustPolicy

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff():
    return UserFactory.create(is_staff=True, email="trust-owner@pactum.invalid")


def policy(staff, *, action, metric="compliance_lower", comparator="lt", threshold=0.99, min_evidence=1, **extra):
    return TrustPolicyFactory.create(
        name=f"{action} {metric} {comparator} {threshold}",
        metric=metric,
        comparator=comparator,
        threshold=threshold,
        action=action,
        min_evidence=min_evidence,
        owner=staff,
        **extra,
    )


# --- a policy must act ------------------------------------------------------------------------------


def test_a_policy_without_an_action_cannot_be_saved(staff):
    with pytest.raises(IntegrityError), transaction.atomic():
        TrustPolicy.objects.create(
            name="decoration",
            metric="compliance_lower",
            comparator="lt",
            threshold=0.5,
            action="",
            owner=staff,
            next_review_at=timezone.now(),
        )
    form_class = modelform_factory(
        TrustPolicy,
        fields=["name", "metric", "comparator", "threshold", "action", "owner", "review_every_days", "next_review_at"],
    )
    form = form_class(
        data={
            "name": "decoration",
            "metric": "compliance_lower",
            "comparator": "lt",
            "threshold": "0.5",
            "action": "",
            "owner": staff.pk,
            "review_every_days": "90",
            "next_review_at": "2026-12-01 00:00",
        }
    )
    assert not form.is_valid()
    assert "action" in form.errors
    assert not TrustPolicy.objects.exists()


def test_extending_the_review_window_needs_the_hours(staff):
    with pytest.raises(IntegrityError), transaction.atomic():
        policy(staff, action="extend_review_window", extra_review_hours=0)


# --- each action changes behaviour ----------------------------------------------------------------


def test_without_a_policy_a_passed_job_is_released_automatically():
    _engagement, escrow, evaluation = evaluated_engagement(good=True)
    assert evaluation.outcome == "passed"
    assert escrow.manual_release_required is False
    assert EscrowTimer.objects.filter(escrow=escrow, action="release", status="pending").exists()


def test_require_manual_release_stops_the_auto_release(staff):
    rule = policy(staff, action="require_manual_release")
    engagement, escrow, evaluation = evaluated_engagement(good=True)
    assert evaluation.outcome == "passed"
    event = EscalationEvent.objects.get(listing=engagement.listing)
    assert (event.policy, event.status, event.action) == (rule, "open", "require_manual_release")
    assert event.metric_value < 0.99
    assert escrow.manual_release_required is True
    assert not EscrowTimer.objects.filter(escrow=escrow, action="release").exists()
    assert EvidenceRecord.objects.filter(kind="trust.escalation", subject=f"listing:{engagement.listing_id}").exists()
    assert escrow.status_changes.filter(reason__startswith="no auto-release: trust policy").exists()


def test_extend_review_window_moves_the_release_later(staff):
    policy(staff, action="extend_review_window", extra_review_hours=48)
    before = timezone.now()
    _engagement, escrow, _ = evaluated_engagement(good=True, review_hours=72)
    timer = EscrowTimer.objects.get(escrow=escrow, action="release")
    assert timer.due_at >= before + datetime.timedelta(hours=72 + 48)
    assert timer.due_at <= timezone.now() + datetime.timedelta(hours=72 + 48)


def test_suspend_listing_hides_it_and_refuses_new_engagements(staff, api_client):
    policy(staff, action="suspend_listing")
    engagement, _, _ = evaluated_engagement(good=False)
    listing = AgentListing.objects.get(pk=engagement.listing_id)
    assert listing.status == "suspended"
    assert listing not in marketplace_selectors.listing_list()
    assert api_client.get(f"/api/v1/agents/?q={listing.name}").json()["count"] == 0
    with pytest.raises(Conflict):
        marketplace.engagement_create(
            buyer=BuyerFactory.create(), listing=listing, template=engagement.template, task="another job"
        )
    # Staff resolve the escalation: the listing is back.
    event = EscalationEvent.objects.get(listing=listing)
    services.escalation_resolve(event_id=event.pk, actor=staff, note="Seller fixed the agent; reviewed its logs.")
    listing.refresh_from_db()
    assert listing.status == "published"
    assert EvidenceRecord.objects.filter(kind="trust.escalation_resolved").exists()


def test_flag_listing_shows_in_the_trust_summary(staff):
    rule = policy(staff, action="flag_listing")
    engagement, _, _ = evaluated_engagement(good=True)
    summary = selectors.trust_summaries(listing_ids=[engagement.listing_id])[engagement.listing_id]
    assert summary["flagged"] is True
    assert [c["policy"] for c in summary["consequences"]] == [rule.name]


def test_a_policy_waits_for_enough_evidence(staff):
    policy(staff, action="flag_listing", min_evidence=3)
    engagement, _, _ = evaluated_engagement(good=True)
    assert not EscalationEvent.objects.exists()
    assert selectors.trust_summaries(listing_ids=[engagement.listing_id])[engagement.listing_id]["flagged"] is False


def test_an_open_escalation_is_not_repeated_and_fires_again_on_new_evidence(staff):
    policy(staff, action="flag_listing")
    engagement, _, _ = evaluated_engagement(good=True)
    assert policies.policies_apply(listing_id=engagement.listing_id) == []
    event = EscalationEvent.objects.get()
    services.escalation_resolve(event_id=event.pk, actor=staff, note="Looked at it.")
    with pytest.raises(Conflict):
        services.escalation_resolve(event_id=event.pk, actor=staff, note="Again.")
    assert policies.policies_apply(listing_id=engagement.listing_id) == []  # the override holds
    second, deliverable = delivered_job(engagement.listing, engagement.template)
    at = timezone.now()
    metrics.trust_record_evaluation(
        evaluation=judged(second, deliverable, round=1, outcome="passed", compliance=1.0, at=at), now=at
    )
    assert EscalationEvent.objects.filter(status="open").count() == 1


def test_only_staff_resolve_and_with_a_reason(staff):
    policy(staff, action="flag_listing")
    engagement, _, _ = evaluated_engagement(good=True)
    event = EscalationEvent.objects.get()
    with pytest.raises(NotAllowed):
        services.escalation_resolve(event_id=event.pk, actor=engagement.buyer, note="mine")
    with pytest.raises(ValidationFailed):
        services.escalation_resolve(event_id=event.pk, actor=staff, note="  ")
    event.refresh_from_db()
    assert event.status == "open"


def test_a_dispute_rate_policy_counts_settled_tasks(staff):
    policy(staff, action="flag_listing", metric="disputes_per_100", comparator="gte", threshold=50, min_evidence=2)
    engagement, _, _ = evaluated_engagement(good=True)
    services.trust_task_settled(engagement_id=engagement.pk)
    services.trust_dispute_ruled(engagement_id=engagement.pk, upheld=True)
    assert not EscalationEvent.objects.exists()  # one settled task: below the policy's minimum
    second, _ = delivered_job(engagement.listing, engagement.template)
    services.trust_task_settled(engagement_id=second.pk)
    event = EscalationEvent.objects.get()
    assert event.listing_id == engagement.listing_id
    assert event.metric_value == 50.0


# --- review cadence ---------------------------------------------------------------------------------


@override_settings(EMAIL_BACKEND="django.core.mail.backends.locmem.EmailBackend")
def test_owners_are_reminded_once_of_policies_due_for_review(staff):
    rule = policy(staff, action="flag_listing")
    rule.next_review_at = timezone.now() - datetime.timedelta(days=1)
    rule.save()
    assert policies.policy_review_reminders() == 1
    assert policies.policy_review_reminders() == 0  # once
    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == ["trust-owner@pactum.invalid"]
    assert rule.name in mail.outbox[0].subject
    reviewed = services.policy_mark_reviewed(policy_id=rule.pk, actor=staff)
    assert reviewed.next_review_at > timezone.now() + datetime.timedelta(days=89)
    assert policies.policy_review_reminders() == 0


def test_an_escalation_resolves_itself_when_the_agent_recovers(staff):
    rule = policy(staff, action="require_manual_release", threshold=0.4, min_evidence=3)
    listing, template = make_listing()
    history(listing, template, [0.0, 0.0, 0.0], start=T0, step_days=1)
    event = EscalationEvent.objects.get(listing=listing, policy=rule)
    assert event.status == "open"
    assert selectors.listing_consequences(listing_id=listing.pk).manual_release is True
    history(listing, template, [1.0] * 12, start=T0 + datetime.timedelta(days=3), step_days=1)
    event.refresh_from_db()
    assert event.status == "resolved"
    assert event.resolved_by is None
    assert event.resolution_note.startswith("recovered:")
    assert selectors.listing_consequences(listing_id=listing.pk).manual_release is False


def test_a_suspension_waits_for_staff_even_after_recovery(staff):
    policy(staff, action="suspend_listing", threshold=0.4, min_evidence=3)
    listing, template = make_listing()
    opened_before = [delivered_job(listing, template) for _ in range(12)]
    history(listing, template, [0.0, 0.0, 0.0], start=T0, step_days=1)
    listing.refresh_from_db()
    assert listing.status == "suspended"
    # Jobs opened before the suspension still finish; their evidence does not lift it.
    at = T0 + datetime.timedelta(days=5)
    for engagement, deliverable in opened_before:
        evaluation = judged(engagement, deliverable, round=1, outcome="passed", compliance=1.0, at=at)
        metrics.trust_record_evaluation(evaluation=evaluation, now=at)
    assert metrics.trust_recompute(listing_id=listing.pk, now=at)[""].evidence_count == 15
    assert EscalationEvent.objects.get(listing=listing).status == "open"
    listing.refresh_from_db()
    assert listing.status == "suspended"


def test_a_staff_override_holds_until_new_evidence(staff, api_client):
    policy(staff, action="suspend_listing", threshold=0.4, min_evidence=3)
    listing, template = make_listing()
    waiting = delivered_job(listing, template)  # opened before the suspension
    history(listing, template, [0.0, 0.0, 0.0], start=T0, step_days=1)
    event = EscalationEvent.objects.get(listing=listing)
    services.escalation_resolve(event_id=event.pk, actor=staff, note="Seller shipped a fix; give it a chance.")
    event.refresh_from_db()
    assert event.evidence_at_override == 3
    listing.refresh_from_db()
    assert listing.status == "published"
    # The nightly refresh and settlements do not undo the override.
    metrics.trust_refresh(listing_id=listing.pk)
    services.trust_task_settled(engagement_id=waiting[0].pk)
    listing.refresh_from_db()
    assert listing.status == "published"
    assert not EscalationEvent.objects.filter(listing=listing, status="open").exists()
    report = api_client.get(f"/api/v1/agents/{listing.pk}/trust/").json()
    assert [p["state"] for p in report["policies"]] == ["overridden"]
    # New evidence that still misses the pact: the policy fires again.
    at = T0 + datetime.timedelta(days=10)
    metrics.trust_record_evaluation(
        evaluation=judged(*waiting, round=1, outcome="failed", compliance=0.0, at=at), now=at
    )
    listing.refresh_from_db()
    assert listing.status == "suspended"
    assert EscalationEvent.objects.filter(listing=listing, status="open").count() == 1


def test_resolving_a_recovered_agent_is_no_override(staff):
    rule = policy(staff, action="flag_listing", threshold=0.4, min_evidence=3)
    listing, template = make_listing()
    history(listing, template, [0.0, 0.0, 0.0], start=T0, step_days=1)
    event = EscalationEvent.objects.get(listing=listing, policy=rule)
    # Recovery and a staff resolution race for the same event: exactly one closes it.
    assert policies._close(event, actor=None, note="recovered: test") is True
    assert policies._close(event, actor=staff, note="late") is False
    event.refresh_from_db()
    assert (event.resolved_by, event.resolution_note, event.evidence_at_override) == (None, "recovered: test", None)
    assert EvidenceRecord.objects.filter(kind="trust.escalation_resolved").count() == 1
