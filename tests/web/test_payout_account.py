"""The payouts page states the payout account as it is: simulated and always enabled with the
local gateway, the real connection state with Stripe."""

from __future__ import annotations

import pytest

from escrow.models import PayoutAccount
from tests.factories import SellerFactory
from tests.web.conftest import client_for

pytestmark = pytest.mark.django_db


def page(seller) -> str:
    response = client_for(seller).get("/seller/payouts/")
    assert response.status_code == 200
    return response.content.decode()


def test_with_the_local_gateway_payouts_are_simulated_and_always_enabled(settings):
    settings.PAYMENT_GATEWAY = "local"
    body = page(SellerFactory.create())
    assert "Payouts enabled (simulated)" in body
    assert "Payouts are simulated" in body
    assert "Not connected" not in body
    assert "Connect payout account" not in body


def test_with_stripe_the_page_shows_the_real_connection_state(settings):
    settings.PAYMENT_GATEWAY = "stripe"
    seller = SellerFactory.create()
    body = page(seller)
    assert "Not connected" in body
    assert "Connect payout account" in body
    assert "simulated" not in body

    PayoutAccount.objects.create(seller=seller, gateway="stripe", provider_account="acct_123", payouts_enabled=False)
    body = page(seller)
    assert "Not enabled yet</span> <code>acct_123</code>" in body
    assert "Continue payout onboarding" in body

    PayoutAccount.objects.filter(seller=seller).update(payouts_enabled=True)
    body = page(seller)
    assert "Connected</span> <code>acct_123</code>" in body
    assert "Connect payout account" not in body
