import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from marketplace import services
from marketplace.models import Deliverable, Engagement, PactVersion, Proposal
from tests.web.conftest import client_for
from tests.web.helpers import error_path, make_listing, pact_clauses, pact_form_data, pact_terms

pytestmark = pytest.mark.django_db


def _counter(engagement, user, **changes):
    """Post a counter-proposal through the service: proposal 1's content with `changes` applied."""
    clauses = pact_clauses()
    terms = pact_terms()
    changes.get("edit_clauses", lambda c: None)(clauses)
    terms.update(changes.get("terms", {}))
    return services.proposal_create(
        engagement_id=engagement.pk, actor=user, clauses=clauses, terms=terms, note=changes.get("note", "")
    )


def _section(html: str, start: str, end: str) -> str:
    return html.split(start, 1)[1].split(end, 1)[0]


# --- list --------------------------------------------------------------------------------------


def test_my_engagements_lists_mine_as_buyer_and_as_seller(engagement, buyer, seller, other_buyer, other_seller, staff):
    elsewhere = make_listing(other_seller, name="Atlas")
    other_pact = services.pact_publish(
        listing=elsewhere, actor=other_seller, name="Atlas pact", clauses=pact_clauses(), terms=pact_terms()
    )
    theirs = services.engagement_create(buyer=other_buyer, listing=elsewhere, template=other_pact.template, task="t")

    buyer_html = client_for(buyer).get("/engagements/").content.decode()
    assert f'href="/engagements/{engagement.pk}/"' in buyer_html
    assert f'href="/engagements/{theirs.pk}/"' not in buyer_html
    assert "(you buy)" in buyer_html
    assert '<span class="badge badge-warn">Negotiating</span>' in buyer_html

    seller_html = client_for(seller).get("/engagements/").content.decode()
    assert f'href="/engagements/{engagement.pk}/"' in seller_html
    assert f'href="/engagements/{theirs.pk}/"' not in seller_html
    assert "(you sell)" in seller_html

    staff_html = client_for(staff).get("/engagements/").content.decode()
    assert "All engagements" in staff_html
    assert f'href="/engagements/{engagement.pk}/"' in staff_html
    assert f'href="/engagements/{theirs.pk}/"' in staff_html

    assert client_for().get("/engagements/")["Location"] == "/login/?next=/engagements/"


def test_my_engagements_filters_by_status_and_shows_the_agreed_price(engagement, agreed, buyer, listing, pact):
    services.engagement_create(buyer=buyer, listing=listing, template=pact.template, task="second")
    html = client_for(buyer).get("/engagements/?status=agreed").content.decode()
    assert html.count('<th scope="row"><a href="/engagements/') == 1
    assert "50.00 USD" in html
    assert client_for(buyer).get("/engagements/?status=bogus").status_code == 200


def test_my_engagements_runs_the_same_queries_for_one_and_fifty(
    buyer, seller, listing, pact, django_assert_num_queries
):
    first = services.engagement_create(buyer=buyer, listing=listing, template=pact.template, task="one")
    services.proposal_accept(engagement_id=first.pk, actor=seller)
    client = client_for(buyer)
    with CaptureQueriesContext(connection) as one:
        assert client.get("/engagements/").content.decode().count('<th scope="row"><a href="/engagements/') == 1
    for i in range(49):
        engagement = services.engagement_create(buyer=buyer, listing=listing, template=pact.template, task=f"t{i}")
        if i % 2:
            services.proposal_accept(engagement_id=engagement.pk, actor=seller)
    with django_assert_num_queries(len(one)):
        html = client.get("/engagements/?page=2").content.decode()
    assert html.count('<th scope="row"><a href="/engagements/') == 20


# --- detail --------------------------------------------------------------------------------------


def test_the_parties_and_staff_see_the_engagement(engagement, buyer, seller, staff):
    for user, who in ((buyer, "buyer"), (seller, "seller"), (staff, None)):
        response = client_for(user).get(f"/engagements/{engagement.pk}/")
        assert response.status_code == 200
        html = response.content.decode()
        assert f"Engagement #{engagement.pk}" in html
        assert "Summarise the RE2 paper." in html
        assert "Buyer <strong>ada</strong>" in html
        assert "Seller <strong>beacon-labs</strong>" in html
        assert '<span class="badge badge-large badge-warn">Negotiating</span>' in html
        assert response.context["role"] == who
    staff_html = client_for(staff).get(f"/engagements/{engagement.pk}/").content.decode()
    assert "Accept proposal" not in staff_html
    assert "Send a counter-proposal" not in staff_html


