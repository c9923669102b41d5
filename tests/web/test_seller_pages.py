import datetime
import json

import pytest

from marketplace import services
from marketplace.models import AgentListing, AgentToken, BenchmarkClaim, PactTemplate, PactVersion
from tests.web.conftest import client_for
from tests.web.helpers import error_path, make_listing, pact_clauses, pact_form_data

pytestmark = pytest.mark.django_db

LISTING_FORM = {
    "name": "Quill Writer",
    "description": "Writes briefs.",
    "categories": "Writing, Legal Briefs",
    "price": "49.5",
    "currency": "eur",
    "endpoint_url": "",
    "status": "published",
}


# --- dashboard -------------------------------------------------------------------------------


def test_the_dashboard_shows_listings_waiting_proposals_and_deliveries_due(
    seller, buyer, listing, pact, engagement, other_buyer
):
    draft = make_listing(seller, name="Draft agent", status="draft")
    funded = services.engagement_create(buyer=other_buyer, listing=listing, template=pact.template, task="Go")
    services.proposal_accept(engagement_id=funded.pk, actor=seller)
    services.engagement_mark_active(engagement_id=funded.pk)

    response = client_for(seller).get("/seller/")

    assert response.status_code == 200
    html = response.content.decode()
    assert 'href="/seller/listings/new/">New listing</a>' in html
    assert "Beacon Research" in html
    assert f'href="/agents/{draft.slug}/">Draft agent</a>' in html
    assert '<span class="badge ">Draft</span>' in html
    assert '<span class="badge badge-ok">Published</span>' in html
    waiting = html.split('id="waiting-heading"')[1].split('id="due-heading"')[0]
    assert f"/engagements/{engagement.pk}/" in waiting
    assert "proposal 1 from ada" in waiting
    due = html.split('id="due-heading"')[1].split('id="listings-heading"')[0]
    assert f"/engagements/{funded.pk}/" in due
    assert f"/engagements/{engagement.pk}/" not in due


def test_the_dashboard_is_for_sellers_only(buyer, staff):
    assert client_for().get("/seller/")["Location"] == "/login/?next=/seller/"
    for user in (buyer, staff):
        response = client_for(user).get("/seller/")
        assert response.status_code == 403
        assert "The seller dashboard is for seller accounts." in response.content.decode()


# --- listing editor --------------------------------------------------------------------------


def test_a_seller_creates_a_listing_with_a_price_in_major_units(seller):
    response = client_for(seller).post("/seller/listings/new/", LISTING_FORM)
    listing = AgentListing.objects.get()
    assert response.status_code == 302
    assert response["Location"] == f"/agents/{listing.slug}/"
    assert listing.seller == seller
    assert listing.price_minor == 4950
    assert listing.currency == "eur"
    assert listing.categories == ["legal-briefs", "writing"]


@pytest.mark.parametrize(
    ("price", "message"),
    [
        ("49.999", "at most two decimals"),
        ("abc", "at most two decimals"),
        ("0", "more than zero"),
        ("-5", "at most two decimals"),
        ("", "This field is required."),
    ],
)
def test_a_bad_price_is_refused_beside_the_field(seller, price, message):
    response = client_for(seller).post("/seller/listings/new/", {**LISTING_FORM, "price": price})
    assert response.status_code == 400
    html = response.content.decode()
    price_field = html.split('for="id_price"')[1].split('for="id_currency"')[0]
    assert message in price_field
    assert 'role="alert"' in price_field
    assert not AgentListing.objects.exists()


def test_prices_in_a_zero_decimal_currency_are_whole_units(seller):
    client = client_for(seller)
    assert client.post("/seller/listings/new/", {**LISTING_FORM, "currency": "jpy", "price": "1.50"}).status_code == 400
    assert client.post("/seller/listings/new/", {**LISTING_FORM, "currency": "jpy", "price": "1500"}).status_code == 302
    assert AgentListing.objects.get().price_minor == 1500


