"""Random sequences of money movements keep every ledger invariant."""

import contextlib
import datetime
from collections import Counter

import pytest
from django.db.models import Sum
from django.utils import timezone
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, invariant, rule, run_state_machine_as_test

from core.errors import Conflict, NotAllowed
from escrow import ledger
from escrow import services as escrow_services
from escrow.models import Escrow, LedgerAccount, LedgerEntry, OutboxItem, Settlement
from marketplace.models import Engagement
from tests.escrow.conftest import agreed_engagement
from tests.trust.conftest import deliver
from tests.trust.test_pipeline import run_all
from trust import services as trust_services

REFUSED = (Conflict, NotAllowed)


class MoneyMachine(RuleBasedStateMachine):
    agreed = Bundle("agreed")
    funded = Bundle("funded")
    # What the runs exercised, so the test can show it did more than nothing.
    seen: Counter = Counter()

    def __init__(self) -> None:
        super().__init__()
        self.clock = timezone.now()

    @rule(
        target=agreed,
        price=st.integers(min_value=1, max_value=10**7),
        fee=st.integers(0, 10_000),
        pro_rata=st.booleans(),
    )
    def open_engagement(self, price, fee, pro_rata):
        return agreed_engagement(
            price_minor=price, fee_bps=fee, settlement="pro_rata" if pro_rata else "all_or_nothing"
        ).pk

    @rule(target=funded, engagement_id=agreed)
    def fund(self, engagement_id):
        engagement = Engagement.objects.get(pk=engagement_id)
        try:
            escrow, _ = escrow_services.escrow_fund(engagement_id=engagement_id, actor=engagement.buyer)
        except REFUSED:
            return Escrow.objects.get(engagement_id=engagement_id).pk
        return escrow.pk

    @rule(escrow_id=funded, good=st.booleans())
    def deliver_and_evaluate(self, escrow_id, good):
        engagement = Escrow.objects.get(pk=escrow_id).engagement
        if engagement.status != "active":
            return
        deliverable = deliver(engagement, actions=("search",) if good else ("search", "payments"))
        evaluation = run_all(trust_services.evaluation_start(deliverable_id=deliverable.pk))
        escrow_services.escrow_decide(engagement_id=engagement.pk, outcome=evaluation.outcome)

    @rule(escrow_id=funded)
    def hold_for_admin(self, escrow_id):
        escrow = Escrow.objects.get(pk=escrow_id)
        if escrow.engagement.status == "evaluated":
            escrow_services.escrow_decide(engagement_id=escrow.engagement_id, outcome="inconclusive")

    @rule(escrow_id=funded)
    def release(self, escrow_id):
        engagement = Escrow.objects.get(pk=escrow_id).engagement
        with contextlib.suppress(*REFUSED):
            escrow_services.escrow_release(engagement_id=engagement.pk, actor=engagement.buyer)

    @rule(escrow_id=funded, share=st.sampled_from([0, 1, 2500, 5000, 9999, 10_000]))
    def rule_split(self, escrow_id, share):
        with contextlib.suppress(*REFUSED):
            escrow_services.escrow_settle_share(escrow_id=escrow_id, seller_share_bps=share, reason="admin", actor=None)

    @rule(escrow_id=funded, dispute=st.sampled_from(["dp_1", "dp_2"]))
    def card_chargeback_opens(self, escrow_id, dispute):
        if Escrow.objects.filter(pk=escrow_id, status__in=["funded", "held", "settled"]).exists():
            escrow_services.escrow_chargeback(escrow_id=escrow_id, dispute_id=dispute, status="needs_response")
            self.seen["chargebacks"] += 1

    @rule(escrow_id=funded, dispute=st.sampled_from(["dp_1", "dp_2"]), won=st.booleans())
    def card_chargeback_closes(self, escrow_id, dispute, won):
        if Escrow.objects.filter(pk=escrow_id, status__in=["funded", "held", "settled"]).exists():
            escrow_services.escrow_chargeback(escrow_id=escrow_id, dispute_id=dispute, status="won" if won else "lost")

    @rule(hours=st.integers(min_value=1, max_value=24 * 5))
    def time_passes(self, hours):
        self.clock += datetime.timedelta(hours=hours)
        escrow_services.escrow_fire_due_timers(now=self.clock)

    @rule()
    def worker_performs_the_outbox(self):
        for item_id in OutboxItem.objects.filter(status="pending").values_list("id", flat=True):
            escrow_services.outbox_perform(item_id=item_id)

    @invariant()
    def ledger_sums_to_zero_per_currency(self):
        for row in LedgerEntry.objects.values("currency").annotate(total=Sum("amount_minor")):
            assert row["total"] == 0, row

    @invariant()
    def holding_accounts_never_go_negative(self):
        # Seller payables may: a chargeback after a payout is a receivable from the seller.
        for acct in LedgerAccount.objects.filter(kind=ledger.K.ESCROW_HOLDING):
            assert ledger.balance(acct) >= 0, acct.code

    @invariant()
    def escrows_hold_exactly_what_their_status_says(self):
        for escrow in Escrow.objects.all():
            held = ledger.escrow_holding_balance(escrow)
            if escrow.status in ("funded", "held"):
                assert held == escrow.amount_minor
            elif escrow.status == "settled":
                assert held == 0
                # Settled by a settlement, or by a chargeback lost before one (the card network took it back).
                settlement = Settlement.objects.filter(escrow=escrow).first()
                if settlement is not None:
                    assert settlement.seller_gross_minor + settlement.buyer_refund_minor == escrow.amount_minor
            else:
                assert held == 0

    @invariant()
    def no_escrow_settles_twice(self):
        settled = Escrow.objects.filter(status="settled").count()
        assert Settlement.objects.count() <= settled
        assert Settlement.objects.values("escrow").distinct().count() == Settlement.objects.count()
        self.seen["settled"] = max(self.seen["settled"], settled)
        self.seen["held"] = max(self.seen["held"], Escrow.objects.filter(status="held").count())
        self.seen["paid_out"] = max(
            self.seen["paid_out"], LedgerEntry.objects.filter(transaction__kind__in=["payout", "refund"]).count()
        )


