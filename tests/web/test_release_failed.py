"""Releasing after a failed evaluation: the page says plainly that the job failed and what the
review window's end does, and the release form asks for an explicit confirmation."""

from __future__ import annotations

import pytest

from escrow import services as escrow_services
from escrow.models import Escrow, Settlement
from tests.escrow.conftest import evaluated_engagement, funded_engagement
from tests.trust.conftest import RESEARCH_CLAUSES, deliver
from tests.trust.test_pipeline import run_all
from tests.web.conftest import client_for
from trust import services as trust_services
from web.forms import ReleaseForm

pytestmark = pytest.mark.django_db

CONFIRM = 'name="release-confirm_failed"'


def page(client, engagement) -> str:
    response = client.get(f"/engagements/{engagement.pk}/")
    assert response.status_code == 200
    return response.content.decode()


def test_a_failed_job_says_so_and_what_the_end_of_the_review_window_does():
    engagement, escrow, evaluation = evaluated_engagement(good=False)
    assert evaluation.outcome == "failed"
    due = escrow.timers.get(action="settle_failed").due_at

    body = page(client_for(engagement.buyer), engagement)

    assert "Happy with it?" not in body
    assert "The judges found this job failed" in body
    assert "and a critical clause failed" in body
    assert f'on <strong><time datetime="{due.isoformat()}">' in body
    assert "the buyer gets a full refund" in body
    assert "unless the seller disputes the evaluation first" in body
    # The status badge follows the outcome: failed is red, not green.
    assert '<span class="badge badge-large badge-bad">Evaluated: failed</span>' in body
    # The release form asks for the confirmation.
    assert CONFIRM in body
    assert ReleaseForm.CONFIRM_LABEL in body
    assert ">Release anyway</button>" in body
    assert f'action="/engagements/{engagement.pk}/release/#escrow"' in body

    seller_page = page(client_for(engagement.listing.seller), engagement)
    assert "unless you dispute the evaluation first" in seller_page
    assert CONFIRM not in seller_page


def test_a_failed_job_under_pro_rata_terms_says_it_splits():
    clauses = [{**c, "severity": "major"} for c in RESEARCH_CLAUSES]  # no critical clause: a failure splits
    engagement, _escrow = funded_engagement(settlement="pro_rata", clauses=clauses)
    deliverable = deliver(engagement, actions=("search", "payments"))
    evaluation = run_all(trust_services.evaluation_start(deliverable_id=deliverable.pk))
    escrow_services.escrow_decide(engagement_id=engagement.pk, outcome=evaluation.outcome)
    assert evaluation.outcome == "failed"

    body = page(client_for(engagement.buyer), engagement)

    assert "the money is split as the pact's terms say" in body
    assert "full refund" not in body


def test_releasing_a_failed_job_without_the_confirmation_moves_nothing():
    engagement, escrow, _ = evaluated_engagement(good=False)
    buyer = client_for(engagement.buyer)

    refused = buyer.post(f"/engagements/{engagement.pk}/release/", {})

    assert refused.status_code == 400
    body = refused.content.decode()
    assert ReleaseForm.CONFIRM_MISSING in body
    assert CONFIRM in body
    assert not Settlement.objects.filter(escrow=escrow).exists()
    escrow.refresh_from_db()
    assert escrow.status == Escrow.Status.FUNDED


def test_releasing_a_failed_job_with_the_confirmation_pays_the_seller():
    engagement, escrow, _ = evaluated_engagement(good=False)
    buyer = client_for(engagement.buyer)

    released = buyer.post(f"/engagements/{engagement.pk}/release/", {"release-confirm_failed": "on"}, follow=True)

    assert any("goes to the seller" in str(m) for m in released.context["messages"])
    settlement = Settlement.objects.get(escrow=escrow)
    assert (settlement.outcome, settlement.reason) == ("release", "buyer_released")


def test_a_passed_job_keeps_the_one_click_release():
    engagement, escrow, _ = evaluated_engagement(good=True)
    buyer = client_for(engagement.buyer)

    body = page(buyer, engagement)
    assert "Happy with it?" in body
    assert '<span class="badge badge-large badge-ok">Evaluated: passed</span>' in body
    assert ">Release now</button>" in body
    assert CONFIRM not in body
    assert "found this job failed" not in body

    assert buyer.post(f"/engagements/{engagement.pk}/release/", {}).status_code == 302
    assert Settlement.objects.get(escrow=escrow).outcome == "release"
