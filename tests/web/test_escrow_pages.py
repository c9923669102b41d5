"""Escrow pages: fund through the simulated card page, release now, the escrow panel,
the seller's payouts and the buyer's spending. Data made through the real services."""

from __future__ import annotations

import re

import pytest
from django.db import connection
from django.template.loader import render_to_string
from django.test import RequestFactory
from django.test.utils import CaptureQueriesContext

from escrow import selectors as escrow_selectors
from escrow import services as escrow_services
from escrow.models import Escrow, LedgerTransaction, PayoutAccount, Settlement
from marketplace.models import AgentListing, Engagement
from tests.escrow.conftest import agreed_engagement, evaluated_engagement, funded_engagement
from tests.factories import BuyerFactory, SellerFactory, TrustPolicyFactory, UserFactory
from tests.web.conftest import client_for
from web.escrow_views import escrow_panel_context
from web.templatetags.pactum import ledger_transactions

pytestmark = pytest.mark.django_db

SIMULATED_LABEL = "Simulated card payment — no real money moves (local payment gateway)"


def text(response) -> str:
    return response.content.decode()


def messages_of(response) -> list[str]:
    return [str(m) for m in response.context["messages"]]


# --- funding through the simulated card page ------------------------------------------------


def test_funding_goes_through_the_labelled_simulated_card_page_and_starts_the_job():
    engagement = agreed_engagement(price_minor=4200)
    client = client_for(engagement.buyer)

    response = client.post(f"/engagements/{engagement.pk}/fund/")

    escrow = Escrow.objects.get(engagement=engagement)
    assert response.status_code == 302
    assert response["Location"] == f"/checkout/simulated/{escrow.pk}/"
    assert escrow.status == Escrow.Status.AWAITING_FUNDS

    page = client.get(response["Location"])
    assert page.status_code == 200
    body = text(page)
    assert SIMULATED_LABEL in body
    assert "<title>Simulated card payment" in body
    assert "42.00 USD" in body
    assert f"#{engagement.pk}" in body
    assert engagement.listing.name in body
    assert "Pay 42.00 USD (simulated)" in body
    assert f'href="/engagements/{engagement.pk}/">Cancel</a>' in body

    paid = client.post(response["Location"], follow=True)

    assert paid.redirect_chain == [(f"/engagements/{engagement.pk}/", 302)]
    assert any("42.00 USD simulated: the money is held in escrow" in m for m in messages_of(paid))
    escrow.refresh_from_db()
    engagement.refresh_from_db()
    assert escrow.status == Escrow.Status.FUNDED
    assert escrow.charge_reference.startswith("ch_sim_")
    assert engagement.status == Engagement.Status.ACTIVE


def test_paying_twice_is_harmless():
    engagement = agreed_engagement()
    client = client_for(engagement.buyer)
    checkout = client.post(f"/engagements/{engagement.pk}/fund/")["Location"]
    client.post(checkout)

    again = client.post(checkout, follow=True)

    assert any("already paid" in m for m in messages_of(again))
    escrow = Escrow.objects.get(engagement=engagement)
    assert escrow.status == Escrow.Status.FUNDED
    assert LedgerTransaction.objects.filter(escrow=escrow).count() == 1
    # The page itself sends a paid escrow's buyer back too.
    assert client.get(checkout)["Location"] == f"/engagements/{engagement.pk}/"
    # And funding again is refused with a message, not a second checkout.
    refused = client.post(f"/engagements/{engagement.pk}/fund/", follow=True)
    assert any("already funded" in m for m in messages_of(refused))


def test_leaving_the_simulated_page_and_funding_again_returns_to_the_same_escrow():
    engagement = agreed_engagement()
    client = client_for(engagement.buyer)
    first = client.post(f"/engagements/{engagement.pk}/fund/")["Location"]

    second = client.post(f"/engagements/{engagement.pk}/fund/")["Location"]

    assert first == second
    assert Escrow.objects.filter(engagement=engagement).count() == 1


def test_the_simulated_page_is_for_the_escrows_buyer_only():
    engagement = agreed_engagement()
    checkout = client_for(engagement.buyer).post(f"/engagements/{engagement.pk}/fund/")["Location"]

    assert client_for(engagement.listing.seller).get(checkout).status_code == 404
    assert client_for(engagement.listing.seller).post(checkout).status_code == 404
    assert client_for(BuyerFactory.create()).post(checkout).status_code == 404
    assert client_for().get(checkout).status_code == 302  # to the login page
    assert client_for(engagement.buyer).get("/checkout/simulated/999999/").status_code == 404
    assert Escrow.objects.get(engagement=engagement).status == Escrow.Status.AWAITING_FUNDS


