"""The database keeps the ledger honest on PostgreSQL:

- every ledger transaction sums to zero per currency, checked at commit by a
  deferred constraint trigger (legs are inserted one by one, so the check must
  wait for the whole transaction);
- entries and transactions are never updated or deleted.
"""

from django.db import migrations

FORWARD = """
CREATE OR REPLACE FUNCTION escrow_check_balanced() RETURNS trigger AS $$
DECLARE
    unbalanced RECORD;
BEGIN
    SELECT currency, SUM(amount_minor) AS total INTO unbalanced
      FROM escrow_ledgerentry
     WHERE transaction_id = NEW.transaction_id
     GROUP BY currency
    HAVING SUM(amount_minor) <> 0
     LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'ledger transaction % does not balance: % %',
            NEW.transaction_id, unbalanced.total, unbalanced.currency
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;

CREATE CONSTRAINT TRIGGER escrow_ledgerentry_balanced
    AFTER INSERT ON escrow_ledgerentry
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION escrow_check_balanced();

CREATE TRIGGER escrow_ledgerentry_append_only
    BEFORE UPDATE OR DELETE ON escrow_ledgerentry
    FOR EACH ROW EXECUTE FUNCTION pactum_refuse_change();

CREATE TRIGGER escrow_ledgertransaction_append_only
    BEFORE UPDATE OR DELETE ON escrow_ledgertransaction
    FOR EACH ROW EXECUTE FUNCTION pactum_refuse_change();
"""

BACKWARD = """
DROP TRIGGER IF EXISTS escrow_ledgertransaction_append_only ON escrow_ledgertransaction;
DROP TRIGGER IF EXISTS escrow_ledgerentry_append_only ON escrow_ledgerentry;
DROP TRIGGER IF EXISTS escrow_ledgerentry_balanced ON escrow_ledgerentry;
DROP FUNCTION IF EXISTS escrow_check_balanced();
"""


def forward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(FORWARD, params=None)


def backward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(BACKWARD, params=None)


class Migration(migrations.Migration):
    dependencies = [("escrow", "0001_initial"), ("core", "0002_evidence_append_only")]
    operations = [migrations.RunPython(forward, backward, elidable=False)]
