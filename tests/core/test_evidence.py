import threading

import pytest
from django.core.management import CommandError, call_command
from django.db import DatabaseError, connection, transaction

from core.evidence import GENESIS_HASH, record_hash, verify_chain
from core.models import EvidenceRecord
from core.selectors import evidence_chain_verify
from core.services import evidence_append

pytestmark = pytest.mark.django_db


def _append(n: int) -> list[EvidenceRecord]:
    return [
        evidence_append(
            kind="test.event", subject=f"thing:{i}", payload={"i": i, "note": "é", "nested": {"b": 2, "a": 1}}
        )
        for i in range(n)
    ]


def _tamper(sql: str, params: list) -> None:
    """Change rows behind the services' back, as an attacker with table access would."""
    with connection.cursor() as cursor:
        cursor.execute("ALTER TABLE core_evidencerecord DISABLE TRIGGER USER")
        cursor.execute(sql, params)
        cursor.execute("ALTER TABLE core_evidencerecord ENABLE TRIGGER USER")


def test_appended_records_link_to_their_predecessor():
    first, second, third = _append(3)
    assert (first.seq, second.seq, third.seq) == (1, 2, 3)
    assert first.prev_hash == GENESIS_HASH
    assert second.prev_hash == first.hash
    assert third.prev_hash == second.hash
    assert second.hash == record_hash(
        prev_hash=first.hash, seq=2, kind="test.event", subject="thing:1", payload=second.payload
    )


def test_intact_chain_verifies(capsys):
    _append(5)
    assert evidence_chain_verify() == (5, None)
    call_command("verify_evidence")
    assert "5 records verified" in capsys.readouterr().out


def test_empty_chain_verifies():
    assert evidence_chain_verify() == (0, None)


def test_hash_survives_a_database_round_trip():
    record = _append(1)[0]
    stored = EvidenceRecord.objects.get(pk=record.pk)
    assert (
        record_hash(prev_hash=GENESIS_HASH, seq=1, kind=stored.kind, subject=stored.subject, payload=stored.payload)
        == stored.hash
    )


def test_tampered_payload_is_named():
    records = _append(4)
    _tamper("UPDATE core_evidencerecord SET payload = %s WHERE seq = 2", ['{"i": 99}'])
    _count, fault = evidence_chain_verify()
    assert fault is not None
    assert fault.seq == 2
    assert "altered" in fault.reason
    with pytest.raises(CommandError, match=r"record #2") as excinfo:
        call_command("verify_evidence")
    assert excinfo.value.returncode == 1
    assert records[2].seq == 3  # later records untouched, still the fault is the first bad one


def test_tampered_kind_is_detected():
    _append(3)
    _tamper("UPDATE core_evidencerecord SET kind = 'forged' WHERE seq = 3", [])
    _, fault = evidence_chain_verify()
    assert fault is not None
    assert fault.seq == 3


def test_deleted_record_is_detected():
    _append(5)
    _tamper("DELETE FROM core_evidencerecord WHERE seq = 3", [])
    _, fault = evidence_chain_verify()
    assert fault is not None
    assert fault.seq == 4
    assert "missing or out of order" in fault.reason


def test_reordered_records_are_detected():
    _append(5)
    _tamper(
        "UPDATE core_evidencerecord SET seq = 1000 WHERE seq = 2;"
        "UPDATE core_evidencerecord SET seq = 2 WHERE seq = 4;"
        "UPDATE core_evidencerecord SET seq = 4 WHERE seq = 1000",
        [],
    )
    _, fault = evidence_chain_verify()
    assert fault is not None
    assert fault.seq == 2
    assert "prev_hash" in fault.reason


def test_rehashed_forgery_is_detected_downstream():
    """An attacker who recomputes the forged record's own hash still breaks the next link."""
    records = _append(3)
    forged_payload = {"i": 1, "note": "forged"}
    new_hash = record_hash(
        prev_hash=records[0].hash, seq=2, kind="test.event", subject="thing:1", payload=forged_payload
    )
    import json

    _tamper(
        "UPDATE core_evidencerecord SET payload = %s, hash = %s WHERE seq = 2",
        [json.dumps(forged_payload), new_hash],
    )
    _, fault = evidence_chain_verify()
    assert fault is not None
    assert fault.seq == 3


def test_database_refuses_update():
    record = _append(1)[0]
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        EvidenceRecord.objects.filter(pk=record.pk).update(payload={"i": 42})
    record.refresh_from_db()
    assert record.payload["i"] == 0


def test_database_refuses_delete():
    record = _append(1)[0]
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        EvidenceRecord.objects.filter(pk=record.pk).delete()
    assert EvidenceRecord.objects.filter(pk=record.pk).exists()


def test_verify_chain_accepts_plain_records_offline():
    """The pure verifier (used for exported bundles) needs no database."""
    prev = GENESIS_HASH
    rows = []
    for seq in (1, 2):
        h = record_hash(prev_hash=prev, seq=seq, kind="k", subject="s", payload={"n": seq})
        rows.append({"seq": seq, "kind": "k", "subject": "s", "payload": {"n": seq}, "prev_hash": prev, "hash": h})
        prev = h
    assert verify_chain(rows) is None
    rows[1]["payload"] = {"n": 3}
    fault = verify_chain(rows)
    assert fault is not None
    assert fault.seq == 2


@pytest.mark.django_db(transaction=True)
def test_concurrent_writers_build_one_unbroken_chain():
    threads_n, per_thread = 6, 5
    errors: list[BaseException] = []
    barrier = threading.Barrier(threads_n)

    def writer(t: int) -> None:
        try:
            barrier.wait()
            for i in range(per_thread):
                evidence_append(kind="race", subject=f"t{t}", payload={"i": i})
        except BaseException as exc:  # surfaced below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=writer, args=(t,)) for t in range(threads_n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert list(EvidenceRecord.objects.values_list("seq", flat=True)) == list(range(1, threads_n * per_thread + 1))
    assert evidence_chain_verify() == (threads_n * per_thread, None)
