"""In a real browser, a rejected dispute form lands on the dispute panel's error summary."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.test_journey import log_in
from tests.escrow.conftest import evaluated_engagement

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def test_a_blank_reason_lands_on_the_error(page: Page, live_server):
    engagement, _, _ = evaluated_engagement(good=True)
    page.set_viewport_size({"width": 400, "height": 800})
    log_in(page, live_server.url, engagement.buyer.username)
    page.goto(f"{live_server.url}/engagements/{engagement.pk}/")
    page.get_by_text("Dispute this outcome").click()
    page.get_by_role("button", name="Open dispute").click()

    assert page.url.endswith(f"/engagements/{engagement.pk}/disputes/#dispute")
    summary = page.locator("#dispute-errors")
    expect(summary).to_contain_text("Reason: This field is required.")
    expect(summary).to_be_in_viewport()
