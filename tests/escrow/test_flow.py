import datetime

import pytest
from django.utils import timezone

from core.errors import Conflict, NotAllowed
from core.models import EvidenceRecord
from core.selectors import evidence_chain_verify
from escrow import ledger
from escrow import services as escrow_services
from escrow.models import Escrow, EscrowTimer, LedgerEntry, OutboxItem, Settlement
from marketplace import services as marketplace_services
from marketplace.models import Engagement
from tests.escrow.conftest import agreed_engagement, evaluated_engagement, funded_engagement
from trust.models import SettledTask, TrustRecord

pytestmark = pytest.mark.django_db


def ledger_sums_to_zero() -> bool:
    from django.db.models import Sum

    return all(row["total"] == 0 for row in LedgerEntry.objects.values("currency").annotate(total=Sum("amount_minor")))


def test_funding_books_the_money_and_starts_the_delivery_clock():
    engagement, escrow = funded_engagement(price_minor=5000)
    assert escrow.status == "funded"
    assert engagement.status == "active"
    assert ledger.escrow_holding_balance(escrow) == 5000
    assert ledger_sums_to_zero()
    timer = EscrowTimer.objects.get(escrow=escrow)
    assert (timer.action, timer.due_at) == ("expire", engagement.delivery_due_at)
    assert EvidenceRecord.objects.filter(kind="escrow.funded").count() == 1


def test_funding_twice_is_a_conflict_and_books_nothing():
    engagement, _escrow = funded_engagement()
    with pytest.raises(Conflict, match="already funded"):
        escrow_services.escrow_fund(engagement_id=engagement.pk, actor=engagement.buyer)
    assert LedgerEntry.objects.count() == 2


def test_only_the_buyer_funds_and_only_an_agreed_engagement():
    engagement = agreed_engagement()
    with pytest.raises(NotAllowed):
        escrow_services.escrow_fund(engagement_id=engagement.pk, actor=engagement.listing.seller)
    assert not Escrow.objects.exists()


def test_a_passed_evaluation_schedules_release_after_the_review_window():
    engagement, escrow, evaluation = evaluated_engagement(good=True, review_hours=24)
    assert evaluation.outcome == "passed"
    timer = EscrowTimer.objects.get(escrow=escrow, action="release")
    assert timer.status == "pending"
    assert abs((timer.due_at - timezone.now()) - datetime.timedelta(hours=24)) < datetime.timedelta(minutes=1)
    assert escrow_services.escrow_fire_due_timers() == 0  # not due yet
    fired = escrow_services.escrow_fire_due_timers(now=timezone.now() + datetime.timedelta(hours=25))
    assert fired == 1
    settlement = Settlement.objects.get(escrow=escrow)
    assert (settlement.outcome, settlement.reason) == ("release", "review_window_lapsed")
    assert (settlement.seller_gross_minor, settlement.platform_fee_minor, settlement.seller_net_minor) == (
        5000,
        500,
        4500,
    )
    assert ledger.escrow_holding_balance(escrow) == 0
    assert Engagement.objects.get(pk=engagement.pk).status == "closed"
    assert ledger_sums_to_zero()
    assert evidence_chain_verify()[1] is None


def test_a_failed_evaluation_refunds_after_the_review_window():
    _engagement, escrow, evaluation = evaluated_engagement(good=False)
    assert evaluation.outcome == "failed"
    escrow_services.escrow_fire_due_timers(now=timezone.now() + datetime.timedelta(hours=73))
    settlement = Settlement.objects.get(escrow=escrow)
    assert (settlement.outcome, settlement.buyer_refund_minor, settlement.seller_gross_minor) == ("refund", 5000, 0)
    assert OutboxItem.objects.get(settlement=settlement).kind == "refund"


def test_the_buyer_releases_early_once():
    engagement, _escrow, _ = evaluated_engagement(good=True)
    settlement = escrow_services.escrow_release(engagement_id=engagement.pk, actor=engagement.buyer)
    assert settlement.reason == "buyer_released"
    with pytest.raises(Conflict, match="already been settled"):
        escrow_services.escrow_release(engagement_id=engagement.pk, actor=engagement.buyer)
    assert Settlement.objects.count() == 1
    assert escrow_services.escrow_fire_due_timers(now=timezone.now() + datetime.timedelta(days=10)) == 0


def test_releasing_before_the_evaluation_is_a_conflict():
    engagement, _ = funded_engagement()
    with pytest.raises(Conflict, match="evaluated"):
        escrow_services.escrow_release(engagement_id=engagement.pk, actor=engagement.buyer)
    assert not Settlement.objects.exists()


def test_an_undelivered_engagement_expires_at_its_deadline_and_refunds():
    engagement, escrow = funded_engagement()
    escrow_services.escrow_fire_due_timers(now=engagement.delivery_due_at + datetime.timedelta(seconds=1))
    engagement.refresh_from_db()
    assert engagement.status == "expired"
    settlement = Settlement.objects.get(escrow=escrow)
    assert (settlement.outcome, settlement.reason) == ("refund", "delivery_expired")
    # Never delivered: not one of the agent's tasks in its dispute rate.
    assert not SettledTask.objects.filter(engagement=engagement).exists()


def test_a_judged_job_that_settles_counts_as_a_settled_task():
    engagement, _escrow, _ = evaluated_engagement(good=True)
    escrow_services.escrow_release(engagement_id=engagement.pk, actor=engagement.buyer)
    assert SettledTask.objects.filter(engagement=engagement, listing=engagement.listing).exists()
    assert TrustRecord.objects.get(listing=engagement.listing, category="").settled_tasks == 1


