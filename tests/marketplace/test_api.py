import datetime

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from core.models import EvidenceRecord
from marketplace import services
from marketplace.models import (
    AgentListing,
    Deliverable,
    Engagement,
    PactTemplate,
    PactVersion,
    Proposal,
)
from marketplace.signals import deliverable_submitted
from tests.factories import SellerFactory
from tests.marketplace.conftest import clauses, terms

pytestmark = pytest.mark.django_db


def client_for(user=None) -> APIClient:
    client = APIClient()
    if user is not None:
        token, _ = Token.objects.get_or_create(user=user)
        client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    return client


LISTING_BODY = {
    "name": "Quill",
    "description": "Writes.",
    "categories": ["Writing"],
    "price_minor": 2500,
    "currency": "USD",
}


# --- listings ------------------------------------------------------------------------------


def test_a_seller_creates_a_listing_and_sees_its_endpoint_secret(seller):
    response = client_for(seller).post(
        "/api/v1/agents/", {**LISTING_BODY, "endpoint_url": "https://agent.example.com/run"}, format="json"
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["slug"] == "quill"
    assert body["currency"] == "usd"
    assert body["categories"] == ["writing"]
    assert body["status"] == "published"
    assert body["seller"] == seller.username
    assert len(body["endpoint_secret"]) == 64
    public = client_for().get(f"/api/v1/agents/{body['id']}/").json()
    assert "endpoint_secret" not in public
    assert "endpoint_url" not in public
    assert public["has_endpoint"] is True


def test_listing_list_filters_searches_and_orders(seller):
    cheap = services.listing_create(
        seller=seller, name="Cheap", categories=["research"], price_minor=100, currency="usd"
    )
    dear = services.listing_create(seller=seller, name="Dear", categories=["writing"], price_minor=9000, currency="usd")
    services.listing_create(seller=seller, name="Hidden", price_minor=100, currency="usd", status="draft")
    anon = client_for()
    names = lambda r: [row["name"] for row in r.json()["results"]]  # noqa: E731
    assert names(anon.get("/api/v1/agents/?ordering=price")) == ["Cheap", "Dear"]
    assert names(anon.get("/api/v1/agents/?ordering=-price")) == ["Dear", "Cheap"]
    assert names(anon.get("/api/v1/agents/?category=writing")) == ["Dear"]
    assert names(anon.get("/api/v1/agents/?q=chea")) == ["Cheap"]
    page = anon.get("/api/v1/agents/?page_size=1&ordering=price").json()
    assert page["count"] == 2
    assert [r["id"] for r in page["results"]] == [cheap.pk]
    assert page["next"]
    assert dear.pk in [r["id"] for r in anon.get("/api/v1/agents/").json()["results"]]


@pytest.mark.parametrize("query", ["ordering=cheapest", "page=99", "q=" + "x" * 201])
def test_listing_list_bad_queries_are_4xx(query, listing):
    response = client_for().get(f"/api/v1/agents/?{query}")
    assert response.status_code in (400, 404)
    assert response.json()["detail"]


def _make_listings(n: int) -> None:
    for _ in range(n):
        owner = SellerFactory.create()
        listing = services.listing_create(seller=owner, name=f"Agent {owner.username}", price_minor=100, currency="usd")
        services.benchmark_claim_create(
            listing=listing, actor=owner, benchmark="GAIA", score=0.5, measured_on=datetime.date(2026, 1, 1)
        )


def test_listing_list_runs_a_constant_number_of_queries(django_assert_num_queries):
    _make_listings(1)
    with CaptureQueriesContext(connection) as one:
        assert client_for().get("/api/v1/agents/?page_size=100").json()["count"] == 1
    _make_listings(49)
    with django_assert_num_queries(len(one)):
        assert client_for().get("/api/v1/agents/?page_size=100").json()["count"] == 50


def test_engagement_list_runs_a_constant_number_of_queries(buyer, listing, pact, django_assert_num_queries):
    services.engagement_create(buyer=buyer, listing=listing, template=pact.template, task="one")
    client = client_for(buyer)
    with CaptureQueriesContext(connection) as ctx:
        assert client.get("/api/v1/engagements/").json()["count"] == 1
    for i in range(49):
        services.engagement_create(buyer=buyer, listing=listing, template=pact.template, task=f"task {i}")
    with django_assert_num_queries(len(ctx)):
        assert client.get("/api/v1/engagements/?page_size=100").json()["count"] == 50


def test_the_owner_edits_a_listing_but_cannot_lift_a_suspension(listing, seller):
    client = client_for(seller)
    response = client.patch(f"/api/v1/agents/{listing.pk}/", {"price_minor": 7000, "status": "draft"}, format="json")
    assert response.status_code == 200
    assert response.json()["price_minor"] == 7000
    services.listing_set_status(listing_id=listing.pk, status="suspended")
    response = client.patch(f"/api/v1/agents/{listing.pk}/", {"status": "published"}, format="json")
    assert response.status_code == 409
    assert "suspended" in response.json()["detail"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({**LISTING_BODY, "price_minor": 0}, "price_minor"),
        ({**LISTING_BODY, "price_minor": "ten"}, "price_minor"),
        ({**LISTING_BODY, "currency": "zzz"}, "currency"),
        ({**LISTING_BODY, "endpoint_url": "ftp://x.example.com"}, "endpoint_url"),
        ({**LISTING_BODY, "status": "suspended"}, "status"),
        ({**LISTING_BODY, "categories": "research"}, "categories"),
        ({"description": "no name"}, "name"),
    ],
)
def test_bad_listings_are_400_and_write_nothing(seller, body, field):
    response = client_for(seller).post("/api/v1/agents/", body, format="json")
    assert response.status_code == 400, response.content
    assert field in response.json()["detail"]
    assert not AgentListing.objects.exists()


