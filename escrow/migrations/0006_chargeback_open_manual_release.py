import datetime
import re

from django.db import migrations, models

CHARGEBACK = "card chargeback"
PART_LOST = re.compile(r"^card chargeback lost for (\d+) of (\d+): an admin settles$")


def mark_open_chargebacks(apps, schema_editor):
    """Carry the state the old code kept in hold reasons and history rows into the new fields.

    - An unsettled escrow whose latest chargeback history row says "… opened" has a chargeback
      open (the old code only noted it when the escrow was already held for something else).
    - A chargeback lost in part was left for an admin without booking the part the card network
      returned: book it now (escrow holding -N, gateway clearing +N), so only the rest is settled.
    """
    Escrow = apps.get_model("escrow", "Escrow")
    EscrowStatusChange = apps.get_model("escrow", "EscrowStatusChange")
    LedgerAccount = apps.get_model("escrow", "LedgerAccount")
    LedgerTransaction = apps.get_model("escrow", "LedgerTransaction")
    LedgerEntry = apps.get_model("escrow", "LedgerEntry")
    for escrow in Escrow.objects.filter(status__in=["funded", "held"]):
        latest = (
            EscrowStatusChange.objects.filter(escrow=escrow, reason__startswith=CHARGEBACK)
            .order_by("-created_at", "-id")
            .values_list("reason", flat=True)
            .first()
        )
        if escrow.hold_reason == CHARGEBACK or (latest or "").endswith(" opened"):
            escrow.chargeback_open = True
            escrow.save(update_fields=["chargeback_open"])
        lost = PART_LOST.match(escrow.hold_reason)
        if lost is None:
            continue
        returned = int(lost.group(1))
        key = f"escrow:{escrow.pk}:chargeback-returned"
        if returned <= 0 or LedgerTransaction.objects.filter(idempotency_key=key).exists():
            continue
        holding = LedgerAccount.objects.get(code=f"escrow_holding:{escrow.currency}:escrow:{escrow.pk}")
        clearing, _ = LedgerAccount.objects.get_or_create(
            code=f"gateway_clearing:{escrow.currency}",
            defaults={"kind": "gateway_clearing", "currency": escrow.currency},
        )
        txn = LedgerTransaction.objects.create(
            idempotency_key=key,
            kind="chargeback",
            escrow=escrow,
            memo=f"chargeback lost in part: the card network refunded the buyer {returned}",
        )
        LedgerEntry.objects.create(transaction=txn, account=holding, amount_minor=-returned, currency=escrow.currency)
        LedgerEntry.objects.create(transaction=txn, account=clearing, amount_minor=returned, currency=escrow.currency)
        escrow.hold_reason = (
            f"{CHARGEBACK} lost for {returned} of {escrow.amount_minor}: "
            f"an admin settles the {escrow.amount_minor - returned} left"
        )
        escrow.save(update_fields=["hold_reason"])


def schedule_overdue_manual_releases(apps, schema_editor):
    """Escrows that needed a manual release used to wait with no timer: give each the timer that
    hands it to an admin when its review window ends (from the moment the policy applied)."""
    Escrow = apps.get_model("escrow", "Escrow")
    EscrowStatusChange = apps.get_model("escrow", "EscrowStatusChange")
    EscrowTimer = apps.get_model("escrow", "EscrowTimer")
    for escrow in Escrow.objects.filter(status="funded", manual_release_required=True).select_related(
        "engagement__pact_version"
    ):
        if EscrowTimer.objects.filter(escrow=escrow, status="pending").exists():
            continue
        decided = (
            EscrowStatusChange.objects.filter(escrow=escrow, reason__startswith="no auto-release")
            .order_by("-created_at", "-id")
            .values_list("created_at", flat=True)
            .first()
        ) or escrow.updated_at
        terms = escrow.engagement.pact_version.terms if escrow.engagement.pact_version_id else {}
        due = decided + datetime.timedelta(hours=terms.get("review_window_hours", 72))
        EscrowTimer.objects.update_or_create(
            escrow=escrow, action="manual_release", defaults={"due_at": due, "status": "pending", "result": ""}
        )


class Migration(migrations.Migration):
    dependencies = [
        ("escrow", "0005_disputes"),
    ]

    operations = [
        migrations.AddField(
            model_name="escrow",
            name="chargeback_open",
            field=models.BooleanField(default=False),
        ),
        migrations.AlterField(
            model_name="escrowtimer",
            name="action",
            field=models.CharField(
                choices=[
                    ("release", "Release when the review window lapses"),
                    ("settle_failed", "Refund or split when the review window lapses"),
                    ("expire", "Expire and refund at the delivery deadline"),
                    ("manual_release", "Hold for an admin when a manual release is still due"),
                ],
                max_length=16,
            ),
        ),
        migrations.RunPython(mark_open_chargebacks, migrations.RunPython.noop),
        migrations.RunPython(schedule_overdue_manual_releases, migrations.RunPython.noop),
    ]