def test_the_simulated_page_does_not_exist_with_another_gateway(settings):
    engagement = agreed_engagement()
    client = client_for(engagement.buyer)
    checkout = client.post(f"/engagements/{engagement.pk}/fund/")["Location"]
    settings.PAYMENT_GATEWAY = "stripe"

    assert client.get(checkout).status_code == 404
    assert client.post(checkout).status_code == 404
    assert Escrow.objects.get(engagement=engagement).status == Escrow.Status.AWAITING_FUNDS


def test_the_seller_cannot_fund_and_outsiders_get_404():
    engagement = agreed_engagement()

    refused = client_for(engagement.listing.seller).post(f"/engagements/{engagement.pk}/fund/", follow=True)

    assert refused.status_code == 200
    assert any("Only the buyer funds the escrow" in m for m in messages_of(refused))
    assert client_for(BuyerFactory.create()).post(f"/engagements/{engagement.pk}/fund/").status_code == 404
    assert client_for(SellerFactory.create()).post(f"/engagements/{engagement.pk}/fund/").status_code == 404
    assert client_for(engagement.buyer).get(f"/engagements/{engagement.pk}/fund/").status_code == 405
    assert not Escrow.objects.filter(engagement=engagement).exists()


# --- release now ----------------------------------------------------------------------------------


def test_release_from_the_page_settles_once():
    engagement, escrow, _ = evaluated_engagement(good=True)
    buyer = client_for(engagement.buyer)

    released = buyer.post(f"/engagements/{engagement.pk}/release/", follow=True)
    again = buyer.post(f"/engagements/{engagement.pk}/release/", follow=True)

    assert any("45.00 USD goes to the seller" in m for m in messages_of(released))
    assert any("already been settled" in m for m in messages_of(again))
    settlement = Settlement.objects.get(escrow=escrow)
    assert (settlement.outcome, settlement.reason, settlement.seller_net_minor) == ("release", "buyer_released", 4500)
    escrow.refresh_from_db()
    assert escrow.status == Escrow.Status.SETTLED


def test_only_the_buyer_releases():
    engagement, escrow, _ = evaluated_engagement(good=True)

    refused = client_for(engagement.listing.seller).post(f"/engagements/{engagement.pk}/release/", follow=True)

    assert any("Only the buyer" in m for m in messages_of(refused))
    assert client_for(BuyerFactory.create()).post(f"/engagements/{engagement.pk}/release/").status_code == 404
    assert not Settlement.objects.filter(escrow=escrow).exists()


def test_release_before_the_evaluation_is_refused_with_a_message():
    engagement, escrow = funded_engagement()

    refused = client_for(engagement.buyer).post(f"/engagements/{engagement.pk}/release/", follow=True)

    assert refused.status_code == 200
    assert any("once the delivery has been evaluated" in m for m in messages_of(refused))
    assert not Settlement.objects.filter(escrow=escrow).exists()


# --- the escrow panel -------------------------------------------------------------------------------


def render_panel(engagement: Engagement, user) -> str:
    request = RequestFactory().get(f"/engagements/{engagement.pk}/")
    request.user = user
    return render_to_string("web/_escrow_panel.html", escrow_panel_context(engagement, user), request=request)


def test_the_panel_offers_the_buyer_of_an_agreed_engagement_to_fund():
    engagement = agreed_engagement(price_minor=4200)

    buyer_panel = render_panel(engagement, engagement.buyer)
    seller_panel = render_panel(engagement, engagement.listing.seller)

    assert 'id="escrow"' in buyer_panel
    assert f'action="/engagements/{engagement.pk}/fund/"' in buyer_panel
    assert ">Fund escrow</button>" in buyer_panel
    assert "Not funded yet" in seller_panel
    assert "42.00 USD" in seller_panel
    assert "/fund/" not in seller_panel


def test_the_panel_shows_the_timer_and_offers_the_buyer_to_release():
    engagement, escrow, _ = evaluated_engagement(good=True)
    due = escrow.timers.get(action="release").due_at

    buyer_panel = render_panel(engagement, engagement.buyer)
    seller_panel = render_panel(engagement, engagement.listing.seller)

    assert f'Releases to the seller</strong> on <time datetime="{due.isoformat()}">{due:%-d %b %H:%M} UTC' in (
        buyer_panel
    )
    assert "unless disputed" in buyer_panel
    assert f'action="/engagements/{engagement.pk}/release/"' in buyer_panel
    assert ">Release now</button>" in buyer_panel
    assert "/release/" not in seller_panel
    assert "Funded" in seller_panel
    assert "50.00 USD" in seller_panel