def test_an_endpoint_must_be_http_or_https(seller):
    response = client_for(seller).post(
        "/seller/listings/new/", {**LISTING_FORM, "endpoint_url": "ftp://agent.example.com/"}
    )
    assert response.status_code == 400
    assert not AgentListing.objects.exists()


def test_a_buyer_cannot_create_listings(buyer):
    assert client_for(buyer).get("/seller/listings/new/").status_code == 403
    response = client_for(buyer).post("/seller/listings/new/", LISTING_FORM)
    assert response.status_code == 403
    assert not AgentListing.objects.exists()
    assert client_for().get("/seller/listings/new/").status_code == 302


def test_the_owner_edits_a_listing(seller, listing):
    client = client_for(seller)
    form = client.get(f"/agents/{listing.slug}/edit/").content.decode()
    assert 'value="49.50"' in form
    assert 'value="research, summaries"' in form
    response = client.post(
        f"/agents/{listing.slug}/edit/", {**LISTING_FORM, "name": "Beacon Deep", "price": "60", "status": "draft"}
    )
    assert response.status_code == 302
    listing.refresh_from_db()
    assert (listing.name, listing.price_minor, listing.status, listing.slug) == (
        "Beacon Deep",
        6000,
        "draft",
        "beacon-research",
    )


def test_a_suspended_listing_can_be_edited_but_not_republished(seller, listing):
    services.listing_set_status(listing_id=listing.pk, status="suspended")
    client = client_for(seller)
    html = client.get(f"/agents/{listing.slug}/edit/").content.decode()
    assert "only an admin can lift a suspension" in html
    assert 'name="status"' not in html
    response = client.post(f"/agents/{listing.slug}/edit/", {**LISTING_FORM, "status": "published"})
    assert response.status_code == 302
    listing.refresh_from_db()
    assert listing.status == "suspended"
    assert listing.name == "Quill Writer"


def test_others_cannot_edit_a_listing(listing, other_seller, buyer, seller):
    for user in (other_seller, buyer):
        client = client_for(user)
        assert client.get(f"/agents/{listing.slug}/edit/").status_code == 403
        assert client.post(f"/agents/{listing.slug}/edit/", {**LISTING_FORM, "name": "Hijacked"}).status_code == 403
    assert client_for().get(f"/agents/{listing.slug}/edit/")["Location"].startswith("/login/")
    draft = make_listing(seller, name="Draft", status="draft")
    assert client_for(other_seller).get(f"/agents/{draft.slug}/edit/").status_code == 404
    listing.refresh_from_db()
    assert listing.name == "Beacon Research"


# --- pact editor ------------------------------------------------------------------------------


def test_the_pact_editor_is_prefilled_with_a_valid_example_that_publishes(seller, listing):
    client = client_for(seller)
    html = client.get(f"/agents/{listing.slug}/pacts/new/").content.decode()
    for kind in ("citation_rate", "max_latency_ms", "regex_forbidden", "rubric"):
        assert f"&quot;kind&quot;: &quot;{kind}&quot;" in html
    # The help lists every clause kind with its parameters.
    assert "<code>word_count</code>" in html
    assert "<code>allowed_domains</code> (optional)" in html
    form = client.get(f"/agents/{listing.slug}/pacts/new/").context["form"]
    data = {name: form[name].value() for name in form.fields}
    response = client.post(f"/agents/{listing.slug}/pacts/new/", data)
    assert response.status_code == 302, response.content.decode()
    version = PactVersion.objects.get()
    assert version.terms["price_minor"] == 4950
    assert {c["kind"] for c in version.clauses} == {"citation_rate", "max_latency_ms", "regex_forbidden", "rubric"}


