"""`GET /api/v1/agents/{id}/trust/`, `GET /api/v1/leaderboard/` and the trust summary in the listing list."""

from __future__ import annotations

import datetime

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from marketplace import services as marketplace
from marketplace.models import AgentListing
from tests.factories import SellerFactory, UserFactory
from tests.trust.test_trust_record import T0, delivered_job, history, judged, make_listing
from trust import metrics, services
from trust.models import TrustPolicy, TrustRecord

pytestmark = pytest.mark.django_db


def rated_listing(outcomes, *, categories=("research",)):
    listing, template = make_listing(categories)
    history(listing, template, outcomes, start=T0, step_days=1)
    return listing


def test_agent_trust_has_the_contract_fields(api_client):
    listing = rated_listing([1.0] * 6 + [0.0])
    marketplace.benchmark_claim_create(
        listing=listing,
        actor=listing.seller,
        benchmark="GAIA",
        score=0.7,
        measured_on=datetime.date(2026, 10, 1),
        categories=["research"],
    )
    metrics.trust_refresh(listing_id=listing.pk)  # the nightly refresh: today's history point
    body = api_client.get(f"/api/v1/agents/{listing.pk}/trust/").json()
    assert body["agent"] == listing.pk
    assert set(body["compliance"]) == {"mean", "lower", "upper"}
    assert body["compliance"]["lower"] < body["compliance"]["mean"] < body["compliance"]["upper"]
    for key in ("confidence", "evidence_count", "last_verified_at", "freshness_seconds", "benchmark_fit", "history"):
        assert key in body
    assert body["evidence_count"] == 7
    assert body["rated"] is True
    assert set(body["disputes_per_100"]) >= {"rate", "lower", "upper", "upheld", "rejected"}
    assert body["freshness_seconds"] > 0
    [claim] = body["benchmark_fit"]
    assert claim["level"] in {"high", "medium", "low"}
    assert "measured on research tasks" in claim["reason"]
    assert body["history"][-1]["day"] == timezone.localdate().isoformat()
    assert body["history"][-1]["evidence_count"] == 7
    assert body["clauses"] == []  # these evaluation records carry no clause results
    assert "lower bound" in body["measured"]


def test_agent_trust_per_category_and_bad_categories(api_client):
    listing = rated_listing([1.0] * 5, categories=("research", "writing"))
    assert api_client.get(f"/api/v1/agents/{listing.pk}/trust/?category=research").json()["evidence_count"] == 5
    assert api_client.get(f"/api/v1/agents/{listing.pk}/trust/?category=writing").json()["evidence_count"] == 0
    response = api_client.get(f"/api/v1/agents/{listing.pk}/trust/?category=cooking")
    assert response.status_code == 400
    assert "research" in response.json()["detail"] or "category" in response.json()["errors"]
    response = api_client.get(f"/api/v1/agents/{listing.pk}/trust/?category=not%20a%20slug%00")
    assert response.status_code == 400
    assert "detail" in response.json()
    assert api_client.get("/api/v1/agents/999999/trust/").status_code == 404


def test_a_draft_listing_has_no_public_trust_page(api_client):
    seller = SellerFactory.create()
    draft = marketplace.listing_create(seller=seller, name="Hidden", price_minor=100, currency="usd", status="draft")
    assert api_client.get(f"/api/v1/agents/{draft.pk}/trust/").status_code == 404


def test_a_fresh_agent_is_unrated_with_the_prior(api_client):
    listing, _ = make_listing()
    body = api_client.get(f"/api/v1/agents/{listing.pk}/trust/").json()
    assert body["rated"] is False
    assert body["evidence_count"] == 0
    assert body["compliance"] == {"mean": 0.5, "lower": 0.025, "upper": 0.975}
    assert body["last_verified_at"] is None