# --- pacts ---------------------------------------------------------------------------------


def test_publishing_a_pact_returns_the_template_with_its_latest_version(listing, seller):
    response = client_for(seller).post(
        f"/api/v1/agents/{listing.pk}/pacts/",
        {"name": "Research", "clauses": clauses(), "terms": terms()},
        format="json",
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["latest_version"]["version"] == "1.0.0"
    assert len(body["latest_version"]["hash"]) == 64
    assert [c["key"] for c in body["latest_version"]["clauses"]] == ["cites", "fast", "no-payments", "quality"]
    listed = client_for().get(f"/api/v1/agents/{listing.pk}/pacts/").json()
    assert listed[0]["latest_version"]["hash"] == body["latest_version"]["hash"]


@pytest.mark.parametrize(
    ("mutate", "fragment"),
    [
        (lambda c, t: c.append({"key": "z", "kind": "nope", "params": {}}), "clauses[4].kind"),
        (lambda c, t: c[0]["params"].pop("min_rate"), "clauses[0].params.min_rate"),
        (lambda c, t: c.append({"key": "z", "kind": "regex_forbidden", "params": {"pattern": "(a"}}), "pattern"),
        (
            lambda c, t: c.append({"key": "z", "kind": "json_schema", "params": {"schema": {"type": 5}}}),
            "JSON Schema",
        ),
        (lambda c, t: c[1].update(weight=0), "weight"),
        (lambda c, t: t.update(price_minor=-1), "terms.price_minor"),
        (lambda c, t: t.update(currency="bitcoin"), "terms.currency"),
        (lambda c, t: t.update(platform_fee_bps=20_000), "terms.platform_fee_bps"),
        (lambda c, t: t.update(review_window_hours=0), "terms.review_window_hours"),
    ],
)
def test_invalid_pacts_get_a_field_level_detail_and_write_nothing(listing, seller, mutate, fragment):
    c, t = clauses(), terms()
    mutate(c, t)
    response = client_for(seller).post(
        f"/api/v1/agents/{listing.pk}/pacts/", {"name": "Bad", "clauses": c, "terms": t}, format="json"
    )
    assert response.status_code == 400, response.content
    assert fragment in response.json()["detail"]
    assert not PactTemplate.objects.exists()
    assert not PactVersion.objects.exists()


# --- engagements --------------------------------------------------------------------------------


def test_the_full_negotiation_over_the_api(buyer, seller, listing, pact):
    buyer_client, seller_client = client_for(buyer), client_for(seller)
    created = buyer_client.post(
        "/api/v1/engagements/", {"agent": listing.pk, "pact": pact.template_id, "task": "Summarise RE2"}, format="json"
    )
    assert created.status_code == 201, created.content
    detail = created.json()
    eid = detail["id"]
    assert detail["status"] == "negotiating"
    assert detail["pact_version"] is None
    assert detail["escrow"] is None
    assert detail["evaluation"] is None
    assert detail["proposals"][0]["author_role"] == "buyer"
    assert detail["proposals"][0]["diff"]["clauses_added"] == ["cites", "fast", "no-payments", "quality"]

    counter_clauses = [c for c in clauses() if c["key"] != "fast"]
    countered = seller_client.post(
        f"/api/v1/engagements/{eid}/proposals/",
        {"clauses": counter_clauses, "terms": terms(price_minor=6500), "note": "No latency promise this week."},
        format="json",
    )
    assert countered.status_code == 201, countered.content
    diff = countered.json()["proposals"][1]["diff"]
    assert diff == {
        "clauses_added": [],
        "clauses_removed": ["fast"],
        "clauses_changed": [],
        "terms_changed": {"price_minor": {"from": 5000, "to": 6500}},
    }

    stale = seller_client.post(f"/api/v1/engagements/{eid}/accept/", {"proposal": 2}, format="json")
    assert stale.status_code == 409
    assert stale.json()["code"] == "own_proposal"

    superseded = buyer_client.post(f"/api/v1/engagements/{eid}/accept/", {"proposal": 1}, format="json")
    assert superseded.status_code == 409
    assert superseded.json()["code"] == "superseded"

    accepted = buyer_client.post(f"/api/v1/engagements/{eid}/accept/", {"proposal": 2}, format="json")
    assert accepted.status_code == 200, accepted.content
    body = accepted.json()
    assert body["status"] == "agreed"
    assert body["pact_version"]["terms"]["price_minor"] == 6500
    assert body["pact_version"]["hash"] == body["proposals"][1]["hash"]
    assert [h["to"] for h in body["history"]] == ["negotiating", "agreed"]

    again = buyer_client.post(f"/api/v1/engagements/{eid}/accept/", {}, format="json")
    assert again.status_code == 409
    assert again.json()["code"] == "not_negotiating"


def test_delivery_before_funding_is_409_and_twice_is_409(agreed, seller):
    client = client_for(seller)
    body = {"output": "Answer [1]", "citations": ["https://arxiv.org/abs/1"], "actions": ["search"], "latency_ms": 900}
    early = client.post(f"/api/v1/engagements/{agreed.pk}/deliver/", body, format="json")
    assert early.status_code == 409
    assert "fund" in early.json()["detail"]
    assert not Deliverable.objects.exists()

    services.engagement_mark_active(engagement_id=agreed.pk)
    first = client.post(f"/api/v1/engagements/{agreed.pk}/deliver/", body, format="json")
    assert first.status_code == 201, first.content
    assert first.json()["status"] == "delivered"
    assert first.json()["deliverable"]["latency_ms"] == 900
    second = client.post(f"/api/v1/engagements/{agreed.pk}/deliver/", body, format="json")
    assert second.status_code == 409
    assert second.json()["code"] == "already_delivered"
    assert Deliverable.objects.count() == 1
    assert EvidenceRecord.objects.filter(kind="deliverable.submitted").count() == 1


def test_the_signal_is_sent_on_commit(active, seller, django_capture_on_commit_callbacks):
    received = []

    def receiver(sender, deliverable_id, engagement_id, **kwargs):
        received.append((deliverable_id, engagement_id))

    deliverable_submitted.connect(receiver, dispatch_uid="on-commit-test")
    try:
        with django_capture_on_commit_callbacks(execute=False) as callbacks:
            response = client_for(seller).post(
                f"/api/v1/engagements/{active.pk}/deliver/", {"output": "done"}, format="json"
            )
        assert response.status_code == 201
        assert received == []  # nothing before commit
        for callback in callbacks:
            callback()
    finally:
        deliverable_submitted.disconnect(dispatch_uid="on-commit-test")
    assert received == [(Deliverable.objects.get().pk, active.pk)]


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({}, "output"),
        ({"output": ""}, "output"),
        ({"output": "x", "citations": "https://a.example"}, "citations"),
        ({"output": "x", "latency_ms": -1}, "latency_ms"),
        ({"output": "x", "latency_ms": "slow"}, "latency_ms"),
        ({"output": "x", "actions": "search"}, "actions"),
        ({"output": "x", "actions": [{"no_name": 1}]}, "actions"),
        ({"output": 42}, "output"),
    ],
)
def test_bad_deliveries_are_400_and_write_nothing(active, seller, body, fragment):
    response = client_for(seller).post(f"/api/v1/engagements/{active.pk}/deliver/", body, format="json")
    assert response.status_code == 400, response.content
    assert fragment in response.json()["detail"]
    assert not Deliverable.objects.exists()
    assert Engagement.objects.get(pk=active.pk).status == "active"


