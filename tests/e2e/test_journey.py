"""A buyer and a seller take one job from negotiation to payout in a real browser,
with a real Celery worker judging the delivery."""

import pytest
from playwright.sync_api import Page, expect

from escrow.models import Settlement
from tests.escrow.conftest import agreed_engagement
from tests.factories import TEST_PASSWORD
from tests.trust.conftest import GOOD_OUTPUT

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def log_in(page: Page, base: str, username: str) -> None:
    page.goto(f"{base}/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(TEST_PASSWORD)
    page.get_by_role("button", name="Log in").click()


def test_fund_deliver_evaluate_release(page: Page, live_server, celery_worker_process, browser):
    engagement = agreed_engagement(price_minor=5000)
    url = f"{live_server.url}/engagements/{engagement.pk}/"

    # The buyer funds escrow through the (clearly labelled) simulated card page.
    log_in(page, live_server.url, engagement.buyer.username)
    page.goto(url)
    page.get_by_role("button", name="Fund escrow").click()
    expect(page.get_by_text("Simulated card payment — no real money moves (local payment gateway)")).to_be_visible()
    page.get_by_role("button", name="Pay 50.00 USD (simulated)").click()
    expect(page.get_by_role("status")).to_contain_text("money is held in escrow")

    # The seller delivers from the engagement page, in a browser of their own.
    seller_page = browser.new_page()
    log_in(seller_page, live_server.url, engagement.listing.seller.username)
    seller_page.goto(url)
    seller_page.get_by_label("Output", exact=True).fill(GOOD_OUTPUT)
    seller_page.get_by_label("Citations").fill("https://arxiv.org/abs/1")
    seller_page.get_by_label("Actions").fill("search\nread")
    seller_page.get_by_label("Latency (ms)").fill("1200")
    seller_page.get_by_role("button", name="Submit delivery").click()
    expect(seller_page.locator("#deliverable")).to_be_visible()
    seller_page.close()

    # The buyer's page follows the judges live, then offers the release.
    expect(page.locator("#evaluation")).to_contain_text("passed", timeout=60_000)
    page.get_by_role("button", name="Release now").click()
    expect(page.locator("#escrow")).to_contain_text("Settled")
    settlement = Settlement.objects.get(escrow__engagement=engagement)
    assert (settlement.outcome, settlement.seller_net_minor, settlement.platform_fee_minor) == ("release", 4500, 500)
