import datetime
import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from marketplace import services
from marketplace.models import Engagement
from tests.web.conftest import client_for
from tests.web.helpers import make_listing

pytestmark = pytest.mark.django_db


def _names(response) -> list[str]:
    return re.findall(r'<h2><a href="/agents/[^"]+/">([^<]+)</a></h2>', response.content.decode())


# --- index ---------------------------------------------------------------------------------


def test_the_index_shows_published_agents_with_seller_categories_price_and_top_claim(seller, other_seller):
    listing = make_listing(seller, name="Beacon", categories=["research", "summaries"], price_minor=4950)
    services.benchmark_claim_create(
        listing=listing, actor=seller, benchmark="Low Bench", score=41.0, measured_on=datetime.date(2025, 1, 5)
    )
    services.benchmark_claim_create(
        listing=listing, actor=seller, benchmark="High Bench", score=87.5, measured_on=datetime.date(2024, 6, 1)
    )
    make_listing(other_seller, name="Hidden draft", status="draft")

    response = client_for().get("/agents/")

    assert response.status_code == 200
    html = response.content.decode()
    assert _names(response) == ["Beacon"]
    assert "by beacon-labs" in html
    assert '<li class="chip">research</li>' in html
    assert "49.50 USD" in html
    assert "High Bench <strong>87.5</strong>" in html
    assert "Low Bench" not in html
    assert "Seller's benchmark claim" in html


def test_search_filter_and_sort(seller):
    make_listing(seller, name="Cheap coder", categories=["coding"], price_minor=1000)
    make_listing(seller, name="Pricey researcher", categories=["research"], price_minor=9000, description="Deep dives")
    make_listing(seller, name="Mid researcher", categories=["research"], price_minor=5000)
    client = client_for()

    assert _names(client.get("/agents/?q=deep")) == ["Pricey researcher"]
    assert _names(client.get("/agents/?category=coding")) == ["Cheap coder"]
    assert _names(client.get("/agents/?sort=price")) == ["Cheap coder", "Mid researcher", "Pricey researcher"]
    assert _names(client.get("/agents/?sort=-price")) == ["Pricey researcher", "Mid researcher", "Cheap coder"]
    assert _names(client.get("/agents/?sort=recent")) == ["Mid researcher", "Pricey researcher", "Cheap coder"]
    # Ranking by trust (the default; see test_trust_pages): with no judged jobs anywhere, all
    # are unrated and tie, and ties go to the newest.
    assert _names(client.get("/agents/?sort=trust")) == ["Mid researcher", "Pricey researcher", "Cheap coder"]
    assert _names(client.get("/agents/")) == ["Mid researcher", "Pricey researcher", "Cheap coder"]


def test_the_category_select_lists_published_categories(seller):
    make_listing(seller, name="A", categories=["coding", "research"])
    make_listing(seller, name="B", categories=["legal"], status="draft")
    html = client_for().get("/agents/").content.decode()
    assert '<option value="coding">coding</option>' in html
    assert '<option value="research">research</option>' in html
    assert 'value="legal"' not in html


def test_a_bad_filter_value_is_reported_and_ignored(seller):
    make_listing(seller, name="A", categories=["coding"])
    response = client_for().get("/agents/?category=nope&sort=sideways")
    assert response.status_code == 200
    assert _names(response) == ["A"]
    assert 'role="alert"' in response.content.decode()


def test_the_index_paginates_by_twenty(seller):
    for i in range(21):
        make_listing(seller, name=f"Agent {i:02d}")
    client = client_for()
    first = client.get("/agents/?sort=price")
    assert len(_names(first)) == 20
    assert "Page 1 of 2" in first.content.decode()
    second = client.get("/agents/?sort=price&page=2")
    assert len(_names(second)) == 1
    assert 'href="?sort=price&amp;page=1"' in second.content.decode()


def test_the_index_runs_the_same_queries_for_one_and_fifty_agents(seller, django_assert_num_queries):
    make_listing(seller, name="Agent 0", claim_score=50.0)
    client = client_for()
    with CaptureQueriesContext(connection) as one:
        assert len(_names(client.get("/agents/"))) == 1
    for i in range(1, 50):
        make_listing(seller, name=f"Agent {i}", claim_score=float(i), categories=[f"cat-{i}"])
    with django_assert_num_queries(len(one)):
        response = client.get("/agents/?page=3")
    assert len(_names(response)) == 10
    # A signed-in user adds the session and user lookups, no more per listing.
    buyer_client = client_for(seller)
    with CaptureQueriesContext(connection) as signed_in:
        buyer_client.get("/agents/")
    assert len(signed_in) == len(one) + 2


def test_the_nav_links_agents_dashboard_and_engagements(seller, buyer):
    anonymous = client_for().get("/agents/").content.decode()
    assert '<a href="/agents/" aria-current="page">Agents</a>' in anonymous
    assert "My engagements" not in anonymous
    seller_html = client_for(seller).get("/").content.decode()
    assert 'href="/seller/">Dashboard</a>' in seller_html
    assert 'href="/engagements/">My engagements</a>' in seller_html
    buyer_html = client_for(buyer).get("/").content.decode()
    assert "Dashboard" not in buyer_html
    assert 'href="/engagements/">My engagements</a>' in buyer_html


# --- detail ----------------------------------------------------------------------------------


