"""Marketplace fixtures, built through the real services."""

from __future__ import annotations

import copy

import pytest

from marketplace import services
from tests.factories import BuyerFactory, SellerFactory, UserFactory

CLAUSES = [
    {"key": "cites", "kind": "citation_rate", "params": {"min_rate": 0.9}, "weight": 3, "severity": "major"},
    {"key": "fast", "kind": "max_latency_ms", "params": {"max_ms": 5000}, "weight": 1, "severity": "minor"},
    {
        "key": "no-payments",
        "kind": "scope",
        "params": {"allowed_actions": ["search", "read"], "forbidden_actions": ["payments"]},
        "weight": 2,
        "severity": "critical",
    },
    {
        "key": "quality",
        "kind": "rubric",
        "params": {"criteria": ["answers the question", "names its sources"], "min_score": 0.6},
        "weight": 2,
        "severity": "major",
    },
]
TERMS = {
    "price_minor": 5000,
    "currency": "usd",
    "settlement": "all_or_nothing",
    "review_window_hours": 72,
    "delivery_deadline_hours": 48,
    "platform_fee_bps": 1000,
}


def clauses() -> list[dict]:
    return copy.deepcopy(CLAUSES)


def terms(**overrides: object) -> dict:
    return {**TERMS, **overrides}


@pytest.fixture
def seller():
    return SellerFactory.create()


@pytest.fixture
def other_seller():
    return SellerFactory.create()


@pytest.fixture
def buyer():
    return BuyerFactory.create()


@pytest.fixture
def other_buyer():
    return BuyerFactory.create()


@pytest.fixture
def staff():
    return UserFactory.create(role="", is_staff=True, is_superuser=True)


@pytest.fixture
def listing(seller):
    return services.listing_create(
        seller=seller,
        name="Beacon Research",
        description="Careful research.",
        categories=["research"],
        price_minor=5000,
        currency="usd",
    )


@pytest.fixture
def pact(listing, seller):
    return services.pact_publish(listing=listing, actor=seller, name="Research pact", clauses=clauses(), terms=terms())


@pytest.fixture
def engagement(buyer, listing, pact):
    return services.engagement_create(buyer=buyer, listing=listing, template=pact.template, task="Summarise RE2.")


@pytest.fixture
def agreed(engagement, seller):
    return services.proposal_accept(engagement_id=engagement.pk, actor=seller)


@pytest.fixture
def active(agreed):
    return services.engagement_mark_active(engagement_id=agreed.pk)
