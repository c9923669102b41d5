"""The one writer of the ledger, and balances (always sums, never counters)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

from django.db import IntegrityError, transaction
from django.db.models import Sum

from core.errors import Conflict
from escrow.models import Escrow, LedgerAccount, LedgerEntry, LedgerTransaction

K = LedgerAccount.Kind


class UnbalancedTransaction(ValueError):
    pass


def account(kind: str, currency: str, *, escrow: Escrow | None = None, user_id: int | None = None) -> LedgerAccount:
    """The ledger account of this kind (per escrow for holding, per user for payables), created on first use."""
    owner = f":escrow:{escrow.pk}" if escrow is not None else (f":user:{user_id}" if user_id is not None else "")
    code = f"{kind}:{currency}{owner}"
    found = LedgerAccount.objects.filter(code=code).first()
    if found is not None:
        return found
    try:
        with transaction.atomic():
            return LedgerAccount.objects.create(code=code, kind=kind, currency=currency, escrow=escrow, user_id=user_id)
    except IntegrityError:  # created concurrently
        return LedgerAccount.objects.get(code=code)


Leg = tuple[LedgerAccount, int]


@transaction.atomic
def ledger_post(
    *, key: str, kind: str, legs: Sequence[Leg], escrow: Escrow | None = None, memo: str = ""
) -> LedgerTransaction:
    """Post one balanced transaction, exactly once per `key`.

    Refuses legs of zero and transactions that do not sum to zero per currency.
    Posting the same key again returns the first transaction when its legs are
    the same, and is a conflict when they differ.
    """
    totals: dict[str, int] = defaultdict(int)
    for acct, amount in legs:
        if not isinstance(amount, int) or isinstance(amount, bool) or amount == 0:
            raise UnbalancedTransaction(f"leg amounts are non-zero integers, got {amount!r}")
        totals[acct.currency] += amount
    unbalanced = {c: t for c, t in totals.items() if t != 0}
    if not legs or unbalanced:
        raise UnbalancedTransaction(f"transaction {key} does not balance: {unbalanced or 'no legs'}")
    existing = LedgerTransaction.objects.filter(idempotency_key=key).first()
    if existing is not None:
        return _same_or_conflict(existing, legs)
    try:
        with transaction.atomic():
            txn = LedgerTransaction.objects.create(idempotency_key=key, kind=kind, escrow=escrow, memo=memo[:300])
    except IntegrityError:  # the same key posted concurrently
        return _same_or_conflict(LedgerTransaction.objects.get(idempotency_key=key), legs)
    LedgerEntry.objects.bulk_create(
        LedgerEntry(transaction=txn, account=acct, amount_minor=amount, currency=acct.currency) for acct, amount in legs
    )
    return txn


def _same_or_conflict(existing: LedgerTransaction, legs: Sequence[Leg]) -> LedgerTransaction:
    posted = sorted(existing.entries.values_list("account_id", "amount_minor"))
    if posted != sorted((acct.pk, amount) for acct, amount in legs):
        raise Conflict(f"Ledger transaction {existing.idempotency_key} was already posted with other legs.")
    return existing


def balance(acct: LedgerAccount) -> int:
    return int(LedgerEntry.objects.filter(account=acct).aggregate(total=Sum("amount_minor"))["total"] or 0)


def escrow_holding_balance(escrow: Escrow) -> int:
    return int(
        LedgerEntry.objects.filter(account__kind=K.ESCROW_HOLDING, account__escrow=escrow).aggregate(
            total=Sum("amount_minor")
        )["total"]
        or 0
    )
