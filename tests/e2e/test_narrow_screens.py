"""At 400 px, the trust page and the leaderboard do not overflow the screen: their wide tables
scroll inside their cards with a visible hint, and the plot's axis labels stay legible."""

from __future__ import annotations

import datetime

import pytest
from django.utils import timezone
from playwright.sync_api import Page, expect

from tests.factories import SellerFactory
from tests.trust.conftest import active_engagement, deliver
from tests.trust.test_pipeline import run_all
from tests.web.helpers import make_listing
from trust import metrics
from trust import services as trust_services
from trust.models import TrustHistoryPoint, TrustRecord

pytestmark = [pytest.mark.django_db(transaction=True)]


def page_width(page: Page) -> int:
    return page.evaluate("document.documentElement.scrollWidth")


def test_the_trust_page_and_the_leaderboard_fit_a_narrow_screen(page: Page, live_server):
    engagement = active_engagement()
    run_all(trust_services.evaluation_start(deliverable_id=deliver(engagement).pk))
    listing = engagement.listing
    today = timezone.localdate()
    for days_ago in range(30):
        TrustHistoryPoint.objects.update_or_create(
            listing=listing,
            day=today - datetime.timedelta(days=days_ago),
            defaults={
                "compliance_mean": 0.8,
                "compliance_lower": 0.7,
                "compliance_upper": 0.9,
                "confidence": 0.5,
                "evidence_count": 1,
            },
        )
    rated = make_listing(SellerFactory.create(), name="Rated")
    rec = TrustRecord(listing=rated, r=40.0, s=4.0, decayed_to=timezone.now(), evidence_count=12)
    metrics.derive(rec)
    rec.save()
    page.set_viewport_size({"width": 400, "height": 800})

    page.goto(f"{live_server.url}/agents/{listing.slug}/trust/")
    assert page_width(page) <= 400
    clauses = page.locator("section[aria-labelledby=clauses-heading]")
    expect(clauses.locator(".scroll-hint")).to_be_visible()
    scroller = clauses.locator(".table-wrap")
    assert scroller.evaluate("el => el.scrollWidth > el.clientWidth")
    # Axis labels: at least 10 px on screen, and the minor ticks are hidden.
    label_px = page.locator(".history-plot .hp-label:not(.hp-minor)").first.evaluate(
        "el => el.getBoundingClientRect().height"
    )
    assert label_px >= 10
    expect(page.locator(".history-plot .hp-minor").first).to_be_hidden()

    page.goto(f"{live_server.url}/leaderboard/")
    assert page_width(page) <= 400
    expect(page.locator(".leaderboard-card .scroll-hint")).to_be_visible()
    assert page.locator(".leaderboard-card .table-wrap").evaluate("el => el.scrollWidth > el.clientWidth")

    # On a desktop screen the hint is not needed.
    page.set_viewport_size({"width": 1280, "height": 800})
    expect(page.locator(".leaderboard-card .scroll-hint")).to_be_hidden()
