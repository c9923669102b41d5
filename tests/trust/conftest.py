"""Trust fixtures: engagements delivered through the real marketplace services."""

from __future__ import annotations

import pytest

from marketplace import services as marketplace
from tests.factories import BuyerFactory, SellerFactory

RESEARCH_CLAUSES = [
    {"key": "cites", "kind": "citation_rate", "params": {"min_rate": 0.6}, "weight": 3, "severity": "major"},
    {"key": "fast", "kind": "max_latency_ms", "params": {"max_ms": 5000}, "weight": 1, "severity": "minor"},
    {
        "key": "scope",
        "kind": "scope",
        "params": {"allowed_actions": ["search", "read"], "forbidden_actions": ["payments"]},
        "weight": 2,
        "severity": "critical",
    },
    {
        "key": "quality",
        "kind": "rubric",
        "params": {"criteria": ["answers the question asked", "names the sources it relies on"], "min_score": 0.5},
        "weight": 2,
        "severity": "major",
    },
]
TERMS = {"price_minor": 5000, "currency": "usd"}
TASK = "What are the failure modes of regular expression engines on adversarial input?"
GOOD_OUTPUT = """Backtracking regular expression engines can take exponential time on adversarial input [1].

- Nested quantifiers such as (a+)+ are the classic failure mode of these engines (Cox, 2007).
- Engines like RE2 avoid the problem by simulating automata in linear time https://github.com/google/re2 ."""


def active_engagement(*, clauses=None, task=TASK):
    seller, buyer = SellerFactory.create(), BuyerFactory.create()
    listing = marketplace.listing_create(
        seller=seller, name=f"Agent {seller.username}", price_minor=5000, currency="usd"
    )
    version = marketplace.pact_publish(
        listing=listing, actor=seller, name="Pact", clauses=clauses or RESEARCH_CLAUSES, terms=TERMS
    )
    engagement = marketplace.engagement_create(buyer=buyer, listing=listing, template=version.template, task=task)
    marketplace.proposal_accept(engagement_id=engagement.pk, actor=seller)
    return marketplace.engagement_mark_active(engagement_id=engagement.pk)


def deliver(
    engagement,
    *,
    output=GOOD_OUTPUT,
    actions=("search", "read"),
    latency_ms=1200,
    citations=("https://arxiv.org/abs/1",),
):
    return marketplace.deliverable_submit(
        engagement_id=engagement.pk,
        actor=engagement.listing.seller,
        output=output,
        citations=list(citations),
        actions=list(actions),
        latency_ms=latency_ms,
    )


@pytest.fixture
def engagement():
    return active_engagement()
