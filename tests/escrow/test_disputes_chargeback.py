"""Our disputes and card chargebacks on the same payment: the card network decides first."""

from __future__ import annotations

import pytest

from core.errors import Conflict
from escrow import disputes, ledger
from escrow import services as escrow_services
from escrow.models import Dispute, Escrow, EscrowTimer, Settlement
from escrow.selectors import held_escrows
from tests.escrow.conftest import evaluated_engagement, funded_engagement
from tests.escrow.test_disputes import open_dispute
from tests.factories import TrustPolicyFactory, UserFactory
from tests.trust.conftest import deliver
from tests.trust.test_pipeline import run_all
from trust import services as trust_services

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff():
    return UserFactory.create(role="", is_staff=True)


def test_no_ruling_while_a_chargeback_is_open(staff):
    engagement, escrow, _ = evaluated_engagement(good=True)
    dispute = open_dispute(engagement)
    escrow_services.escrow_chargeback(escrow_id=escrow.pk, dispute_id="dp_1", status="needs_response")
    escrow.refresh_from_db()
    assert (escrow.status, escrow.chargeback_open) == ("held", True)
    with pytest.raises(Conflict, match="chargeback"):
        disputes.dispute_rule(
            dispute_id=dispute.pk, actor=staff, outcome="release", seller_share_bps=None, rationale="Fine."
        )
    assert not Settlement.objects.exists()
    assert Dispute.objects.get(pk=dispute.pk).status == "open"


def test_withdrawing_during_a_chargeback_keeps_the_money_held_until_the_card_network_decides():
    engagement, escrow, _ = evaluated_engagement(good=True)
    dispute = open_dispute(engagement)
    escrow_services.escrow_chargeback(escrow_id=escrow.pk, dispute_id="dp_2", status="needs_response")
    disputes.dispute_withdraw(dispute_id=dispute.pk, actor=engagement.buyer)
    escrow.refresh_from_db()
    assert escrow.status == "held"
    assert escrow.hold_reason == escrow_services.CHARGEBACK_HOLD_REASON
    # The release timer came back, but firing it while the chargeback is open moves nothing.
    timer = EscrowTimer.objects.get(escrow=escrow, action="release")
    assert timer.status == "pending"
    assert escrow_services.escrow_timer_fire(timer_id=timer.pk, now=timer.due_at) == "nothing to do"
    assert not Settlement.objects.exists()
    # Won: the hold lifts and the lapsed review window applies at once.
    escrow_services.escrow_chargeback(escrow_id=escrow.pk, dispute_id="dp_2", status="won")
    escrow.refresh_from_db()
    assert (escrow.status, escrow.chargeback_open, escrow.hold_reason) == ("funded", False, "")
    timer.refresh_from_db()
    assert timer.status == "pending"
    escrow_services.escrow_timer_fire(timer_id=timer.pk, now=timer.due_at)
    assert Settlement.objects.get(escrow=escrow).outcome == "release"


def test_a_chargeback_won_during_a_dispute_leaves_the_dispute_in_charge(staff):
    engagement, escrow, _ = evaluated_engagement(good=True)
    dispute = open_dispute(engagement)
    escrow_services.escrow_chargeback(escrow_id=escrow.pk, dispute_id="dp_3", status="needs_response")
    escrow_services.escrow_chargeback(escrow_id=escrow.pk, dispute_id="dp_3", status="won")
    escrow.refresh_from_db()
    assert (escrow.status, escrow.chargeback_open) == ("held", False)
    assert escrow.hold_reason == disputes.hold_reason_for(dispute)
    disputes.dispute_rule(dispute_id=dispute.pk, actor=staff, outcome="refund", seller_share_bps=None, rationale="No.")
    assert Settlement.objects.get(escrow=escrow).buyer_refund_minor == escrow.amount_minor


def test_a_chargeback_lost_during_a_dispute_ends_the_dispute():
    engagement, escrow, _ = evaluated_engagement(good=True)
    dispute = open_dispute(engagement)
    escrow_services.escrow_chargeback(escrow_id=escrow.pk, dispute_id="dp_4", status="needs_response")
    escrow_services.escrow_chargeback(escrow_id=escrow.pk, dispute_id="dp_4", status="lost")
    escrow.refresh_from_db()
    dispute.refresh_from_db()
    engagement.refresh_from_db()
    assert (escrow.status, engagement.status) == ("settled", "closed")
    assert dispute.status == "withdrawn"
    assert dispute.status_changes.last().reason.startswith("card chargeback dp_4 lost")
    assert ledger.escrow_holding_balance(escrow) == 0
    assert not Settlement.objects.exists()  # the card network refunded the buyer; we paid nothing
    assert not held_escrows().filter(pk=escrow.pk).exists()


