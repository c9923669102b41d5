"""The staff console (queue, case page, ruling form) and the parties' dispute panel."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test.utils import CaptureQueriesContext

from escrow import disputes
from escrow import services as escrow_services
from escrow.models import Dispute, LedgerEntry, Settlement
from tests.escrow.conftest import evaluated_engagement
from tests.factories import BuyerFactory, UserFactory
from tests.web.conftest import client_for

pytestmark = pytest.mark.django_db

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


@pytest.fixture(autouse=True)
def media(settings, tmp_path: Path) -> Path:
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


@pytest.fixture
def admin_user():
    return UserFactory.create(role="", is_staff=True, is_superuser=True)


def disputed(*, answer=True, files=0, reason="The citations are invented."):
    engagement, escrow, _evaluation = evaluated_engagement(good=True)
    dispute = disputes.dispute_open(
        engagement_id=engagement.pk,
        actor=engagement.buyer,
        reason=reason,
        evidence="Claim 2 cites a page that does not exist.",
        files=[SimpleUploadedFile(f"shot{i}.png", PNG) for i in range(files)],
    )
    if answer:
        disputes.dispute_answer(
            dispute_id=dispute.pk, actor=engagement.listing.seller, answer="Every citation resolves."
        )
    return engagement, escrow, dispute


def held():
    engagement, escrow, _ = evaluated_engagement(good=True)
    escrow_services.escrow_decide(engagement_id=engagement.pk, outcome="inconclusive")
    return engagement, escrow


def count_queries(client, url) -> int:
    with CaptureQueriesContext(connection) as captured:
        assert client.get(url).status_code == 200
    return len(captured.captured_queries)


# --- who sees the console --------------------------------------------------------------------------


def test_only_staff_see_the_console(admin_user):
    _, escrow, dispute = disputed()
    urls = ["/console/", f"/console/disputes/{dispute.pk}/", f"/console/held/{escrow.pk}/"]
    for url in urls:
        anonymous = client_for().get(url)
        assert anonymous.status_code == 302
        assert "/login/" in anonymous["Location"]
        for user in (dispute.engagement.buyer, dispute.engagement.listing.seller):
            assert client_for(user).get(url).status_code == 403
    ruling = {"outcome": "refund", "rationale": "Not for you."}
    assert client_for(dispute.engagement.buyer).post(f"/console/disputes/{dispute.pk}/rule/", ruling).status_code == 403
    assert not Settlement.objects.exists()
    assert client_for(admin_user).get("/console/").status_code == 200


def test_the_console_link_is_in_the_staff_navigation(admin_user):
    assert b'href="/console/"' in client_for(admin_user).get("/").content
    assert b'href="/console/"' not in client_for(BuyerFactory.create()).get("/").content


# --- the queue -------------------------------------------------------------------------------------


def test_the_queue_lists_disputes_and_held_escrows_oldest_first_with_counts(admin_user):
    _, _, first = disputed(reason="First: invented citations.")
    _, held_escrow = held()
    _, _, third = disputed(answer=False, reason="Third: too slow.")
    page = client_for(admin_user).get("/console/")
    html = page.content.decode()
    assert "3</strong> waiting" in html
    positions = [
        html.index(f"Dispute #{first.pk}"),
        html.index(f"Escrow #{held_escrow.pk}"),
        html.index(f"Dispute #{third.pk}"),
    ]
    assert positions == sorted(positions)
    assert "(1 awaiting an answer, 1 answered, 0 under review)" in html
    only_held = client_for(admin_user).get("/console/?kind=held").content.decode()
    assert f"Escrow #{held_escrow.pk}" in only_held
    assert f"Dispute #{first.pk}" not in only_held
    answered = client_for(admin_user).get("/console/?kind=disputes&status=answered").content.decode()
    assert f"Dispute #{first.pk}" in answered
    assert f"Dispute #{third.pk}" not in answered
    # Unknown filters fall back to everything, never an error.
    assert client_for(admin_user).get("/console/?kind=nope&status=nope&page=x").status_code == 200


def test_the_queue_reads_a_fixed_number_of_queries(admin_user):
    disputed()
    held()
    client = client_for(admin_user)
    client.get("/console/")
    few = count_queries(client, "/console/")
    for _ in range(3):
        disputed(files=1)
        held()
    assert count_queries(client, "/console/") == few


def test_the_queue_pages_through_every_case(admin_user, monkeypatch):
    from web import console_views

    monkeypatch.setattr(console_views, "PAGE_SIZE", 2)
    cases = [disputed(answer=False)[2] for _ in range(3)]
    _, held_escrow = held()
    first = client_for(admin_user).get("/console/?page=1").content.decode()
    second = client_for(admin_user).get("/console/?page=2").content.decode()
    assert f"Dispute #{cases[0].pk}" in first
    assert f"Dispute #{cases[1].pk}" in first
    assert f"Dispute #{cases[2].pk}" in second
    assert f"Escrow #{held_escrow.pk}" in second
    assert "Page 2 of 2" in second


# --- the case page ---------------------------------------------------------------------------------


def test_the_case_page_shows_the_whole_evidence(admin_user):
    engagement, _escrow, dispute = disputed(files=1)
    html = client_for(admin_user).get(f"/console/disputes/{dispute.pk}/").content.decode()
    pact = engagement.pact_version
    assert pact.content_hash in html  # the pact both signed
    for clause in pact.clauses:
        assert clause["key"] in html
    assert engagement.deliverable.content_hash in html  # the delivery
    assert "Evaluation round 1" in html
    verdict = engagement.evaluations.get().verdicts.exclude(rationale="").first()
    assert verdict.rationale[:40] in html  # every judge's rationale
    assert "Agreement" in html
    assert "The citations are invented." in html  # both statements
    assert "Every citation resolves." in html
    assert "shot0.png" in html  # files
    assert "dispute.opened" in html  # the evidence chain
    assert "Rule and settle" in html
    assert "45.00" in html  # release preview: 50.00 less the 10% fee
    for source in ("engagement", "escrow", "dispute"):  # the merged timeline
        assert f'<span class="badge">{source}</span>' in html


def test_the_case_page_reads_a_fixed_number_of_queries(admin_user):
    _, _, small = disputed(answer=False)
    _, _, large = disputed(files=3)
    disputes.dispute_request_reevaluation(dispute_id=large.pk, actor=admin_user)  # a second round
    client = client_for(admin_user)
    client.get(f"/console/disputes/{small.pk}/")
    assert count_queries(client, f"/console/disputes/{small.pk}/") == count_queries(
        client, f"/console/disputes/{large.pk}/"
    )


def test_both_rounds_are_shown_after_a_re_evaluation(admin_user):
    _, _, dispute = disputed()
    response = client_for(admin_user).post(f"/console/disputes/{dispute.pk}/reevaluate/")
    assert response.status_code == 302
    html = client_for(admin_user).get(f"/console/disputes/{dispute.pk}/").content.decode()
    assert "Evaluation round 1" in html
    assert "Evaluation round 2" in html
    assert "re-evaluation by a larger panel" in html


# --- ruling from the console -------------------------------------------------------------------------


def test_staff_rule_from_the_case_page(admin_user):
    engagement, escrow, dispute = disputed()
    client = client_for(admin_user)
    response = client.post(
        f"/console/disputes/{dispute.pk}/rule/",
        {"outcome": "split", "seller_share_bps": "2500", "rationale": "A quarter of the claims hold."},
    )
    assert response.status_code == 302
    page = client.get(response["Location"]).content.decode()
    assert "Dispute #" in page
    assert "ruled: split, 2500 bps" in page
    settlement = Settlement.objects.get(escrow=escrow)
    assert (settlement.seller_gross_minor, settlement.buyer_refund_minor) == (1250, 3750)
    # The parties see the ruling on the engagement page.
    buyer_page = client_for(engagement.buyer).get(f"/engagements/{engagement.pk}/").content.decode()
    assert "A quarter of the claims hold." in buyer_page
    assert "2500 of 10000" in buyer_page
    again = client.post(
        f"/console/disputes/{dispute.pk}/rule/", {"outcome": "release", "rationale": "Changed my mind."}
    )
    assert again.status_code == 409
    assert "already been ruled" in again.content.decode()
    assert Settlement.objects.count() == 1


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"outcome": "split", "seller_share_bps": "10001", "rationale": "r"}, "less than or equal to 10000"),
        ({"outcome": "split", "seller_share_bps": "-5", "rationale": "r"}, "greater than or equal to 0"),
        ({"outcome": "split", "seller_share_bps": "", "rationale": "r"}, "seller_share_bps"),
        ({"outcome": "split", "seller_share_bps": "5000", "rationale": "   "}, "This field is required"),
        ({"outcome": "maybe", "seller_share_bps": "5000", "rationale": "r"}, "Select a valid choice"),
    ],
)
def test_bad_rulings_are_shown_on_the_case_page_and_move_nothing(admin_user, data, message):
    _, _, dispute = disputed()
    entries = LedgerEntry.objects.count()
    response = client_for(admin_user).post(f"/console/disputes/{dispute.pk}/rule/", data)
    assert response.status_code == 400
    assert message in response.content.decode()
    assert LedgerEntry.objects.count() == entries
    assert Dispute.objects.get(pk=dispute.pk).status == "answered"


def test_an_inconclusive_evaluation_is_ruled_from_the_same_case_page(admin_user):
    _engagement, escrow = held()
    client = client_for(admin_user)
    page = client.get(f"/console/held/{escrow.pk}/").content.decode()
    assert "Why it is held" in page
    assert "inconclusive" in page
    assert "Rule and settle" in page
    response = client.post(
        f"/console/held/{escrow.pk}/rule/", {"outcome": "release", "rationale": "The rubric is met on reading."}
    )
    assert response.status_code == 302
    assert Settlement.objects.get(escrow=escrow).reason == "admin"
    assert f'href="/console/held/{escrow.pk}/"' not in client.get("/console/").content.decode()
    assert (
        client.post(f"/console/held/{escrow.pk}/rule/", {"outcome": "refund", "rationale": "again"}).status_code == 409
    )


# --- the parties' dispute panel ------------------------------------------------------------------------


def test_the_buyer_opens_a_dispute_with_a_file_from_the_engagement_page(media):
    engagement, escrow, _ = evaluated_engagement(good=True)
    buyer = client_for(engagement.buyer)
    page = buyer.get(f"/engagements/{engagement.pk}/").content.decode()
    assert "Dispute this outcome" in page
    assert (
        "Dispute this outcome"
        not in client_for(engagement.listing.seller).get(f"/engagements/{engagement.pk}/").content.decode()
    )  # a passed evaluation: only the buyer may dispute
    response = buyer.post(
        f"/engagements/{engagement.pk}/disputes/",
        {
            "reason": "Invented citations.",
            "evidence": "See the screenshot.",
            "attachments": [SimpleUploadedFile("s.png", PNG)],
        },
    )
    assert response.status_code == 302
    dispute = Dispute.objects.get()
    page = buyer.get(response["Location"]).content.decode()
    assert f"Dispute #{dispute.pk}" in page
    assert "Invented citations." in page
    assert "s.png" in page
    escrow.refresh_from_db()
    assert escrow.status == "held"


def test_a_disguised_file_is_refused_on_the_page_and_nothing_is_opened(media):
    engagement, _, _ = evaluated_engagement(good=True)
    response = client_for(engagement.buyer).post(
        f"/engagements/{engagement.pk}/disputes/",
        {"reason": "See the file.", "attachments": [SimpleUploadedFile("photo.png", b"%PDF-1.4 not a picture")]},
    )
    assert response.status_code == 415
    assert "the content is application/pdf" in response.content.decode()
    assert not Dispute.objects.exists()


def test_the_seller_answers_and_the_buyer_withdraws_from_the_page():
    engagement, escrow, dispute = disputed(answer=False)
    seller = client_for(engagement.listing.seller)
    assert "Answer the dispute" in seller.get(f"/engagements/{engagement.pk}/").content.decode()
    assert seller.post(f"/disputes/{dispute.pk}/answer/", {"answer": ""}).status_code == 400
    assert seller.post(f"/disputes/{dispute.pk}/answer/", {"answer": "They resolve."}).status_code == 302
    assert seller.post(f"/disputes/{dispute.pk}/withdraw/", {}).status_code == 403
    buyer = client_for(engagement.buyer)
    assert "Withdraw this dispute" in buyer.get(f"/engagements/{engagement.pk}/").content.decode()
    assert buyer.post(f"/disputes/{dispute.pk}/withdraw/", {"note": "ok"}).status_code == 302
    escrow.refresh_from_db()
    assert escrow.status == "funded"


def test_strangers_get_404_for_dispute_pages_and_files():
    engagement, _, dispute = disputed(files=1)
    file_id = dispute.files.get().pk
    stranger = client_for(BuyerFactory.create())
    assert stranger.post(f"/engagements/{engagement.pk}/disputes/", {"reason": "x"}).status_code == 404
    assert stranger.post(f"/disputes/{dispute.pk}/answer/", {"answer": "x"}).status_code == 404
    assert stranger.post(f"/disputes/{dispute.pk}/withdraw/", {}).status_code == 404
    assert stranger.get(f"/disputes/files/{file_id}/").status_code == 404
    assert client_for().get(f"/disputes/files/{file_id}/").status_code == 302  # to the login page
    for party in (engagement.buyer, engagement.listing.seller):
        download = client_for(party).get(f"/disputes/files/{file_id}/")
        assert download.status_code == 200
        assert b"".join(download.streaming_content) == PNG  # type: ignore[attr-defined]


def test_the_demo_has_open_and_ruled_disputes_in_the_console(client):
    from django.core.management import call_command

    call_command("seed_demo")
    call_command("seed_demo")  # idempotent
    statuses = sorted(Dispute.objects.values_list("status", flat=True))
    assert statuses == ["answered", "open", "ruled"]
    ruled = Dispute.objects.get(status="ruled")
    assert ruled.settlement.outcome == "split"
    client.force_login(UserFactory.create(role="", is_staff=True))
    queue = client.get("/console/").content.decode()
    for dispute in Dispute.objects.exclude(status="ruled"):
        assert f'href="/console/disputes/{dispute.pk}/"' in queue
    assert client.get(f"/console/disputes/{ruled.pk}/").status_code == 200
    assert "80% to the seller" in client.get(f"/console/disputes/{ruled.pk}/").content.decode()


def test_escalations_are_in_the_queue_and_resolved_from_it(admin_user):
    from django.utils import timezone

    from marketplace import services as marketplace
    from tests.factories import SellerFactory
    from trust.models import EscalationEvent, TrustPolicy

    seller = SellerFactory.create()
    listing = marketplace.listing_create(seller=seller, name="Slipping", price_minor=5000, currency="usd")
    policy = TrustPolicy.objects.create(
        name="Flag the slipping",
        metric=TrustPolicy.Metric.COMPLIANCE_LOWER,
        comparator=TrustPolicy.Comparator.LT,
        threshold=0.5,
        action=TrustPolicy.Action.FLAG_LISTING,
        owner=admin_user,
        next_review_at=timezone.now(),
    )
    event = EscalationEvent.objects.create(
        policy=policy,
        listing=listing,
        metric=policy.metric,
        comparator=policy.comparator,
        threshold=policy.threshold,
        metric_value=0.31,
        action=policy.action,
    )
    client = client_for(admin_user)
    page = client.get("/console/?kind=escalations").content.decode()
    assert f"Escalation #{event.pk}" in page
    assert "1 escalation" in page
    assert client.post(f"/console/escalations/{event.pk}/resolve/", {"note": ""}).status_code == 302
    event.refresh_from_db()
    assert event.status == "open"  # a resolution needs a note
    assert client.post(f"/console/escalations/{event.pk}/resolve/", {"note": "Reviewed the jobs."}).status_code == 302
    event.refresh_from_db()
    assert (event.status, event.resolution_note) == ("resolved", "Reviewed the jobs.")
    assert client.post("/console/escalations/999999/resolve/", {"note": "x"}).status_code == 404
    assert client_for(seller).post(f"/console/escalations/{event.pk}/resolve/", {"note": "x"}).status_code == 403