def test_leaderboard_ranks_by_lower_bound_and_lists_unrated_last(api_client):
    steady = rated_listing([1.0] * 20)
    shaky = rated_listing([1.0] * 4 + [0.0] * 2)
    fresh = rated_listing([1.0] * 2)
    owner = UserFactory.create(is_staff=True)
    TrustPolicy.objects.create(
        name="Low compliance needs manual release",
        metric="compliance_lower",
        comparator="lt",
        threshold=0.3,
        action="require_manual_release",
        owner=owner,
        next_review_at=timezone.now(),
    )
    body = api_client.get("/api/v1/leaderboard/?category=research").json()
    assert body["category"] == "research"
    assert "lower bound" in body["measured"]
    assert "90 days" in body["window"]
    assert [p["name"] for p in body["policies"]] == ["Low compliance needs manual release"]
    rows = body["results"]
    assert [r["agent"]["id"] for r in rows] == [steady.pk, shaky.pk, fresh.pk]
    assert [r["rank"] for r in rows] == [1, 2, None]
    assert rows[2]["rated"] is False
    assert rows[0]["confidence"] > rows[1]["confidence"]
    assert rows[0]["evidence_count"] == 20


def test_leaderboard_refuses_a_bad_category(api_client):
    response = api_client.get("/api/v1/leaderboard/?category=" + "x" * 200)
    assert response.status_code == 400
    assert response.json()["detail"]


def _many_agents(n: int) -> None:
    """n published agents with trust records (test data written straight to the tables)."""
    now = timezone.now()
    for i in range(n):
        seller = SellerFactory.create()
        listing = marketplace.listing_create(
            seller=seller, name=f"Bulk {seller.username}", price_minor=100, currency="usd", categories=["research"]
        )
        for category in ("", "research"):
            record = TrustRecord(
                listing=listing, category=category, r=float(i % 7), s=1.0, evidence_count=i % 9, decayed_to=now
            )
            metrics.derive(record)
            record.save()


@pytest.mark.parametrize("path", ["/api/v1/leaderboard/?page_size=100", "/api/v1/agents/?page_size=100"])
def test_lists_run_a_constant_number_of_queries(api_client, path, django_assert_num_queries):
    _many_agents(1)
    with CaptureQueriesContext(connection) as one:
        assert api_client.get(path).json()["count"] == 1
    _many_agents(99)
    with django_assert_num_queries(len(one)):
        body = api_client.get(path).json()
    assert body["count"] == 100
    assert len(body["results"]) == 100


def test_listing_list_embeds_trust_and_sorts_by_it(api_client):
    weak = rated_listing([0.0] * 3 + [1.0] * 3)
    strong = rated_listing([1.0] * 8)
    body = api_client.get("/api/v1/agents/").json()
    ids = [row["id"] for row in body["results"]]
    assert ids.index(strong.pk) < ids.index(weak.pk)
    row = next(r for r in body["results"] if r["id"] == strong.pk)
    assert row["trust"]["evidence_count"] == 8
    assert row["trust"]["rated"] is True
    # Other orderings still work and still carry the summary.
    body = api_client.get("/api/v1/agents/?ordering=recent").json()
    assert body["results"][0]["id"] == strong.pk
    assert body["results"][0]["trust"]["compliance"]["mean"] > 0.5
    detail = api_client.get(f"/api/v1/agents/{strong.pk}/").json()
    assert detail["trust"]["evidence_count"] == 8


def test_dispute_outcomes_change_the_published_dispute_rate(api_client):
    listing, template = make_listing()
    engagement, deliverable = delivered_job(listing, template)
    metrics.trust_record_evaluation(
        evaluation=judged(engagement, deliverable, round=1, outcome="passed", compliance=1.0, at=T0), now=T0
    )
    services.trust_task_settled(engagement_id=engagement.pk)
    before = api_client.get(f"/api/v1/agents/{listing.pk}/trust/").json()["disputes_per_100"]
    assert before["rate"] == 0.0
    services.trust_dispute_ruled(engagement_id=engagement.pk, upheld=True)
    after = api_client.get(f"/api/v1/agents/{listing.pk}/trust/").json()["disputes_per_100"]
    assert after["rate"] == 100.0
    assert after["upheld"] == 1
    assert AgentListing.objects.filter(pk=listing.pk).exists()
