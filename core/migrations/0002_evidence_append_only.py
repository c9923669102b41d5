"""On PostgreSQL the database itself refuses UPDATE and DELETE on the evidence
chain, so not even code that bypasses the services can rewrite history.
TRUNCATE (owner-only, used by test teardown) is left to database privileges:
the application's role should not own the table in production. SQLite (the
embedded default) relies on the services alone."""

from django.db import migrations

FORWARD = """
CREATE OR REPLACE FUNCTION pactum_refuse_change() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'table % is append-only: % refused', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'restrict_violation';
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER core_evidencerecord_append_only
    BEFORE UPDATE OR DELETE ON core_evidencerecord
    FOR EACH ROW EXECUTE FUNCTION pactum_refuse_change();
"""

BACKWARD = """
DROP TRIGGER IF EXISTS core_evidencerecord_append_only ON core_evidencerecord;
"""


def forward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(FORWARD, params=None)


def backward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(BACKWARD, params=None)


class Migration(migrations.Migration):
    dependencies = [("core", "0001_initial")]
    operations = [migrations.RunPython(forward, backward, elidable=False)]