def test_an_agent_token_delivers_for_its_listing_only_and_can_be_revoked(active, seller, other_seller):
    client = client_for(seller)
    created = client.post(f"/api/v1/agents/{active.listing_id}/tokens/", {"name": "prod agent"}, format="json")
    assert created.status_code == 201
    raw = created.json()["token"]
    token_id = created.json()["agent_token"]["id"]

    other_listing = services.listing_create(seller=other_seller, name="Other", price_minor=100, currency="usd")
    other_token = client_for(other_seller).post(
        f"/api/v1/agents/{other_listing.pk}/tokens/", {"name": "x"}, format="json"
    )
    intruder = APIClient()
    intruder.credentials(HTTP_AUTHORIZATION=f"Agent {other_token.json()['token']}")
    assert intruder.post(f"/api/v1/engagements/{active.pk}/deliver/", {"output": "x"}, format="json").status_code == 404

    agent = APIClient()
    agent.credentials(HTTP_AUTHORIZATION=f"Agent {raw}")
    # Scoped to delivering: the token opens nothing else.
    assert agent.get(f"/api/v1/engagements/{active.pk}/").status_code == 401
    revoked = client.delete(f"/api/v1/agents/{active.listing_id}/tokens/{token_id}/")
    assert revoked.status_code == 200
    assert revoked.json()["active"] is False
    refused = agent.post(f"/api/v1/engagements/{active.pk}/deliver/", {"output": "x"}, format="json")
    assert refused.status_code == 401
    assert not Deliverable.objects.exists()

    fresh = client.post(f"/api/v1/agents/{active.listing_id}/tokens/", {"name": "v2"}, format="json").json()["token"]
    agent.credentials(HTTP_AUTHORIZATION=f"Agent {fresh}")
    delivered = agent.post(
        f"/api/v1/engagements/{active.pk}/deliver/", {"output": "x", "latency_ms": 12}, format="json"
    )
    assert delivered.status_code == 201, delivered.content
    assert Deliverable.objects.get().source == "agent_token"