def test_the_panel_shows_the_settlement_history_and_balanced_ledger():
    engagement, escrow, _ = evaluated_engagement(good=True)
    escrow_services.escrow_release(engagement_id=engagement.pk, actor=engagement.buyer)
    engagement.refresh_from_db()

    panel = render_panel(engagement, engagement.buyer)

    assert "Settled</span>" in panel
    assert "Release to the seller" in panel
    assert "Released by the buyer" in panel
    seller_net = re.search(r"<dt>Seller net</dt><dd>([^<]+)</dd>", panel)
    fee = re.search(r"<dt>Platform fee</dt><dd>([^<]+)</dd>", panel)
    assert seller_net
    assert seller_net.group(1) == "45.00 USD"
    assert fee
    assert fee.group(1) == "5.00 USD"
    assert "Releases to the seller" not in panel  # the timer was cancelled by the settlement
    assert "Release now" not in panel
    assert "Fund escrow" not in panel
    for status in ("Awaiting funds", "Funded", "Settled"):
        assert f">{status}</span>" in panel
    # The ledger: every transaction's legs sum to zero, and the page says so.
    report = escrow_selectors.escrow_report(escrow_selectors.escrow_get(user=engagement.buyer, pk=escrow.pk))
    transactions = ledger_transactions(report["entries"])
    assert [t["kind"] for t in transactions] == ["funding", "settlement"]
    assert all(t["sum"] == 0 and len(t["legs"]) >= 2 for t in transactions)
    assert panel.count('<tr class="ledger-sum"><td>Sum of legs</td><td class="num">0.00 USD</td></tr>') == 2
    assert '<details class="ledger">' in panel


def test_staff_see_the_panel_without_actions():
    engagement, _, _ = evaluated_engagement(good=True)
    staff = UserFactory.create(role="", is_staff=True)

    context = escrow_panel_context(engagement, staff)

    assert context["escrow_panel"]["role"] == "staff"
    assert not context["escrow_panel"]["can_release"]
    assert "/release/" not in render_panel(engagement, staff)


def test_the_engagement_page_still_renders_the_panel_from_its_current_call():
    # The engagement page passes only the id until it is rewired: panel without actions.
    engagement, escrow, _ = evaluated_engagement(good=True)

    page = text(client_for(engagement.buyer).get(f"/engagements/{engagement.pk}/"))

    assert 'id="escrow"' in page
    assert "Releases to the seller" in page
    assert escrow_panel_context(engagement.pk)["escrow"]["id"] == escrow.pk


def test_the_panel_reads_the_escrow_in_a_fixed_number_of_queries(django_assert_num_queries):
    engagement, _, _ = evaluated_engagement(good=True)
    buyer, _ = engagement.buyer, engagement.listing  # loaded with the engagement, as on the page
    with CaptureQueriesContext(connection) as before:
        escrow_panel_context(engagement, buyer)
    escrow_services.escrow_release(engagement_id=engagement.pk, actor=buyer)

    with django_assert_num_queries(len(before)):  # more transactions, history rows and legs now
        escrow_panel_context(engagement, buyer)


# --- payouts (sellers) ------------------------------------------------------------------------------------


def settled_for(seller, *, count: int) -> list[Engagement]:
    """`count` funded engagements moved to `seller`'s listing, each settled in full to the seller."""
    listing = AgentListing.objects.filter(seller=seller).first()
    engagements = []
    for _ in range(count):
        engagement, escrow = funded_engagement()
        if listing is None:
            listing = engagement.listing
            AgentListing.objects.filter(pk=listing.pk).update(seller=seller)
        Engagement.objects.filter(pk=engagement.pk).update(listing=listing)
        escrow_services.escrow_settle_share(escrow_id=escrow.pk, seller_share_bps=10_000, reason="admin", actor=None)
        engagements.append(engagement)
    return engagements


def test_the_seller_sees_their_settlements_and_connects_a_payout_account():
    engagement, _, _ = evaluated_engagement(good=True)
    escrow_services.escrow_release(engagement_id=engagement.pk, actor=engagement.buyer)
    other_engagement, _, _ = evaluated_engagement(good=True)
    escrow_services.escrow_release(engagement_id=other_engagement.pk, actor=other_engagement.buyer)
    seller = client_for(engagement.listing.seller)

    page = text(seller.get("/seller/payouts/"))

    # The local gateway (the tests' default): payouts are simulated and always enabled.
    assert "Payouts are simulated" in page
    assert "Not connected" not in page
    assert "Connect payout account" not in page
    assert f'href="/engagements/{engagement.pk}/">#{engagement.pk}</a>' in page
    assert f"#{other_engagement.pk}<" not in page  # another seller's
    row = page[page.index(f">#{engagement.pk}</a>") :]
    row = row[: row.index("</tr>")]
    assert "Release to the seller" in row
    assert re.findall(r'class="num">(?:<strong>)?([\d.,]+ USD)', row) == ["50.00 USD", "5.00 USD", "45.00 USD"]
    assert "Pending" in row

    connected = seller.post("/seller/payouts/connect/", follow=True)

    assert connected.redirect_chain == [("/seller/payouts/", 302)]
    assert any("is connected" in m for m in messages_of(connected))
    account = PayoutAccount.objects.get(seller=engagement.listing.seller)
    assert account.payouts_enabled
    assert f"Payouts enabled (simulated)</span> <code>{account.provider_account}</code>" in text(connected)