def test_a_manual_release_not_done_in_the_review_window_goes_to_an_admin(staff):
    TrustPolicyFactory.create(action="require_manual_release", owner=staff)
    _, escrow, _ = evaluated_engagement(good=True)
    assert escrow.manual_release_required is True
    timer = EscrowTimer.objects.get(escrow=escrow, status="pending")
    assert timer.action == "manual_release"
    escrow_services.escrow_timer_fire(timer_id=timer.pk, now=timer.due_at)
    escrow.refresh_from_db()
    assert escrow.status == "held"
    assert escrow.hold_reason == escrow_services.MANUAL_RELEASE_HOLD_REASON
    assert held_escrows().filter(pk=escrow.pk).exists()  # in the staff console's queue
    assert not Settlement.objects.exists()
    settlement = disputes.escrow_rule_held(
        escrow_id=escrow.pk, actor=staff, outcome="release", seller_share_bps=None, rationale="Delivered as agreed."
    )
    assert settlement.outcome == "release"


@pytest.mark.parametrize(("good", "action"), [(True, "release"), (False, "settle_failed")])
def test_an_evaluation_that_finished_during_a_chargeback_is_decided_when_it_is_won(good, action):
    engagement, escrow = funded_engagement()
    escrow_services.escrow_chargeback(escrow_id=escrow.pk, dispute_id="dp_5", status="needs_response")
    deliverable = deliver(engagement, actions=("search", "read") if good else ("search", "payments"))
    evaluation = run_all(trust_services.evaluation_start(deliverable_id=deliverable.pk))
    escrow_services.escrow_decide(engagement_id=engagement.pk, outcome=evaluation.outcome)
    assert not EscrowTimer.objects.filter(escrow=escrow, status="pending").exists()  # frozen
    escrow_services.escrow_chargeback(escrow_id=escrow.pk, dispute_id="dp_5", status="won")
    escrow.refresh_from_db()
    assert escrow.status == "funded"
    assert EscrowTimer.objects.get(escrow=escrow, status="pending").action == action


def test_upheld_is_judged_against_the_contested_evaluation(staff):
    engagement, escrow, _ = evaluated_engagement(good=True)
    dispute = open_dispute(engagement)  # the buyer contests a pass (default: full release)
    # A re-evaluation during the case records another outcome on the escrow; the contested one stands.
    Escrow.objects.filter(pk=escrow.pk).update(evaluation_outcome="failed")
    ruled = disputes.dispute_rule(
        dispute_id=dispute.pk, actor=staff, outcome="refund", seller_share_bps=None, rationale="The buyer was right."
    )
    assert ruled.upheld is True


def test_the_dispute_window_follows_a_manual_release_timer(staff):
    TrustPolicyFactory.create(action="require_manual_release", owner=staff)
    TrustPolicyFactory.create(action="extend_review_window", extra_review_hours=48, owner=staff)
    engagement, escrow, evaluation = evaluated_engagement(good=True)
    timer = EscrowTimer.objects.get(escrow=escrow, status="pending")
    assert timer.action == "manual_release"
    assert disputes.dispute_window_closes_at(escrow, evaluation) == timer.due_at
    open_dispute(engagement)  # still inside the (extended) window


def test_an_evaluation_leaves_a_part_lost_chargeback_with_the_admin():
    engagement, escrow = funded_engagement()
    escrow_services.escrow_chargeback(escrow_id=escrow.pk, dispute_id="dp_6", status="lost", amount=2000)
    deliverable = deliver(engagement)
    evaluation = run_all(trust_services.evaluation_start(deliverable_id=deliverable.pk))
    escrow_services.escrow_decide(engagement_id=engagement.pk, outcome=evaluation.outcome)
    escrow.refresh_from_db()
    assert escrow.status == "held"
    assert "an admin settles" in escrow.hold_reason
    assert not EscrowTimer.objects.filter(escrow=escrow, status="pending").exists()
    assert held_escrows().filter(pk=escrow.pk).exists()


def test_a_chargeback_lost_before_delivery_ends_the_job():
    engagement, escrow = funded_engagement()
    escrow_services.escrow_chargeback(escrow_id=escrow.pk, dispute_id="dp_7", status="lost")
    engagement.refresh_from_db()
    escrow.refresh_from_db()
    assert (escrow.status, engagement.status) == ("settled", "expired")


def test_a_chargeback_lost_while_the_job_was_being_judged_closes_it():
    engagement, escrow = funded_engagement()
    deliverable = deliver(engagement)
    escrow_services.escrow_chargeback(escrow_id=escrow.pk, dispute_id="dp_8", status="lost")
    evaluation = run_all(trust_services.evaluation_start(deliverable_id=deliverable.pk))
    escrow_services.escrow_decide(engagement_id=engagement.pk, outcome=evaluation.outcome)
    engagement.refresh_from_db()
    assert engagement.status == "closed"
    assert not Settlement.objects.filter(escrow=escrow).exists()
