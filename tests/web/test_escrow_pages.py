import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from escrow import services as escrow_services
from escrow.models import Escrow, Settlement
from marketplace.models import Engagement
from tests.escrow.conftest import agreed_engagement, evaluated_engagement, funded_engagement
from tests.factories import BuyerFactory

pytestmark = pytest.mark.django_db


def as_user(client, user):
    client.force_login(user)
    return client


def test_the_buyer_funds_through_the_simulated_card_page(client):
    engagement = agreed_engagement(price_minor=4200)
    as_user(client, engagement.buyer)
    page = client.get(f"/engagements/{engagement.pk}/").content.decode()
    assert "Fund escrow: 42.00 USD" in page
    response = client.post(f"/engagements/{engagement.pk}/fund/")
    escrow = Escrow.objects.get(engagement=engagement)
    assert response.status_code == 302
    assert response["Location"] == f"/checkout/simulated/{escrow.pk}/"
    checkout = client.get(response["Location"]).content.decode()
    assert "Simulated card payment — no real money moves." in checkout
    assert "Pay 42.00 USD (simulated)" in checkout
    paid = client.post(response["Location"], follow=True)
    escrow.refresh_from_db()
    assert escrow.status == "funded"
    assert "money is held in escrow" in paid.content.decode()
    engagement.refresh_from_db()
    assert engagement.status == "active"
    # Paying again changes nothing.
    again = client.post(response["Location"], follow=True)
    assert "already paid" in again.content.decode()
    assert escrow.transactions.count() == 1


def test_the_seller_cannot_fund_and_outsiders_see_nothing(client):
    engagement = agreed_engagement()
    as_user(client, engagement.listing.seller)
    client.post(f"/engagements/{engagement.pk}/fund/", follow=True)
    assert not Escrow.objects.filter(status="funded").exists()
    as_user(client, BuyerFactory.create())
    assert client.post(f"/engagements/{engagement.pk}/fund/").status_code == 404


def test_the_buyer_releases_from_the_page_once(client):
    engagement, escrow, _ = evaluated_engagement(good=True)
    as_user(client, engagement.buyer)
    page = client.get(f"/engagements/{engagement.pk}/").content.decode()
    assert "Release 50.00 USD to the seller now" in page
    assert 'id="escrow"' in page
    assert "Releases to the seller" in page
    client.post(f"/engagements/{engagement.pk}/release/")
    second = client.post(f"/engagements/{engagement.pk}/release/", follow=True)
    assert "already been settled" in second.content.decode()
    assert Settlement.objects.filter(escrow=escrow).count() == 1


def test_the_seller_sees_payouts(client):
    engagement, _, _ = evaluated_engagement(good=True)
    as_user(client, engagement.buyer).post(f"/engagements/{engagement.pk}/release/")
    as_user(client, engagement.listing.seller)
    page = client.get("/seller/payouts/").content.decode()
    assert "Connect payout account" in page
    assert "45.00 USD" in page  # net after the 10% fee
    client.post("/seller/payouts/connect/")
    assert "connected" in client.get("/seller/payouts/").content.decode()
    as_user(client, engagement.buyer)
    assert client.get("/seller/payouts/").status_code == 404


def test_the_buyer_sees_spending_in_constant_queries(client, django_assert_num_queries):
    engagement, _, _ = evaluated_engagement(good=True)
    escrow_services.escrow_release(engagement_id=engagement.pk, actor=engagement.buyer)
    as_user(client, engagement.buyer)
    with CaptureQueriesContext(connection) as ctx:
        page = client.get("/spending/").content.decode()
    expected = len(ctx)
    assert "release: 50.00 USD to the seller" in page
    for _ in range(5):  # more escrows for the same buyer
        other, _escrow = funded_engagement()
        Engagement.objects.filter(pk=other.pk).update(buyer=engagement.buyer)
    with django_assert_num_queries(expected):
        assert "#" in client.get("/spending/").content.decode()
    assert client.get("/seller/payouts/").status_code == 404
