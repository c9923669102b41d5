"""Page-test fixtures: users from the factories, everything else built through
the real marketplace services."""

from __future__ import annotations

import pytest
from django.test import Client

from marketplace import services
from tests.factories import BuyerFactory, SellerFactory, UserFactory
from tests.web.helpers import make_listing, pact_clauses, pact_terms


@pytest.fixture
def seller():
    return SellerFactory.create(username="beacon-labs")


@pytest.fixture
def other_seller():
    return SellerFactory.create(username="atlas-labs")


@pytest.fixture
def buyer():
    return BuyerFactory.create(username="ada")


@pytest.fixture
def other_buyer():
    return BuyerFactory.create(username="grace")


@pytest.fixture
def staff():
    return UserFactory.create(username="root", role="", is_staff=True, is_superuser=True)


@pytest.fixture
def listing(seller):
    return make_listing(seller, name="Beacon Research", categories=["research", "summaries"], price_minor=4950)


@pytest.fixture
def pact(listing, seller):
    return services.pact_publish(
        listing=listing, actor=seller, name="Research pact", clauses=pact_clauses(), terms=pact_terms()
    )


@pytest.fixture
def engagement(buyer, listing, pact):
    return services.engagement_create(
        buyer=buyer, listing=listing, template=pact.template, task="Summarise the RE2 paper."
    )


@pytest.fixture
def agreed(engagement, seller):
    return services.proposal_accept(engagement_id=engagement.pk, actor=seller)


@pytest.fixture
def active(agreed):
    return services.engagement_mark_active(engagement_id=agreed.pk)


def client_for(user=None) -> Client:
    client = Client()
    if user is not None:
        client.force_login(user)
    return client


@pytest.fixture
def as_user():
    return client_for