def test_an_inconclusive_evaluation_holds_the_money_for_an_admin():
    engagement, escrow = funded_engagement()
    escrow_services.escrow_decide(engagement_id=engagement.pk, outcome="inconclusive")
    escrow.refresh_from_db()
    assert escrow.status == "held"
    assert "admin" in escrow.hold_reason
    assert not EscrowTimer.objects.filter(escrow=escrow, action__in=["release", "settle_failed"]).exists()
    # A conclusive re-evaluation frees the money and clears the hold's reason.
    escrow_services.escrow_decide(engagement_id=engagement.pk, outcome="passed")
    escrow.refresh_from_db()
    assert escrow.status == "funded"
    assert escrow.hold_reason == ""
    assert EscrowTimer.objects.filter(escrow=escrow, action="release", status="pending").exists()


def test_outbox_payout_books_the_money_leaving(django_capture_on_commit_callbacks):
    engagement, _escrow, _ = evaluated_engagement(good=True)
    settlement = escrow_services.escrow_release(engagement_id=engagement.pk, actor=engagement.buyer)
    item = OutboxItem.objects.get(settlement=settlement)
    done = escrow_services.outbox_perform(item_id=item.pk)
    assert done.status == "done"
    assert done.provider_reference.startswith("tr_sim_")
    assert escrow_services.outbox_perform(item_id=item.pk).provider_reference == done.provider_reference
    seller_payable = ledger.account(ledger.K.SELLER_PAYABLE, "usd", user_id=engagement.listing.seller_id)
    assert ledger.balance(seller_payable) == 0
    assert Settlement.objects.get(pk=settlement.pk).payout_status == "paid"
    assert ledger_sums_to_zero()


@pytest.mark.parametrize(
    ("share", "gross", "fee", "net", "refund"),
    [(0, 0, 0, 0, 5001), (10_000, 5001, 500, 4501, 0), (5000, 2500, 250, 2250, 2501), (3333, 1666, 166, 1500, 3335)],
)
def test_splits_move_exactly_the_money_they_say(share, gross, fee, net, refund):
    _engagement, escrow = funded_engagement(price_minor=5001)
    settlement = escrow_services.escrow_settle_share(
        escrow_id=escrow.pk, seller_share_bps=share, reason="admin", actor=None
    )
    got = (
        settlement.seller_gross_minor,
        settlement.platform_fee_minor,
        settlement.seller_net_minor,
        settlement.buyer_refund_minor,
    )
    assert got == (gross, fee, net, refund)
    assert ledger.escrow_holding_balance(escrow) == 0
    assert ledger_sums_to_zero()


def test_a_payment_that_arrives_after_cancellation_is_refunded():

    engagement = agreed_engagement()
    escrow, _ = escrow_services.escrow_fund(engagement_id=engagement.pk, actor=engagement.buyer, via_api=False)
    assert escrow.status == "awaiting_funds"
    marketplace_services.engagement_cancel(engagement_id=engagement.pk, actor=engagement.buyer)
    escrow_services.escrow_confirm_funding(escrow_id=escrow.pk, charge_reference="ch_late")
    escrow.refresh_from_db()
    assert escrow.status == "settled"
    settlement = Settlement.objects.get(escrow=escrow)
    assert (settlement.outcome, settlement.reason, settlement.buyer_refund_minor) == (
        "refund",
        "engagement_cancelled",
        5000,
    )
    assert ledger.escrow_holding_balance(escrow) == 0
    assert Engagement.objects.get(pk=engagement.pk).status == "cancelled"


def test_pro_rata_terms_split_a_failed_job_by_the_weight_of_clauses_passed():
    from tests.trust.conftest import RESEARCH_CLAUSES, deliver
    from tests.trust.test_pipeline import run_all
    from trust import services as trust_services

    # No critical clause, so a failure splits instead of refunding in full.
    clauses = [{**c, "severity": "major"} for c in RESEARCH_CLAUSES]
    engagement, escrow = funded_engagement(price_minor=8000, fee_bps=1000, settlement="pro_rata", clauses=clauses)
    deliverable = deliver(engagement, actions=("search", "payments"))
    evaluation = run_all(trust_services.evaluation_start(deliverable_id=deliverable.pk))
    assert evaluation.outcome == "failed"
    escrow_services.escrow_decide(engagement_id=engagement.pk, outcome="failed")
    escrow_services.escrow_fire_due_timers(now=timezone.now() + datetime.timedelta(hours=73))
    settlement = Settlement.objects.get(escrow=escrow)
    # Weights: cites 3 + fast 1 + quality 2 passed, scope 2 failed -> 6/8 of 8000 to the seller.
    assert (settlement.outcome, settlement.seller_gross_minor, settlement.buyer_refund_minor) == ("split", 6000, 2000)
    assert (settlement.platform_fee_minor, settlement.seller_net_minor) == (600, 5400)


def test_a_failed_critical_clause_refunds_in_full_even_under_pro_rata():
    _engagement, escrow, evaluation = evaluated_engagement(good=False, settlement="pro_rata")
    assert evaluation.outcome == "failed"
    escrow_services.escrow_fire_due_timers(now=timezone.now() + datetime.timedelta(hours=73))
    settlement = Settlement.objects.get(escrow=escrow)
    assert (settlement.outcome, settlement.buyer_refund_minor) == ("refund", escrow.amount_minor)
