"""The trust part of the demo: default policies, and agents whose records tell
the rest of the story (see the design notes):

- Beacon keeps its pacts and ranks above Atlas, whose benchmark claim is higher;
- Atlas slips on citations and latency and falls under an escalation (the
  policies below fire on its record as its jobs are judged);
- Sage failed its early jobs (finished months ago) and has kept its pacts
  since: its failures are old, so it is recovering;
- Nova is new: one judged job, unrated.

Sage's jobs run through the real pipeline and escrow like every other job (the
early ones refunded by their review-window timers, the recent ones released by
the buyer); only their evaluations' finish times are then moved back into the
past and the record rebuilt from the evaluation records, which is the one
shortcut the demo takes to have a history.
"""

from __future__ import annotations

import datetime

from django.db import transaction
from django.utils import timezone

from core.models import User
from marketplace.models import AgentListing, Engagement
from trust import metrics
from trust.models import Evaluation, TrustPolicy

HISTORY_DAYS = 150

DEFAULT_POLICIES = (
    {
        "name": "Unreliable agents need manual release",
        "description": "Money for jobs of an agent whose compliance lower bound is under 0.25 waits for the buyer.",
        "metric": TrustPolicy.Metric.COMPLIANCE_LOWER,
        "comparator": TrustPolicy.Comparator.LT,
        "threshold": 0.25,
        "action": TrustPolicy.Action.REQUIRE_MANUAL_RELEASE,
        "min_evidence": 5,
    },
    {
        "name": "Slipping agents give buyers longer to review",
        "description": "Buyers of an agent keeping under 70% of its pact get two more days before money moves.",
        "metric": TrustPolicy.Metric.COMPLIANCE_MEAN,
        "comparator": TrustPolicy.Comparator.LT,
        "threshold": 0.7,
        "action": TrustPolicy.Action.EXTEND_REVIEW_WINDOW,
        "extra_review_hours": 48,
        "min_evidence": 5,
    },
    {
        "name": "Often-disputed agents are flagged",
        "description": "An agent with 20 or more upheld disputes per 100 settled tasks carries a badge.",
        "metric": TrustPolicy.Metric.UPHELD_DISPUTES_PER_100,
        "comparator": TrustPolicy.Comparator.GTE,
        "threshold": 20,
        "action": TrustPolicy.Action.FLAG_LISTING,
        "min_evidence": 5,
    },
    {
        "name": "Agents failing most pacts are suspended",
        "description": "An agent keeping under 30% of its pacts over ten or more jobs is taken off the marketplace.",
        "metric": TrustPolicy.Metric.COMPLIANCE_MEAN,
        "comparator": TrustPolicy.Comparator.LT,
        "threshold": 0.3,
        "action": TrustPolicy.Action.SUSPEND_LISTING,
        "min_evidence": 10,
    },
)

SAGE_EARLY = (
    "What are the main sources of error in satellite rainfall estimates?",
    "How do vaccines for seasonal influenza get updated each year?",
    "What limits the accuracy of carbon dating?",
    "How do bond ratings agencies assess sovereign debt?",
)
SAGE_RECENT = (
    "What does research say about four-day work weeks and productivity?",
    "How do heat pumps perform in very cold climates?",
    "What are the known risks of lithium-ion battery storage at grid scale?",
    "How effective are bike lanes at reducing traffic injuries?",
    "What is known about microplastics in drinking water?",
)
NOVA_TASKS = ("What are the trade-offs of vector databases versus keyword search?",)


def seed_policies(*, owner: User) -> None:
    review = timezone.now() + datetime.timedelta(days=90)
    for spec in DEFAULT_POLICIES:
        TrustPolicy.objects.get_or_create(
            name=spec["name"], defaults={**spec, "owner": owner, "review_every_days": 90, "next_review_at": review}
        )


def _jobs(
    listing_name: str, agent: str, buyer_name: str, tasks: tuple[str, ...], *, release: bool = False
) -> list[Engagement]:
    from web.demo import run_demo_job

    listing = AgentListing.objects.get(name=listing_name)
    buyer = User.objects.get(username=buyer_name)
    done = []
    for task in tasks:
        engagement = Engagement.objects.filter(listing=listing, buyer=buyer, task=task).first()
        if engagement is None:
            engagement = run_demo_job(agent=agent, listing=listing, buyer=buyer, task=task, release=release)
        done.append(engagement)
    return done


def _finished_days_ago(engagements: list[Engagement], days: list[int], now: datetime.datetime) -> None:
    """Move these jobs' evaluations back to when the story says they finished (first run only)."""
    for engagement, ago in zip(engagements, days, strict=True):
        finished = now - datetime.timedelta(days=ago)
        Evaluation.objects.filter(engagement=engagement, finished_at__gt=finished).update(finished_at=finished)


def _settle_by_timer(engagements: list[Engagement]) -> None:
    """Old jobs' review windows are long over: fire their pending timers (refund or release)."""
    from escrow import services as escrow_services
    from escrow.models import EscrowTimer

    for timer in EscrowTimer.objects.filter(escrow__engagement__in=engagements, status=EscrowTimer.Status.PENDING):
        escrow_services.escrow_timer_fire(timer_id=timer.pk, now=timer.due_at)


def seed_trust_story() -> None:
    now = timezone.now()
    # Sage: four failing jobs four to five months ago (refunded), then five kept pacts
    # over the last month (released by the buyer).
    early = _jobs("Sage Research", "atlas", "grace", SAGE_EARLY)
    _settle_by_timer(early)
    recent = _jobs("Sage Research", "beacon", "ada", SAGE_RECENT, release=True)
    with transaction.atomic():
        _finished_days_ago(early, [140, 134, 128, 122], now)
        _finished_days_ago(recent, [30, 23, 16, 9, 3], now)
    _jobs("Nova Research", "beacon", "ada", NOVA_TASKS)
    # Rebuild every record from the evaluation records (Sage's early failures now
    # weigh what their age says; its escalations from the rough start resolved as it
    # recovered) and draw the history.
    now = timezone.now()
    metrics.trust_refresh_all(now=now)
    for listing_id in AgentListing.objects.filter(status=AgentListing.Status.PUBLISHED).values_list("pk", flat=True):
        metrics.trust_history_backfill(listing_id=listing_id, days=HISTORY_DAYS, now=now)