def test_bad_engagement_requests(buyer, listing, pact, other_seller):
    client = client_for(buyer)
    other = services.listing_create(seller=other_seller, name="Other", price_minor=100, currency="usd")
    cases = [
        ({"agent": listing.pk, "pact": pact.template_id}, "task"),
        ({"agent": 999_999, "pact": pact.template_id, "task": "x"}, "agent"),
        ({"agent": other.pk, "pact": pact.template_id, "task": "x"}, "pact"),
        ({"agent": "one", "pact": pact.template_id, "task": "x"}, "agent"),
        ({"agent": listing.pk, "pact": pact.template_id, "task": ""}, "task"),
    ]
    for body, fragment in cases:
        response = client.post("/api/v1/engagements/", body, format="json")
        assert response.status_code == 400, (body, response.content)
        assert fragment in response.json()["detail"]
    assert not Engagement.objects.exists()
    assert not Proposal.objects.exists()


def test_a_proposal_with_an_invalid_clause_is_400_and_writes_nothing(engagement, seller):
    bad = [*clauses(), {"key": "oops", "kind": "regex_required", "params": {"pattern": "(?<=x)"}}]
    response = client_for(seller).post(
        f"/api/v1/engagements/{engagement.pk}/proposals/", {"clauses": bad, "terms": terms()}, format="json"
    )
    assert response.status_code == 400
    assert "clauses[4].params.pattern" in response.json()["detail"]
    assert engagement.proposals.count() == 1


@pytest.mark.parametrize(
    "raw",
    [
        '{"output": "nul \\u0000 inside"}',
        '{"output": "lone \\ud800 surrogate"}',
        '{"output": "ok", "citations": ["\\u0000"]}',
    ],
)
def test_text_no_database_can_store_is_a_400_not_a_500(active, seller, raw):
    response = client_for(seller).generic(
        "POST", f"/api/v1/engagements/{active.pk}/deliver/", raw, content_type="application/json"
    )
    assert response.status_code == 400, response.content
    assert response.json()["code"] == "parse_error"
    assert not Deliverable.objects.exists()


def test_services_refuse_nul_characters_from_any_caller(active, seller):
    from core.errors import ValidationFailed

    with pytest.raises(ValidationFailed, match="NUL"):
        services.deliverable_submit(engagement_id=active.pk, actor=seller, output="binary\x00junk")
    assert not Deliverable.objects.exists()


def test_an_agent_token_stops_working_when_its_seller_is_deactivated(active, seller):
    _token, raw = services.agent_token_create(listing=active.listing, actor=seller, name="bot")
    seller.is_active = False
    seller.save(update_fields=["is_active"])
    agent = APIClient()
    agent.credentials(HTTP_AUTHORIZATION=f"Agent {raw}")
    assert agent.post(f"/api/v1/engagements/{active.pk}/deliver/", {"output": "x"}, format="json").status_code == 401
    assert not Deliverable.objects.exists()
