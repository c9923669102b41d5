"""On PostgreSQL the database refuses UPDATE and DELETE of a pact version
(the function comes from core's evidence migration)."""

from django.db import migrations

FORWARD = """
CREATE TRIGGER marketplace_pactversion_immutable
    BEFORE UPDATE OR DELETE ON marketplace_pactversion
    FOR EACH ROW EXECUTE FUNCTION pactum_refuse_change();
"""
BACKWARD = "DROP TRIGGER IF EXISTS marketplace_pactversion_immutable ON marketplace_pactversion;"


def forward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(FORWARD, params=None)


def backward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(BACKWARD, params=None)


class Migration(migrations.Migration):
    dependencies = [("marketplace", "0001_initial"), ("core", "0002_evidence_append_only")]
    operations = [migrations.RunPython(forward, backward, elidable=False)]
