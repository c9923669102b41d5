from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from django.db.models import QuerySet

from core.evidence import ChainFault, verify_chain
from core.models import EvidenceRecord

_FIELDS = ("seq", "kind", "subject", "payload", "prev_hash", "hash")


def evidence_for_subjects(*, subjects: list[str]) -> QuerySet[EvidenceRecord]:
    return EvidenceRecord.objects.filter(subject__in=subjects).order_by("seq")


def _stream() -> Iterator[dict[str, Any]]:
    yield from EvidenceRecord.objects.order_by("seq").values(*_FIELDS).iterator(chunk_size=2000)


def evidence_chain_verify() -> tuple[int, ChainFault | None]:
    """Recompute the whole chain; return (records checked, first fault or None)."""
    count = 0

    def counted() -> Iterator[dict[str, Any]]:
        nonlocal count
        for rec in _stream():
            count += 1
            yield rec

    fault = verify_chain(counted())
    return count, fault
