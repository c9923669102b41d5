from django.db import migrations, models


def mark_open_chargebacks(apps, schema_editor):
    """Escrows held for a card chargeback before the flag existed carry it now."""
    Escrow = apps.get_model("escrow", "Escrow")
    Escrow.objects.filter(status="held", hold_reason="card chargeback").update(chargeback_open=True)


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
    ]
