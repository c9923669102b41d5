import pytest
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from escrow.models import Escrow, LedgerEntry, Settlement
from tests.escrow.conftest import agreed_engagement, evaluated_engagement, funded_engagement
from tests.factories import BuyerFactory, SellerFactory, UserFactory

pytestmark = pytest.mark.django_db


def client_for(user) -> APIClient:
    client = APIClient()
    if user is not None:
        client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.get_or_create(user=user)[0].key}")
    return client


def test_fund_with_the_local_gateway_funds_at_once():
    engagement = agreed_engagement(price_minor=4200)
    response = client_for(engagement.buyer).post(f"/api/v1/engagements/{engagement.pk}/fund/")
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["checkout_url"] is None
    escrow = body["escrow"]
    assert escrow["status"] == "funded"
    assert (escrow["amount_minor"], escrow["funded_minor"], escrow["held_minor"]) == (4200, 4200, 4200)
    assert escrow["settlement"] is None
    assert sum(e["amount_minor"] for e in escrow["entries"]) == 0
    detail = client_for(engagement.buyer).get(f"/api/v1/engagements/{engagement.pk}/").json()
    assert detail["status"] == "active"
    assert detail["escrow"] == {"id": escrow["id"], "status": "funded"}


def test_funding_twice_is_409_and_changes_nothing():
    engagement, _ = funded_engagement()
    before = LedgerEntry.objects.count()
    response = client_for(engagement.buyer).post(f"/api/v1/engagements/{engagement.pk}/fund/")
    assert response.status_code == 409
    assert response.json()["code"] == "already_funded"
    assert LedgerEntry.objects.count() == before


def test_release_over_the_api_and_the_escrow_representation():
    engagement, _escrow, _ = evaluated_engagement(good=True, price_minor=5000, fee_bps=1000)
    response = client_for(engagement.buyer).post(f"/api/v1/engagements/{engagement.pk}/release/")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["status"] == "settled"
    assert (body["released_minor"], body["refunded_minor"], body["fee_minor"], body["held_minor"]) == (5000, 0, 500, 0)
    assert body["settlement"]["outcome"] == "release"
    assert body["settlement"]["seller_net_minor"] == 4500
    by_txn: dict[str, int] = {}
    for entry in body["entries"]:
        by_txn[entry["transaction"]] = by_txn.get(entry["transaction"], 0) + entry["amount_minor"]
    assert by_txn
    assert all(total == 0 for total in by_txn.values())
    again = client_for(engagement.buyer).post(f"/api/v1/engagements/{engagement.pk}/release/")
    assert again.status_code == 409
    assert Settlement.objects.count() == 1


def test_release_before_evaluation_is_409():
    engagement, _ = funded_engagement()
    response = client_for(engagement.buyer).post(f"/api/v1/engagements/{engagement.pk}/release/")
    assert response.status_code == 409
    assert response.json()["code"] == "not_evaluated"
    assert not Settlement.objects.exists()


def test_non_parties_cannot_touch_the_money():
    engagement, escrow, _ = evaluated_engagement(good=True)
    outsiders = [BuyerFactory.create(), SellerFactory.create()]
    for outsider in outsiders:
        client = client_for(outsider)
        assert client.post(f"/api/v1/engagements/{engagement.pk}/fund/").status_code == 404
        assert client.post(f"/api/v1/engagements/{engagement.pk}/release/").status_code == 404
        assert client.get(f"/api/v1/escrows/{escrow.pk}/").status_code == 404
    assert client_for(None).get(f"/api/v1/escrows/{escrow.pk}/").status_code == 401
    # The seller may look but not release; staff may look.
    assert (
        client_for(engagement.listing.seller).post(f"/api/v1/engagements/{engagement.pk}/release/").status_code == 403
    )
    assert client_for(engagement.listing.seller).get(f"/api/v1/escrows/{escrow.pk}/").status_code == 200
    assert (
        client_for(UserFactory.create(role="", is_staff=True)).get(f"/api/v1/escrows/{escrow.pk}/").status_code == 200
    )
    assert not Settlement.objects.exists()
    assert Escrow.objects.get(pk=escrow.pk).status == "funded"


def test_payout_onboarding_and_listing_for_sellers():
    engagement, _escrow, _ = evaluated_engagement(good=True)
    seller = client_for(engagement.listing.seller)
    onboarded = seller.post("/api/v1/payouts/onboarding/")
    assert onboarded.status_code == 200
    assert onboarded.json()["payouts_enabled"] is True
    client_for(engagement.buyer).post(f"/api/v1/engagements/{engagement.pk}/release/")
    payouts = seller.get("/api/v1/payouts/").json()
    assert payouts["payouts_enabled"] is True
    assert [s["outcome"] for s in payouts["settlements"]] == ["release"]
    assert client_for(engagement.buyer).post("/api/v1/payouts/onboarding/").status_code == 403
    assert client_for(engagement.buyer).get("/api/v1/payouts/").status_code == 404
