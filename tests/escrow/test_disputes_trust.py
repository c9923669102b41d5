"""Dispute outcomes feed the agent's dispute rate (trust record): upheld and rejected
rulings count, withdrawn disputes do not, every settled task is in the denominator."""

from __future__ import annotations

import pytest

from escrow import disputes
from escrow import services as escrow_services
from marketplace import services as marketplace
from tests.factories import BuyerFactory, SellerFactory, UserFactory
from tests.trust.conftest import RESEARCH_CLAUSES, deliver
from tests.trust.test_pipeline import run_all
from trust import selectors as trust_selectors
from trust import services as trust_services

pytestmark = pytest.mark.django_db


def evaluated_job(listing, template):
    buyer = BuyerFactory.create()
    engagement = marketplace.engagement_create(buyer=buyer, listing=listing, template=template, task="Explain RE2.")
    marketplace.proposal_accept(engagement_id=engagement.pk, actor=listing.seller)
    escrow_services.escrow_fund(engagement_id=engagement.pk, actor=buyer)
    engagement.refresh_from_db()
    evaluation = run_all(trust_services.evaluation_start(deliverable_id=deliver(engagement).pk))
    escrow_services.escrow_decide(engagement_id=engagement.pk, outcome=evaluation.outcome)
    engagement.refresh_from_db()
    return engagement


def dispute_rate(listing) -> dict:
    return trust_selectors.trust_report(listing=listing)["disputes_per_100"]


def test_dispute_outcomes_change_the_agents_dispute_rate():
    seller = SellerFactory.create()
    staff = UserFactory.create(role="", is_staff=True)
    listing = marketplace.listing_create(seller=seller, name="Scout", price_minor=5000, currency="usd")
    template = marketplace.pact_publish(
        listing=listing,
        actor=seller,
        name="Pact",
        clauses=RESEARCH_CLAUSES,
        terms={"price_minor": 5000, "currency": "usd", "platform_fee_bps": 1000},
    ).template
    assert (dispute_rate(listing)["upheld"], dispute_rate(listing)["rejected"]) == (0, 0)

    def disputed_and_ruled(outcome: str, bps: int | None):
        engagement = evaluated_job(listing, template)
        dispute = disputes.dispute_open(engagement_id=engagement.pk, actor=engagement.buyer, reason="Not cited.")
        disputes.dispute_rule(
            dispute_id=dispute.pk, actor=staff, outcome=outcome, seller_share_bps=bps, rationale="Read the claims."
        )

    # The buyer wins: upheld.
    disputed_and_ruled("refund", 0)
    rate = dispute_rate(listing)
    assert (rate["upheld"], rate["rejected"], rate["settled_tasks"]) == (1, 0, 1)
    assert rate["rate"] == 100.0

    # The seller keeps everything: rejected.
    disputed_and_ruled("release", None)
    rate = dispute_rate(listing)
    assert (rate["upheld"], rate["rejected"], rate["settled_tasks"]) == (1, 1, 2)

    # A split that leaves the buyer something: upheld.
    disputed_and_ruled("split", 7000)
    # A job released without a dispute, and one whose dispute was withdrawn: tasks, not disputes.
    released = evaluated_job(listing, template)
    escrow_services.escrow_release(engagement_id=released.pk, actor=released.buyer)
    withdrawn = evaluated_job(listing, template)
    dispute = disputes.dispute_open(engagement_id=withdrawn.pk, actor=withdrawn.buyer, reason="Second thoughts.")
    disputes.dispute_withdraw(dispute_id=dispute.pk, actor=withdrawn.buyer)
    escrow_services.escrow_release(engagement_id=withdrawn.pk, actor=withdrawn.buyer)

    rate = dispute_rate(listing)
    assert (rate["upheld"], rate["rejected"], rate["settled_tasks"]) == (2, 1, 5)
    assert rate["rate"] == 60.0
    assert rate["lower"] < rate["rate"] < rate["upper"]
