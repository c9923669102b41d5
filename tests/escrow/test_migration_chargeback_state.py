"""Migration 0006 carries the chargeback and manual-release state the old code kept elsewhere."""

from __future__ import annotations

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from escrow import ledger
from escrow.models import Escrow, EscrowStatusChange, EscrowTimer
from tests.escrow.conftest import evaluated_engagement, funded_engagement

BEFORE = [("escrow", "0005_disputes")]
AFTER = [("escrow", "0006_chargeback_open_manual_release")]


@pytest.mark.django_db(transaction=True)
def test_the_migration_books_part_lost_chargebacks_and_flags_open_ones():
    _, part_lost = funded_engagement()
    _, noted, _ = evaluated_engagement(good=True)
    _, manual, _ = evaluated_engagement(good=True)
    executor = MigrationExecutor(connection)
    executor.migrate(BEFORE)
    try:
        # The state the old code left behind, written as it wrote it.
        Escrow.objects.filter(pk=part_lost.pk).update(
            status="held", hold_reason="card chargeback lost for 2000 of 5000: an admin settles"
        )
        Escrow.objects.filter(pk=noted.pk).update(status="held", hold_reason="dispute #9 is open: an admin rules")
        EscrowStatusChange.objects.create(
            escrow_id=noted.pk, from_status="held", to_status="held", reason="card chargeback dp_9 opened"
        )
        EscrowTimer.objects.filter(escrow_id=manual.pk).delete()
        Escrow.objects.filter(pk=manual.pk).update(manual_release_required=True)
        EscrowStatusChange.objects.create(
            escrow_id=manual.pk, from_status="funded", to_status="funded", reason="no auto-release: trust policy x"
        )
    finally:
        executor = MigrationExecutor(connection)
        executor.loader.build_graph()
        executor.migrate(AFTER)
    part_lost.refresh_from_db()
    assert ledger.escrow_holding_balance(part_lost) == 3000  # only the rest can be settled
    assert part_lost.hold_reason.endswith("an admin settles the 3000 left")
    assert part_lost.chargeback_open is False
    noted.refresh_from_db()
    assert noted.chargeback_open is True
    timer = EscrowTimer.objects.get(escrow_id=manual.pk, status="pending")
    assert timer.action == "manual_release"