def test_payouts_are_for_sellers():
    buyer = BuyerFactory.create()
    assert client_for(buyer).get("/seller/payouts/").status_code == 403
    refused = client_for(buyer).post("/seller/payouts/connect/", follow=True)
    assert any("Only sellers receive payouts" in m for m in messages_of(refused))
    assert not PayoutAccount.objects.exists()
    assert client_for().get("/seller/payouts/").status_code == 302  # to the login page


def test_the_payouts_page_runs_a_constant_number_of_queries(django_assert_num_queries):
    seller = SellerFactory.create()
    settled_for(seller, count=1)
    client = client_for(seller)
    with CaptureQueriesContext(connection) as one:
        assert text(client.get("/seller/payouts/")).count("Release to the seller") == 1

    settled_for(seller, count=9)

    with django_assert_num_queries(len(one)):
        page = text(client.get("/seller/payouts/"))
    assert page.count("Release to the seller") == 10
    assert "450.00 USD" in page  # ten nets of 45.00


# --- spending (buyers) --------------------------------------------------------------------------------------


def spent_by(buyer, *, funded: int, settled: int) -> None:
    for index in range(funded + settled):
        engagement, escrow = funded_engagement()
        Engagement.objects.filter(pk=engagement.pk).update(buyer=buyer)
        if index >= funded:
            escrow_services.escrow_settle_share(escrow_id=escrow.pk, seller_share_bps=6_000, reason="admin", actor=None)


def test_the_buyer_sees_their_escrows_and_totals():
    engagement, _, _ = evaluated_engagement(good=True)
    escrow_services.escrow_release(engagement_id=engagement.pk, actor=engagement.buyer)
    held, _ = funded_engagement()
    Engagement.objects.filter(pk=held.pk).update(buyer=engagement.buyer)
    unpaid = agreed_engagement()
    Engagement.objects.filter(pk=unpaid.pk).update(buyer=engagement.buyer)
    client_for(engagement.buyer).post(f"/engagements/{unpaid.pk}/fund/")  # left at the card page
    stranger, _ = funded_engagement()

    page = text(client_for(engagement.buyer).get("/spending/"))

    for mine in (engagement, held, unpaid):
        assert f'href="/engagements/{mine.pk}/">#{mine.pk}</a>' in page
        assert mine.listing.name in page
    assert f">#{stranger.pk}<" not in page
    totals = page[page.index('id="totals-heading"') : page.index('id="escrows-heading"')]
    # Paid in 100.00 (not the unpaid one), 50.00 still held, 50.00 released, nothing refunded.
    assert re.findall(r'class="num">(?:<strong>)?([\d.,]+ USD)', totals) == [
        "100.00 USD",
        "50.00 USD",
        "50.00 USD",
        "0.00 USD",
    ]
    assert "Awaiting funds" in page
    assert "Funded" in page
    assert "Settled" in page


def test_spending_is_for_buyers():
    assert client_for(SellerFactory.create()).get("/spending/").status_code == 403
    assert client_for().get("/spending/").status_code == 302  # to the login page


def test_the_spending_page_runs_a_constant_number_of_queries(django_assert_num_queries):
    buyer = BuyerFactory.create()
    spent_by(buyer, funded=0, settled=1)
    client = client_for(buyer)
    with CaptureQueriesContext(connection) as one:
        client.get("/spending/")

    spent_by(buyer, funded=4, settled=5)

    with django_assert_num_queries(len(one)):
        page = text(client.get("/spending/"))
    assert len(re.findall(r'href="/engagements/\d+/"', page)) == 10
    totals = page[page.index('id="totals-heading"') : page.index('id="escrows-heading"')]
    # Ten escrows of 50.00 paid in; four still held; six settled 60 % to the seller, 40 % back.
    assert re.findall(r'class="num">(?:<strong>)?([\d.,]+ USD)', totals) == [
        "500.00 USD",
        "200.00 USD",
        "180.00 USD",
        "120.00 USD",
    ]


def test_a_manual_release_policy_is_explained_on_the_escrow_panel():
    TrustPolicyFactory.create(name="Weak agents need manual release", action="require_manual_release")
    engagement, _escrow, _ = evaluated_engagement(good=True)
    page = text(client_for(engagement.buyer).get(f"/engagements/{engagement.pk}/"))
    assert "No automatic release" in page
    assert "Pactum staff decide" in page
    assert "if nothing is delivered" not in page
