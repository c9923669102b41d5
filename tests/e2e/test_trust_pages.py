"""The leaderboard and an agent's trust page in a real browser: the ranking, the badges,
the drawn intervals and the score history plot render and carry their text."""

import datetime

import pytest
from django.utils import timezone
from playwright.sync_api import Page, expect

from tests.factories import SellerFactory, UserFactory
from tests.web.helpers import make_listing
from trust import metrics, policies
from trust.models import TrustHistoryPoint, TrustPolicy, TrustRecord
from web.templatetags.trust_widgets import interval_text

pytestmark = [pytest.mark.django_db(transaction=True)]


def _record(listing, *, kept: float, broken: float, jobs: int) -> TrustRecord:
    now = timezone.now()
    rec = TrustRecord(
        listing=listing,
        r=kept,
        s=broken,
        decayed_to=now,
        evidence_count=jobs,
        last_verified_at=now - datetime.timedelta(days=3, hours=1),
    )
    metrics.derive(rec)
    rec.save()
    return rec


def test_the_leaderboard_leads_to_a_trust_page_with_its_plot_and_badges(page: Page, live_server):
    owner = UserFactory.create(username="policy-owner", role="", is_staff=True)
    TrustPolicy.objects.create(
        name="Low compliance flag",
        metric="compliance_lower",
        comparator="lt",
        threshold=0.5,
        action="flag_listing",
        owner=owner,
        next_review_at=timezone.now() + datetime.timedelta(days=90),
    )
    beacon = make_listing(SellerFactory.create(username="beacon-labs"), name="Beacon", claim_score=84.0)
    rec = _record(beacon, kept=44.0, broken=6.0, jobs=50)
    today = timezone.localdate()
    for days_ago, mean in ((40, 0.7), (20, 0.8), (0, 0.86)):
        TrustHistoryPoint.objects.create(
            listing=beacon,
            day=today - datetime.timedelta(days=days_ago),
            compliance_mean=mean,
            compliance_lower=mean - 0.15,
            compliance_upper=min(mean + 0.1, 1.0),
            confidence=0.6,
            evidence_count=50,
        )
    atlas = make_listing(SellerFactory.create(username="atlas-labs"), name="Atlas", claim_score=91.0)
    _record(atlas, kept=3.0, broken=5.0, jobs=8)
    policies.policies_apply(listing_id=atlas.pk)
    make_listing(SellerFactory.create(username="fresh-labs"), name="Fresh")

    page.goto(live_server.url)
    page.get_by_role("link", name="Leaderboard").click()

    expect(page.get_by_role("heading", name="Leaderboard")).to_be_visible()
    rows = page.locator("table.leaderboard tbody tr")
    expect(rows).to_have_count(3)
    expect(rows.nth(0).locator("td.rank")).to_have_text("1")
    expect(rows.nth(0)).to_contain_text("Beacon")
    expect(rows.nth(1)).to_contain_text("Atlas")
    expect(rows.nth(1).get_by_text("Flagged")).to_be_visible()
    expect(rows.nth(2).locator("td.rank")).to_have_text("unrated")
    bar = rows.nth(0).locator("svg.interval-bar")
    expect(bar).to_be_visible()
    compliance = {"mean": rec.compliance_mean, "lower": rec.compliance_lower, "upper": rec.compliance_upper}
    expect(bar).to_have_attribute("aria-label", f"Beacon: {interval_text(compliance)}")
    bar_box = bar.bounding_box()
    assert bar_box is not None
    assert bar_box["width"] > 100

    page.get_by_role("link", name="Beacon").click()

    expect(page.get_by_role("heading", name="Trust record: Beacon")).to_be_visible()
    plot = page.get_by_role("img", name="Pact compliance history of Beacon")
    expect(plot).to_be_visible()
    box = plot.bounding_box()
    assert box is not None
    assert box["width"] > 400
    assert box["height"] > 100
    expect(plot.locator("circle.hp-dot")).to_have_count(3)
    expect(plot.locator("polygon.hp-band")).to_have_count(1)
    expect(page.get_by_text("verified 3 days ago").first).to_be_visible()
    expect(page.get_by_role("heading", name="Benchmarks vs production")).to_be_visible()
    expect(page.get_by_text("reported by the seller")).to_be_visible()

    page.get_by_role("navigation", name="Main").get_by_role("link", name="Agents").click()
    cards = page.locator(".listing-card")
    expect(cards.nth(0)).to_contain_text("Beacon")
    expect(cards.nth(1).get_by_text("Flagged")).to_be_visible()
    expect(cards.nth(2).get_by_text("Unrated")).to_be_visible()
    expect(cards.nth(2)).to_contain_text("0 of 5 judged jobs")