@pytest.mark.django_db
def test_random_money_movements_keep_the_ledger_invariants():
    run_state_machine_as_test(
        MoneyMachine,
        settings=settings(
            max_examples=30,
            stateful_step_count=20,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
        ),
    )
    # The random programs vary in what they reach; this fixed one walks every kind of
    # movement, so the invariants are known to have been checked on each of them.
    machine = MoneyMachine()
    invariants = [
        machine.ledger_sums_to_zero_per_currency,
        machine.holding_accounts_never_go_negative,
        machine.escrows_hold_exactly_what_their_status_says,
        machine.no_escrow_settles_twice,
    ]

    def checked(result=None):
        for invariant_check in invariants:
            invariant_check()
        return result

    engagements = [
        checked(machine.open_engagement(price=price, fee=fee, pro_rata=pro_rata))
        for price, fee, pro_rata in ((5000, 1000, False), (7001, 250, True), (999, 0, False))
    ]
    first, second, third = (checked(machine.fund(engagement_id)) for engagement_id in engagements)
    checked(machine.deliver_and_evaluate(first, good=True))
    checked(machine.release(first))
    checked(machine.deliver_and_evaluate(second, good=False))
    checked(machine.hold_for_admin(second))
    checked(machine.rule_split(second, share=2500))
    checked(machine.card_chargeback_opens(third, dispute="dp_fixed_1"))
    checked(machine.card_chargeback_closes(third, dispute="dp_fixed_1", won=False))
    checked(machine.card_chargeback_opens(first, dispute="dp_fixed_2"))
    checked(machine.worker_performs_the_outbox())
    checked(machine.time_passes(hours=24 * 5))
    assert Escrow.objects.filter(pk__in=[first, second, third], status="settled").count() == 3
    assert MoneyMachine.seen["settled"] > 0
    assert MoneyMachine.seen["paid_out"] > 0
    assert MoneyMachine.seen["chargebacks"] > 0