def test_outsiders_get_a_404_and_anonymous_a_login(engagement, other_buyer, other_seller):
    for user in (other_buyer, other_seller):
        assert client_for(user).get(f"/engagements/{engagement.pk}/").status_code == 404
    response = client_for().get(f"/engagements/{engagement.pk}/")
    assert response["Location"] == f"/login/?next=/engagements/{engagement.pk}/"
    assert client_for(other_buyer).get("/engagements/999999/").status_code == 404


def test_the_page_shows_every_proposal_with_a_visual_diff(engagement, buyer, seller):
    def edit(clauses):
        clauses[0]["params"]["min_rate"] = 0.8  # cites: changed param
        clauses[3]["severity"] = "critical"  # quality: changed severity
        del clauses[1]  # fast: removed
        clauses.append({"key": "short", "kind": "word_count", "params": {"max": 800}, "weight": 1})

    _counter(engagement, seller, edit_clauses=edit, terms={"price_minor": 6500}, note="Faster is dearer.")

    response = client_for(buyer).get(f"/engagements/{engagement.pk}/")
    html = response.content.decode()
    negotiation = _section(html, 'id="negotiation-heading"', "in full</h3>")
    assert "<strong>Proposal 1</strong>" in negotiation
    assert "by the buyer (ada)" in negotiation
    assert "Opening proposal" in negotiation
    assert "<strong>Proposal 2</strong>" in negotiation
    assert "by the seller (beacon-labs)" in negotiation
    assert "Faster is dearer." in negotiation
    assert '<span class="badge">superseded</span>' in negotiation
    added = _section(negotiation, 'class="diff-line diff-added"', "</li>")
    assert "clause short" in added
    assert "word_count, major, weight 1: max 800" in added
    removed = _section(negotiation, 'class="diff-line diff-removed"', "</li>")
    assert "clause fast" in removed
    changed = negotiation.split('class="diff-line diff-changed"')[1:]
    texts = [" ".join(part.split("</li>")[0].split()) for part in changed]
    assert any(error_path("clause cites > min_rate") in t and "0.9</del>" in t and "0.8</ins>" in t for t in texts)
    assert any(
        error_path("clause quality > severity") in t and "major</del>" in t and "critical</ins>" in t for t in texts
    )
    assert any("Price" in t and "50.00 USD</del>" in t and "65.00 USD</ins>" in t for t in texts)
    # The latest proposal in full, and the buyer's accept and counter forms prefilled from it.
    assert "Proposal 2 in full" in html
    assert '<input type="hidden" name="proposal" value="2">' in html
    assert "Accept proposal 2" in html
    form = response.context["proposal_form"]
    assert form["price"].value() == "65.00"
    assert '"short"' in form["clauses"].value()


def test_the_author_of_the_latest_proposal_waits(engagement, buyer, seller):
    buyer_html = client_for(buyer).get(f"/engagements/{engagement.pk}/").content.decode()
    assert "Waiting for the seller to accept it or counter." in buyer_html
    assert "Accept proposal" not in buyer_html
    seller_html = client_for(seller).get(f"/engagements/{engagement.pk}/").content.decode()
    assert "Accept proposal 1" in seller_html


# --- accept ----------------------------------------------------------------------------------------


def test_the_seller_accepts_and_the_locked_pact_is_shown(engagement, seller, buyer):
    client = client_for(seller)
    response = client.post(f"/engagements/{engagement.pk}/accept/", {"proposal": 1})
    assert response.status_code == 302
    assert response["Location"] == f"/engagements/{engagement.pk}/"
    engagement.refresh_from_db()
    assert engagement.status == "agreed"
    version = engagement.pact_version
    html = client.get(response["Location"]).content.decode()
    assert "You accepted proposal 1. The pact is locked." in html
    assert "Locked pact" in html
    assert version.version in html
    assert version.content_hash in html
    assert "Waiting for the buyer to fund escrow." in html
    assert "accepted by beacon-labs" in html
    timeline = _section(html, 'id="timeline-heading"', "</ol>")
    assert "agreed" in timeline
    assert "proposal 1 accepted" in timeline
    buyer_html = client_for(buyer).get(response["Location"]).content.decode()
    assert ">Fund escrow</button>" in buyer_html


def test_accepting_a_superseded_proposal_shows_the_409_and_changes_nothing(engagement, buyer, seller):
    _counter(engagement, seller, terms={"price_minor": 6000})
    _counter(engagement, seller, terms={"price_minor": 7000})
    response = client_for(buyer).post(f"/engagements/{engagement.pk}/accept/", {"proposal": 2})
    assert response.status_code == 409
    html = response.content.decode()
    alert = _section(html, 'class="form-errors" role="alert">', "</div>")
    assert "Proposal 2 was superseded by proposal 3; review and accept the latest." in alert
    # The button now offers the latest proposal.
    assert '<input type="hidden" name="proposal" value="3">' in html
    engagement.refresh_from_db()
    assert engagement.status == "negotiating"
    assert not Proposal.objects.filter(accepted_at__isnull=False).exists()
    assert not PactVersion.objects.filter(kind="locked").exists()


