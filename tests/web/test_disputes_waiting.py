"""Disputes waiting for the signed-in user's answer: on the seller dashboard and on My engagements."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from escrow import disputes
from tests.escrow.conftest import evaluated_engagement
from tests.web.conftest import client_for

pytestmark = pytest.mark.django_db


def open_dispute(engagement, *, by, reason="The citations are invented."):
    return disputes.dispute_open(engagement_id=engagement.pk, actor=by, reason=reason, evidence="", files=[])


def page(user, url) -> str:
    response = client_for(user).get(url)
    assert response.status_code == 200
    return response.content.decode()


def test_the_seller_dashboard_lists_a_buyers_dispute_with_its_answer_deadline():
    engagement, _, _ = evaluated_engagement(good=True)
    seller = engagement.listing.seller
    assert "No dispute needs your answer." in page(seller, "/seller/")

    dispute = open_dispute(engagement, by=engagement.buyer)

    body = page(seller, "/seller/")
    assert "Disputes waiting for your answer" in body
    assert f'href="/engagements/{engagement.pk}/#dispute">Dispute #{dispute.pk} · engagement #{engagement.pk}' in body
    assert f"opened by the buyer ({engagement.buyer.username}): The citations are invented." in body
    assert f'Answer by <time datetime="{dispute.answer_due_at.isoformat()}' in body
    # The buyer opened it: nothing for them to answer.
    assert "Disputes waiting for your answer" not in page(engagement.buyer, "/engagements/")

    disputes.dispute_answer(dispute_id=dispute.pk, actor=seller, answer="Every citation resolves.")
    assert "No dispute needs your answer." in page(seller, "/seller/")


def test_the_buyer_sees_a_sellers_dispute_on_my_engagements():
    engagement, _, evaluation = evaluated_engagement(good=False)
    assert evaluation.outcome == "failed"
    dispute = open_dispute(engagement, by=engagement.listing.seller, reason="The scope judge misread the log.")

    body = page(engagement.buyer, "/engagements/")
    assert "Disputes waiting for your answer" in body
    assert f'href="/engagements/{engagement.pk}/#dispute">Dispute #{dispute.pk}' in body
    assert "opened by the seller" in body
    # The seller opened it; their dashboard has nothing to answer.
    assert "No dispute needs your answer." in page(engagement.listing.seller, "/seller/")


def test_a_closed_answer_window_is_no_longer_listed():
    engagement, _, _ = evaluated_engagement(good=True)
    dispute = open_dispute(engagement, by=engagement.buyer)
    type(dispute).objects.filter(pk=dispute.pk).update(answer_due_at=dispute.created_at)
    assert "No dispute needs your answer." in page(engagement.listing.seller, "/seller/")


def _queries(user, url) -> int:
    client = client_for(user)
    with CaptureQueriesContext(connection) as captured:
        assert client.get(url).status_code == 200
    return len(captured.captured_queries)


def test_the_disputes_block_reads_a_constant_number_of_queries():
    engagement, _, _ = evaluated_engagement(good=True)
    seller = engagement.listing.seller
    open_dispute(engagement, by=engagement.buyer)
    one_dashboard = _queries(seller, "/seller/")
    one_list = _queries(seller, "/engagements/")

    # Two more disputes against the same seller, on two more of its engagements.
    for _ in range(2):
        other, _, _ = evaluated_engagement(good=True)
        other.listing.seller = seller
        other.listing.save(update_fields=["seller"])
        open_dispute(other, by=other.buyer)

    body = page(seller, "/seller/")
    assert body.count("Answer by") == 3
    assert _queries(seller, "/seller/") == one_dashboard
    assert _queries(seller, "/engagements/") == one_list
