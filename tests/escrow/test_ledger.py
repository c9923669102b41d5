"""The ledger's rules, enforced by ledger_post and by PostgreSQL itself."""

import threading

import pytest
from django.db import DatabaseError, IntegrityError, connection, transaction

from core.errors import Conflict
from escrow import ledger
from escrow import services as escrow_services
from escrow.models import LedgerEntry, LedgerTransaction, Settlement
from tests.escrow.conftest import evaluated_engagement, funded_engagement


@pytest.mark.django_db
def test_ledger_post_refuses_unbalanced_and_zero_legs():
    a = ledger.account(ledger.K.GATEWAY_CLEARING, "usd")
    b = ledger.account(ledger.K.PLATFORM_FEES, "usd")
    e = ledger.account(ledger.K.PLATFORM_FEES, "eur")
    with pytest.raises(ledger.UnbalancedTransaction):
        ledger.ledger_post(key="t1", kind="test", legs=[(a, -100), (b, 99)])
    with pytest.raises(ledger.UnbalancedTransaction):
        ledger.ledger_post(key="t2", kind="test", legs=[(a, -100), (e, 100)])  # sums to zero, but across currencies
    with pytest.raises(ledger.UnbalancedTransaction):
        ledger.ledger_post(key="t3", kind="test", legs=[(a, 0), (b, 0)])
    assert not LedgerTransaction.objects.exists()


@pytest.mark.django_db
def test_ledger_post_is_idempotent_per_key():
    a = ledger.account(ledger.K.GATEWAY_CLEARING, "usd")
    b = ledger.account(ledger.K.PLATFORM_FEES, "usd")
    first = ledger.ledger_post(key="k", kind="test", legs=[(a, -100), (b, 100)])
    assert ledger.ledger_post(key="k", kind="test", legs=[(b, 100), (a, -100)]).pk == first.pk
    with pytest.raises(Conflict):
        ledger.ledger_post(key="k", kind="test", legs=[(a, -5), (b, 5)])
    assert LedgerEntry.objects.count() == 2
    assert ledger.balance(b) == 100


@pytest.mark.django_db(transaction=True)
def test_postgres_refuses_an_unbalanced_transaction_at_commit():
    a = ledger.account(ledger.K.GATEWAY_CLEARING, "usd")
    b = ledger.account(ledger.K.PLATFORM_FEES, "usd")

    def post_raw(key: str, legs: list) -> None:
        """Write legs behind ledger_post's back, one row at a time, in one transaction."""
        with transaction.atomic():
            txn = LedgerTransaction.objects.create(idempotency_key=key, kind="test")
            for acct, amount in legs:
                LedgerEntry.objects.create(transaction=txn, account=acct, amount_minor=amount, currency="usd")

    with pytest.raises(IntegrityError, match="does not balance"):
        post_raw("raw", [(a, -100), (b, 90)])
    assert not LedgerTransaction.objects.filter(idempotency_key="raw").exists()
    # Balanced legs inserted one by one are fine: the check waits for commit.
    post_raw("raw-ok", [(a, -100), (b, 100)])
    assert LedgerEntry.objects.filter(transaction__idempotency_key="raw-ok").count() == 2


@pytest.mark.django_db(transaction=True)
def test_postgres_refuses_update_and_delete_of_entries():
    _, escrow = funded_engagement()
    entry = LedgerEntry.objects.filter(transaction__escrow=escrow).first()
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        LedgerEntry.objects.filter(pk=entry.pk).update(amount_minor=1)
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        LedgerEntry.objects.filter(pk=entry.pk).delete()
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        LedgerTransaction.objects.filter(pk=entry.transaction_id).update(memo="rewritten")
    entry.refresh_from_db()
    assert entry.amount_minor != 1


@pytest.mark.django_db(transaction=True)
def test_fifty_concurrent_release_and_refund_attempts_settle_exactly_once():
    engagement, escrow, _ = evaluated_engagement(good=True)
    barrier = threading.Barrier(50)
    outcomes: list[str] = []
    lock = threading.Lock()

    def attempt(i: int) -> None:
        try:
            barrier.wait()
            if i % 2:
                escrow_services.escrow_release(engagement_id=engagement.pk, actor=engagement.buyer)
            else:
                escrow_services.escrow_settle_share(escrow_id=escrow.pk, seller_share_bps=0, reason="admin", actor=None)
            result = "settled"
        except Conflict:
            result = "conflict"
        except Exception as exc:  # surfaced by the assertion below
            result = f"error: {type(exc).__name__}: {exc}"
        finally:
            connection.close()
        with lock:
            outcomes.append(result)

    threads = [threading.Thread(target=attempt, args=(i,)) for i in range(50)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(set(outcomes)) == ["conflict", "settled"], outcomes
    assert outcomes.count("settled") == 1
    assert Settlement.objects.filter(escrow=escrow).count() == 1
    assert LedgerTransaction.objects.filter(escrow=escrow, kind="settlement").count() == 1
    assert ledger.escrow_holding_balance(escrow) == 0
