"""Hashing and verification of the evidence chain, with no database access.

This module is what an outsider needs to verify an exported bundle offline:

    hash = sha256(prev_hash + canonical_json({"seq", "kind", "subject", "payload"}))

with `prev_hash` of the first record = 64 zeros, and canonical JSON = keys
sorted, no insignificant whitespace, UTF-8, no NaN/Infinity.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

GENESIS_HASH = "0" * 64


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def record_hash(*, prev_hash: str, seq: int, kind: str, subject: str, payload: Any) -> str:
    envelope = {"seq": seq, "kind": kind, "subject": subject, "payload": payload}
    return hashlib.sha256((prev_hash + canonical_json(envelope)).encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class ChainFault:
    seq: int
    reason: str

    def __str__(self) -> str:
        return f"record #{self.seq}: {self.reason}"


def verify_chain(
    records: Iterable[Mapping[str, Any]], *, start_prev_hash: str = GENESIS_HASH, start_seq: int = 1
) -> ChainFault | None:
    """Return the first fault in records given in stored order, or None.

    Each record is a mapping with seq, kind, subject, payload, prev_hash, hash.
    """
    expected_prev = start_prev_hash
    expected_seq = start_seq
    for rec in records:
        seq = rec["seq"]
        if seq != expected_seq:
            return ChainFault(seq, f"expected record #{expected_seq} here: a record is missing or out of order")
        if rec["prev_hash"] != expected_prev:
            return ChainFault(
                seq, "prev_hash does not match the previous record's hash: a record was removed, inserted or reordered"
            )
        recomputed = record_hash(
            prev_hash=rec["prev_hash"], seq=seq, kind=rec["kind"], subject=rec["subject"], payload=rec["payload"]
        )
        if recomputed != rec["hash"]:
            return ChainFault(seq, "stored hash does not match its content: the record was altered")
        expected_prev = rec["hash"]
        expected_seq = seq + 1
    return None