def test_the_detail_page_shows_pacts_clauses_terms_and_claims(listing, pact, seller):
    services.benchmark_claim_create(
        listing=listing,
        actor=seller,
        benchmark="DeepResearch Bench",
        score=62.4,
        measured_on=datetime.date(2025, 11, 3),
        source_url="https://example.org/board",
        categories=["research"],
    )
    response = client_for().get(f"/agents/{listing.slug}/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "Beacon Research" in html
    assert "Beacon Research does careful work." in html
    assert 'Research pact <span class="muted">v1.0.0</span>' in html
    # Clauses with their method, severity, weight and readable params.
    assert '<code class="clause-key">no-secrets</code>' in html
    assert "regex_forbidden" in html
    assert "deterministic" in html
    assert "jury" in html
    assert "<dt>min_rate</dt><dd>0.9</dd>" in html
    assert "<dt>criteria</dt><dd>answers the question, names its sources</dd>" in html
    # Terms, readable.
    assert "<dt>Price</dt><dd>50.00 USD</dd>" in html
    assert "<dt>Platform fee</dt><dd>10.00 % (1000 bps)</dd>" in html
    assert "<dt>Settlement</dt><dd>All or nothing</dd>" in html
    # Claims.
    assert "DeepResearch Bench" in html
    assert "62.4" in html
    assert 'href="https://example.org/board"' in html


def test_a_buyer_sees_the_hire_form_and_anonymous_a_login_link(listing, pact, buyer):
    buyer_html = client_for(buyer).get(f"/agents/{listing.slug}/").content.decode()
    assert f'action="/agents/{listing.slug}/hire/"' in buyer_html
    assert "Research pact v1.0.0 · 50.00 USD" in buyer_html
    assert '<label for="id_task">Task</label>' in buyer_html
    anonymous_html = client_for().get(f"/agents/{listing.slug}/").content.decode()
    assert "hire/" not in anonymous_html
    assert f'href="/login/?next=/agents/{listing.slug}/"' in anonymous_html


def test_only_the_owner_sees_management_links_and_the_endpoint_secret(seller, other_seller, buyer):
    listing = make_listing(seller, name="Endpointed", endpoint_url="https://agent.example.com/run")
    owner_html = client_for(seller).get(f"/agents/{listing.slug}/").content.decode()
    assert listing.endpoint_secret in owner_html
    assert "https://agent.example.com/run" in owner_html
    for href in ("edit/", "pacts/new/", "benchmarks/new/", "tokens/"):
        assert f'href="/agents/{listing.slug}/{href}"' in owner_html
    for user in (None, other_seller, buyer):
        html = client_for(user).get(f"/agents/{listing.slug}/").content.decode()
        assert listing.endpoint_secret not in html
        assert "agent.example.com" not in html
        assert f"/agents/{listing.slug}/edit/" not in html


def test_a_draft_is_404_for_everyone_but_its_owner_and_staff(seller, other_seller, buyer, staff):
    draft = make_listing(seller, name="Secret draft", status="draft")
    assert client_for(seller).get(f"/agents/{draft.slug}/").status_code == 200
    assert client_for(staff).get(f"/agents/{draft.slug}/").status_code == 200
    for user in (None, other_seller, buyer):
        assert client_for(user).get(f"/agents/{draft.slug}/").status_code == 404
    assert client_for().get("/agents/no-such-agent/").status_code == 404


# --- hiring ----------------------------------------------------------------------------------


def test_a_buyer_hires_an_agent_and_lands_on_the_engagement(listing, pact, buyer):
    client = client_for(buyer)
    response = client.post(
        f"/agents/{listing.slug}/hire/", {"pact": pact.template_id, "task": "Summarise the RE2 paper."}
    )
    engagement = Engagement.objects.get()
    assert response.status_code == 302
    assert response["Location"] == f"/engagements/{engagement.pk}/"
    assert engagement.buyer == buyer
    assert engagement.task == "Summarise the RE2 paper."
    assert engagement.proposals.count() == 1
    page = client.get(response["Location"]).content.decode()
    assert "Engagement opened." in page


def test_hiring_needs_a_task_and_a_pact_of_this_agent(listing, pact, buyer, other_seller):
    other = make_listing(other_seller, name="Other")
    other_pact = services.pact_publish(
        listing=other,
        actor=other_seller,
        name="Other pact",
        clauses=[{"key": "fast", "kind": "max_latency_ms", "params": {"max_ms": 10}}],
        terms={"price_minor": 100, "currency": "usd"},
    )
    client = client_for(buyer)
    response = client.post(f"/agents/{listing.slug}/hire/", {"pact": pact.template_id, "task": ""})
    assert response.status_code == 400
    assert '<p class="error" role="alert">This field is required.</p>' in response.content.decode()
    response = client.post(f"/agents/{listing.slug}/hire/", {"pact": other_pact.template_id, "task": "x"})
    assert response.status_code == 400
    assert "Select a valid choice" in response.content.decode()
    assert not Engagement.objects.exists()


def test_a_seller_cannot_hire_and_is_told_why(listing, pact, other_seller):
    response = client_for(other_seller).post(f"/agents/{listing.slug}/hire/", {"pact": pact.template_id, "task": "x"})
    assert response.status_code == 403
    assert "Only buyers can hire agents." in response.content.decode()
    assert not Engagement.objects.exists()


def test_hiring_a_listing_suspended_meanwhile_is_a_404(listing, pact, buyer):
    services.listing_set_status(listing_id=listing.pk, status="suspended")
    # The buyer's page was loaded before; now the listing is not visible to them at all.
    response = client_for(buyer).post(f"/agents/{listing.slug}/hire/", {"pact": pact.template_id, "task": "x"})
    assert response.status_code == 404
    assert not Engagement.objects.exists()


def test_anonymous_hiring_redirects_to_login(listing, pact):
    response = client_for().post(f"/agents/{listing.slug}/hire/", {"pact": pact.template_id, "task": "x"})
    assert response.status_code == 302
    assert response["Location"].startswith("/login/?next=")
    assert not Engagement.objects.exists()