def test_the_owner_publishes_a_pact_and_then_a_new_version(seller, listing):
    client = client_for(seller)
    response = client.post(f"/agents/{listing.slug}/pacts/new/", pact_form_data(price="45.00"))
    assert response.status_code == 302
    assert response["Location"] == f"/agents/{listing.slug}/#pacts"
    version = PactVersion.objects.get()
    assert version.version == "1.0.0"
    assert version.terms["price_minor"] == 4500
    assert version.terms["dispute_response_window_hours"] == 48

    template = PactTemplate.objects.get()
    prefilled = client.get(f"/agents/{listing.slug}/pacts/new/?from={template.pk}").context["form"]
    assert prefilled["name"].value() == "Research pact"
    assert prefilled["price"].value() == "45.00"
    response = client.post(f"/agents/{listing.slug}/pacts/new/", pact_form_data(price="55.00"))
    assert response.status_code == 302
    assert sorted(template.versions.values_list("version", flat=True)) == ["1.0.0", "2.0.0"]


def test_invalid_clause_json_is_shown_beside_the_clauses_field(seller, listing):
    response = client_for(seller).post(f"/agents/{listing.slug}/pacts/new/", pact_form_data(clauses='[{"key": '))
    assert response.status_code == 400
    html = response.content.decode()
    assert "Not valid JSON: Expecting value (line 1, column 9)." in html
    assert not PactTemplate.objects.exists()


def test_an_invalid_regex_names_the_clause_and_parameter(seller, listing):
    clauses = pact_clauses()
    clauses[2]["params"]["pattern"] = "(?<=after)x"
    response = client_for(seller).post(f"/agents/{listing.slug}/pacts/new/", pact_form_data(clauses=clauses))
    assert response.status_code == 400
    html = response.content.decode()
    assert error_path("clauses > 3 (no-secrets) > params > pattern: Not a valid pattern") in html
    assert "RE2 syntax" in html
    clauses_field = html.split('for="id_clauses"')[1].split("</details>")[0]
    assert 'role="alert"' in clauses_field
    assert not PactTemplate.objects.exists()


def test_other_clause_and_term_errors_are_readable(seller, listing):
    clauses = pact_clauses()
    clauses.append({"key": "cites", "kind": "word_count", "params": {"min": 10}})
    clauses[0]["kind"] = "telepathy"
    response = client_for(seller).post(
        f"/agents/{listing.slug}/pacts/new/", pact_form_data(clauses=clauses, platform_fee_bps=20000)
    )
    assert response.status_code == 400
    html = response.content.decode()
    assert error_path("clauses > 1 (cites) > kind: &quot;telepathy&quot; is not a valid choice.") in html
    fee_field = html.split('for="id_platform_fee_bps"')[1].split("</div>\n    \n  </div>")[0]
    assert "Ensure this value is less than or equal to 10000." in fee_field
    assert not PactTemplate.objects.exists()


def test_clauses_must_be_a_list(seller, listing):
    response = client_for(seller).post(f"/agents/{listing.slug}/pacts/new/", pact_form_data(clauses='{"key": 1}'))
    assert response.status_code == 400
    assert "Clauses are a JSON list" in response.content.decode()


def test_others_cannot_publish_pacts(listing, other_seller, buyer):
    for user in (other_seller, buyer):
        assert client_for(user).get(f"/agents/{listing.slug}/pacts/new/").status_code == 403
        assert client_for(user).post(f"/agents/{listing.slug}/pacts/new/", pact_form_data()).status_code == 403
    assert client_for().post(f"/agents/{listing.slug}/pacts/new/", pact_form_data()).status_code == 302
    assert not PactTemplate.objects.exists()


# --- benchmark claims --------------------------------------------------------------------------

CLAIM_FORM = {
    "benchmark": "SWE-bench Verified",
    "score": "62.4",
    "measured_on": "2025-10-01",
    "source_url": "https://www.swebench.com/",
    "categories": "coding, Research",
}


def test_the_owner_adds_a_benchmark_claim(seller, listing):
    response = client_for(seller).post(f"/agents/{listing.slug}/benchmarks/new/", CLAIM_FORM)
    assert response.status_code == 302
    assert response["Location"] == f"/agents/{listing.slug}/#benchmarks"
    claim = BenchmarkClaim.objects.get()
    assert (claim.benchmark, claim.score, claim.measured_on, claim.categories) == (
        "SWE-bench Verified",
        62.4,
        datetime.date(2025, 10, 1),
        ["coding", "research"],
    )


