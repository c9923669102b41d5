"""Where a dispute stands is worded by its status, on the engagement page's next step, its escrow
panel and its dispute panel: open (waiting for the other side's answer until a time), answered or
under review (with Pactum staff for a ruling), ruled (the outcome), withdrawn."""

from __future__ import annotations

import datetime

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from escrow import disputes
from tests.escrow.conftest import evaluated_engagement
from tests.factories import UserFactory
from tests.web.conftest import client_for

pytestmark = pytest.mark.django_db

RAW_HOLD = "is open: an admin rules"


def opened():
    engagement, escrow, _ = evaluated_engagement(good=True)
    dispute = disputes.dispute_open(
        engagement_id=engagement.pk, actor=engagement.buyer, reason="Invented citations.", evidence="", files=[]
    )
    return engagement, escrow, dispute


def page(engagement, user=None) -> str:
    response = client_for(user or engagement.buyer).get(f"/engagements/{engagement.pk}/")
    assert response.status_code == 200
    return response.content.decode()


def section(html: str, marker: str) -> str:
    start = html.index(marker)
    return html[start : html.index("</section>", start)]


def test_an_open_dispute_waits_for_the_other_sides_answer_until_its_deadline():
    engagement, _, dispute = opened()
    html = page(engagement)
    due = dispute.answer_due_at.isoformat()
    waiting = f'Dispute #{dispute.pk} is waiting for the seller\'s answer until <time datetime="{due}">'
    assert waiting in section(html, 'id="next-step"')
    assert waiting in section(html, 'id="escrow"')
    assert "Held while the dispute is settled:" in html
    assert waiting in section(html, 'id="dispute"')
    assert RAW_HOLD not in html


def test_an_answered_dispute_is_with_staff_for_a_ruling():
    engagement, _, dispute = opened()
    seller = client_for(engagement.listing.seller)
    answered = seller.post(f"/disputes/{dispute.pk}/answer/", {"answer": "Every citation resolves."}, follow=True)
    assert any("with Pactum staff for a ruling" in str(m) for m in answered.context["messages"])

    html = page(engagement)
    text = (
        f"Dispute #{dispute.pk} is answered: both sides have stated their case, "
        "and it is with Pactum staff for a ruling."
    )
    for marker in ('id="next-step"', 'id="escrow"', 'id="dispute"'):
        assert text in section(html, marker)
    assert "is waiting for" not in html
    assert RAW_HOLD not in html


def test_a_lapsed_answer_window_is_under_review():
    engagement, _, dispute = opened()
    disputes.dispute_answer_lapse(dispute_id=dispute.pk, now=dispute.answer_due_at + datetime.timedelta(minutes=1))
    html = page(engagement, engagement.listing.seller)
    assert f"Dispute #{dispute.pk} is with Pactum staff for a ruling (the seller did not answer in time)." in section(
        html, 'id="escrow"'
    )


def test_a_ruled_dispute_states_the_outcome_and_a_withdrawn_one_says_so():
    engagement, _, dispute = opened()
    staff = UserFactory.create(role="", is_staff=True)
    disputes.dispute_rule(
        dispute_id=dispute.pk, actor=staff, outcome="split", seller_share_bps=8000, rationale="Mostly delivered."
    )
    engagement.refresh_from_db()
    html = page(engagement)
    assert "Mostly delivered." in html
    assert f"Dispute #{dispute.pk} was ruled: split, 80% to the seller." in section(html, 'id="next-step"')
    assert RAW_HOLD not in html

    other, _, withdrawn = opened()
    disputes.dispute_withdraw(dispute_id=withdrawn.pk, actor=other.buyer, note="Resolved between us.")
    html = page(other)
    assert f"Dispute #{withdrawn.pk} was withdrawn by the buyer; the evaluation's decision applies again." in section(
        html, 'id="dispute"'
    )


def test_the_engagement_page_reads_the_dispute_once():
    engagement, _, dispute = opened()
    client = client_for(engagement.buyer)
    with CaptureQueriesContext(connection) as captured:
        assert client.get(f"/engagements/{engagement.pk}/").status_code == 200
    dispute_reads = [q for q in captured.captured_queries if 'FROM "escrow_dispute"' in q["sql"]]
    assert len(dispute_reads) == 1
    assert timezone.now() < dispute.answer_due_at
