from django.db import migrations, models


def backfill_category(apps, schema_editor):
    """Earlier engagements take their listing's first category."""
    Engagement = apps.get_model("marketplace", "Engagement")
    for engagement in Engagement.objects.filter(category="").select_related("listing").iterator():
        categories = engagement.listing.categories or []
        if categories:
            engagement.category = categories[0]
            engagement.save(update_fields=["category"])


class Migration(migrations.Migration):
    dependencies = [
        ("marketplace", "0003_engagement_template_version"),
    ]

    operations = [
        migrations.AddField(
            model_name="engagement",
            name="category",
            field=models.CharField(blank=True, max_length=60),
        ),
        migrations.RunPython(backfill_category, migrations.RunPython.noop),
    ]