def test_a_claim_from_the_future_is_refused(seller, listing):
    tomorrow = (datetime.date.today() + datetime.timedelta(days=2)).isoformat()
    response = client_for(seller).post(
        f"/agents/{listing.slug}/benchmarks/new/", {**CLAIM_FORM, "measured_on": tomorrow}
    )
    assert response.status_code == 400
    assert "measured_on: a benchmark cannot be measured in the future." in response.content.decode()
    assert not BenchmarkClaim.objects.exists()


def test_a_claim_needs_a_finite_score(seller, listing):
    response = client_for(seller).post(f"/agents/{listing.slug}/benchmarks/new/", {**CLAIM_FORM, "score": "nan"})
    assert response.status_code == 400
    assert not BenchmarkClaim.objects.exists()


def test_others_cannot_add_claims(listing, other_seller, buyer):
    for user in (other_seller, buyer):
        assert client_for(user).post(f"/agents/{listing.slug}/benchmarks/new/", CLAIM_FORM).status_code == 403
    assert client_for().get(f"/agents/{listing.slug}/benchmarks/new/").status_code == 302
    assert not BenchmarkClaim.objects.exists()


# --- agent tokens --------------------------------------------------------------------------------


def test_a_token_is_shown_once_listed_by_prefix_and_revocable(seller, listing):
    client = client_for(seller)
    response = client.post(f"/agents/{listing.slug}/tokens/", {"name": "worker"})
    assert response.status_code == 201
    assert "no-store" in response["Cache-Control"]
    raw = response.context["raw_token"]
    html = response.content.decode()
    assert raw.startswith("pat_")
    assert f'value="{raw}"' in html
    token = AgentToken.objects.get()
    assert services.agent_token_authenticate(raw=raw) == token

    listing_page = client.get(f"/agents/{listing.slug}/tokens/").content.decode()
    assert raw not in listing_page
    assert f"<code>{token.prefix}…</code>" in listing_page
    assert "never" not in listing_page  # authenticating above counted as a use

    response = client.post(f"/agents/{listing.slug}/tokens/{token.pk}/revoke/")
    assert response.status_code == 302
    token.refresh_from_db()
    assert token.revoked_at is not None
    assert services.agent_token_authenticate(raw=raw) is None
    assert "is revoked" in client.get(response["Location"]).content.decode()


def test_a_token_needs_a_name(seller, listing):
    response = client_for(seller).post(f"/agents/{listing.slug}/tokens/", {"name": ""})
    assert response.status_code == 400
    assert not AgentToken.objects.exists()


def test_others_cannot_see_create_or_revoke_tokens(seller, listing, other_seller, buyer, other_buyer):
    _token, _raw = services.agent_token_create(listing=listing, actor=seller, name="worker")
    token = AgentToken.objects.get()
    for user in (other_seller, buyer):
        client = client_for(user)
        assert client.get(f"/agents/{listing.slug}/tokens/").status_code == 403
        assert client.post(f"/agents/{listing.slug}/tokens/", {"name": "mine"}).status_code == 403
        assert client.post(f"/agents/{listing.slug}/tokens/{token.pk}/revoke/").status_code == 403
    assert client_for().get(f"/agents/{listing.slug}/tokens/").status_code == 302
    # A token of another listing is not found under this one.
    other = make_listing(other_seller, name="Other")
    assert client_for(other_seller).post(f"/agents/{other.slug}/tokens/{token.pk}/revoke/").status_code == 404
    token.refresh_from_db()
    assert token.revoked_at is None
    assert AgentToken.objects.count() == 1


def test_clause_json_round_trips_without_method(seller, listing, pact):
    form = client_for(seller).get(f"/agents/{listing.slug}/pacts/new/?from={pact.template_id}").context["form"]
    clauses = json.loads(form["clauses"].value())
    assert all("method" not in clause for clause in clauses)
    assert [c["key"] for c in clauses] == ["cites", "fast", "no-secrets", "quality"]