def test_accepting_your_own_proposal_is_refused(engagement, buyer):
    response = client_for(buyer).post(f"/engagements/{engagement.pk}/accept/", {"proposal": 1})
    assert response.status_code == 409
    assert "counts as your acceptance" in response.content.decode()
    engagement.refresh_from_db()
    assert engagement.status == "negotiating"


def test_accept_without_a_number_is_a_400(engagement, seller):
    response = client_for(seller).post(f"/engagements/{engagement.pk}/accept/", {})
    assert response.status_code == 400
    engagement.refresh_from_db()
    assert engagement.status == "negotiating"


def test_accept_by_htmx_follows_the_redirect_like_a_form(engagement, seller):
    response = client_for(seller).post(
        f"/engagements/{engagement.pk}/accept/", {"proposal": 1}, HTTP_HX_REQUEST="true", follow=True
    )
    assert response.status_code == 200
    assert "Waiting for the buyer to fund escrow." in response.content.decode()


def test_outsiders_cannot_accept_and_staff_are_told_why(engagement, other_buyer, other_seller, staff):
    for user in (other_buyer, other_seller):
        assert client_for(user).post(f"/engagements/{engagement.pk}/accept/", {"proposal": 1}).status_code == 404
    response = client_for(staff).post(f"/engagements/{engagement.pk}/accept/", {"proposal": 1})
    assert response.status_code == 403
    assert "Only the buyer and the seller of this engagement can do that." in response.content.decode()
    assert client_for().post(f"/engagements/{engagement.pk}/accept/", {"proposal": 1}).status_code == 302
    engagement.refresh_from_db()
    assert engagement.status == "negotiating"


# --- counter-proposals ---------------------------------------------------------------------------


def test_the_seller_counter_proposes_from_the_page(engagement, seller):
    data = pact_form_data(prefix="proposal-", price="65.00", note="Dearer, faster.")
    response = client_for(seller).post(f"/engagements/{engagement.pk}/proposals/", data)
    assert response.status_code == 302
    latest = engagement.proposals.order_by("-number").first()
    assert (latest.number, latest.author_role, latest.terms["price_minor"], latest.note) == (
        2,
        "seller",
        6500,
        "Dearer, faster.",
    )


def test_a_counter_proposal_with_invalid_json_is_shown_and_not_saved(engagement, seller):
    data = pact_form_data(prefix="proposal-", clauses="[{,}]")
    response = client_for(seller).post(f"/engagements/{engagement.pk}/proposals/", data)
    assert response.status_code == 400
    html = response.content.decode()
    assert "Not valid JSON" in html
    assert '<details class="counter" open>' in html
    assert engagement.proposals.count() == 1


def test_a_counter_proposal_with_an_invalid_regex_is_shown_and_not_saved(engagement, seller):
    clauses = pact_clauses()
    clauses[2]["params"]["pattern"] = "(unclosed"
    response = client_for(seller).post(
        f"/engagements/{engagement.pk}/proposals/", pact_form_data(prefix="proposal-", clauses=clauses)
    )
    assert response.status_code == 400
    assert error_path("clauses > 3 (no-secrets) > params > pattern: Not a valid pattern") in response.content.decode()
    assert engagement.proposals.count() == 1


def test_repeating_your_own_proposal_is_a_409(engagement, buyer):
    response = client_for(buyer).post(
        f"/engagements/{engagement.pk}/proposals/", pact_form_data(prefix="proposal-", price="50.00")
    )
    assert response.status_code == 409
    assert "This is the same as your latest proposal." in response.content.decode()
    assert engagement.proposals.count() == 1


def test_outsiders_cannot_propose(engagement, other_seller):
    response = client_for(other_seller).post(
        f"/engagements/{engagement.pk}/proposals/", pact_form_data(prefix="proposal-", price="1.00")
    )
    assert response.status_code == 404
    assert engagement.proposals.count() == 1


# --- cancel -------------------------------------------------------------------------------------


def test_a_party_cancels_while_negotiating(engagement, buyer):
    response = client_for(buyer).post(f"/engagements/{engagement.pk}/cancel/", {"cancel-reason": "Found another"})
    assert response.status_code == 302
    engagement.refresh_from_db()
    assert engagement.status == "cancelled"
    assert engagement.status_changes.last().reason == "Found another"


def test_cancelling_once_active_is_a_409(active, buyer):
    html = client_for(buyer).get(f"/engagements/{active.pk}/").content.decode()
    assert "Cancel this engagement" not in html
    response = client_for(buyer).post(f"/engagements/{active.pk}/cancel/", {"cancel-reason": ""})
    assert response.status_code == 409
    assert "cannot be cancelled" in response.content.decode()
    active.refresh_from_db()
    assert active.status == "active"


