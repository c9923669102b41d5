"""Escrow fixtures: engagements funded, delivered and evaluated through the real services."""

from __future__ import annotations

from escrow import services as escrow_services
from marketplace import services as marketplace
from tests.factories import BuyerFactory, SellerFactory
from tests.trust.conftest import RESEARCH_CLAUSES, deliver
from tests.trust.test_pipeline import run_all
from trust import services as trust_services


def agreed_engagement(*, price_minor=5000, fee_bps=1000, settlement="all_or_nothing", clauses=None, review_hours=72):
    seller, buyer = SellerFactory.create(), BuyerFactory.create()
    listing = marketplace.listing_create(
        seller=seller, name=f"Agent {seller.username}", price_minor=price_minor, currency="usd"
    )
    terms = {
        "price_minor": price_minor,
        "currency": "usd",
        "platform_fee_bps": fee_bps,
        "settlement": settlement,
        "review_window_hours": review_hours,
    }
    version = marketplace.pact_publish(
        listing=listing, actor=seller, name="Pact", clauses=clauses or RESEARCH_CLAUSES, terms=terms
    )
    engagement = marketplace.engagement_create(
        buyer=buyer, listing=listing, template=version.template, task="Explain RE2."
    )
    return marketplace.proposal_accept(engagement_id=engagement.pk, actor=seller)


def funded_engagement(**kwargs):
    engagement = agreed_engagement(**kwargs)
    escrow, _ = escrow_services.escrow_fund(engagement_id=engagement.pk, actor=engagement.buyer)
    engagement.refresh_from_db()
    return engagement, escrow


def evaluated_engagement(*, good=True, **kwargs):
    """Funded, delivered and evaluated; the escrow decision applied as the signal would."""
    engagement, escrow = funded_engagement(**kwargs)
    deliverable = deliver(engagement, actions=("search", "read") if good else ("search", "payments"))
    evaluation = run_all(trust_services.evaluation_start(deliverable_id=deliverable.pk))
    escrow_services.escrow_decide(engagement_id=engagement.pk, outcome=evaluation.outcome)
    engagement.refresh_from_db()
    escrow.refresh_from_db()
    return engagement, escrow, evaluation