# --- delivery ------------------------------------------------------------------------------------

DELIVERY = {
    "deliver-output": "RE2 runs in linear time [1].",
    "deliver-citations": "https://github.com/google/re2\n\n https://swtch.com/~rsc/regexp/ ",
    "deliver-actions": "search\nread",
    "deliver-latency_ms": "1200",
}


def test_the_seller_delivers_once_active_and_everyone_sees_the_deliverable(active, seller, buyer):
    seller_html = client_for(seller).get(f"/engagements/{active.pk}/").content.decode()
    assert "Submit delivery" in seller_html
    assert "Submit delivery" not in client_for(buyer).get(f"/engagements/{active.pk}/").content.decode()

    response = client_for(seller).post(f"/engagements/{active.pk}/deliver/", DELIVERY)

    assert response.status_code == 302
    deliverable = Deliverable.objects.get()
    assert deliverable.output == "RE2 runs in linear time [1]."
    assert deliverable.citations == ["https://github.com/google/re2", "https://swtch.com/~rsc/regexp/"]
    assert deliverable.actions == ["search", "read"]
    assert deliverable.latency_ms == 1200
    assert deliverable.source == "seller"
    html = client_for(buyer).get(f"/engagements/{active.pk}/").content.decode()
    section = _section(html, 'id="deliverable-heading"', "</section>")
    assert "RE2 runs in linear time [1]." in section
    assert 'href="https://github.com/google/re2"' in section
    assert '<li class="chip">search</li>' in section
    assert "1200 ms" in section
    assert deliverable.content_hash in section
    assert "Seller (web or API)" in section
    assert '<span class="badge badge-large badge-info">Delivered</span>' in html


def test_json_output_is_parsed_when_asked(active, seller):
    data = {**DELIVERY, "deliver-output": '{"answer": 42}', "deliver-output_is_json": "on"}
    assert client_for(seller).post(f"/engagements/{active.pk}/deliver/", data).status_code == 302
    assert Deliverable.objects.get().output == {"answer": 42}


def test_bad_json_output_is_refused_beside_the_field(active, seller):
    data = {**DELIVERY, "deliver-output": "{nope", "deliver-output_is_json": "on"}
    response = client_for(seller).post(f"/engagements/{active.pk}/deliver/", data)
    assert response.status_code == 400
    assert "Not valid JSON" in response.content.decode()
    assert not Deliverable.objects.exists()


def test_delivering_before_escrow_is_funded_shows_the_409(agreed, seller):
    response = client_for(seller).post(f"/engagements/{agreed.pk}/deliver/", DELIVERY)
    assert response.status_code == 409
    html = response.content.decode()
    assert "Delivery opens once the buyer has funded escrow; the engagement is agreed." in html
    assert not Deliverable.objects.exists()
    agreed.refresh_from_db()
    assert agreed.status == "agreed"


def test_the_buyer_cannot_deliver(active, buyer, other_seller):
    response = client_for(buyer).post(f"/engagements/{active.pk}/deliver/", DELIVERY)
    assert response.status_code == 403
    assert "Only the seller of this engagement can deliver." in response.content.decode()
    assert client_for(other_seller).post(f"/engagements/{active.pk}/deliver/", DELIVERY).status_code == 404
    assert not Deliverable.objects.exists()


def test_delivery_attempts_are_listed(active, buyer):
    services.delivery_attempt_record(
        engagement_id=active.pk,
        url="https://agent.example.com/run",
        ok=False,
        status_code=502,
        latency_ms=830,
        error="bad gateway",
    )
    html = client_for(buyer).get(f"/engagements/{active.pk}/").content.decode()
    section = _section(html, 'id="attempts-heading"', "</section>")
    assert '<span class="badge badge-bad">failed</span>' in section
    assert "502" in section
    assert "830 ms" in section
    assert "bad gateway" in section


def test_the_engagement_page_runs_a_fixed_number_of_queries(engagement, buyer, seller, django_assert_num_queries):
    client = client_for(buyer)
    with CaptureQueriesContext(connection) as before:
        client.get(f"/engagements/{engagement.pk}/")
    for price in range(6000, 6010):
        _counter(engagement, seller if price % 2 else buyer, terms={"price_minor": price})
    with django_assert_num_queries(len(before)):
        client.get(f"/engagements/{engagement.pk}/")


def test_engagements_of_other_statuses_render(engagement, buyer):
    services.engagement_cancel(engagement_id=engagement.pk, actor=buyer)
    html = client_for(buyer).get(f"/engagements/{engagement.pk}/").content.decode()
    assert "This engagement was cancelled" in html
    assert Engagement.objects.get().status == "cancelled"
