from __future__ import annotations

import json
from typing import Any

from django.contrib.auth import authenticate
from django.db import IntegrityError, connection, transaction
from rest_framework.authtoken.models import Token

from core.errors import ValidationFailed
from core.evidence import GENESIS_HASH, canonical_json, record_hash
from core.models import EvidenceRecord, User

# Arbitrary constant naming the PostgreSQL advisory lock that serialises
# evidence writers ("PACTEVID" in ASCII, folded into a signed 64-bit int).
_EVIDENCE_LOCK_ID = 0x5041435445564944 - (1 << 63)


@transaction.atomic
def evidence_append(*, kind: str, subject: str, payload: dict[str, Any]) -> EvidenceRecord:
    """Append one record to the evidence chain and return it.

    Joins the caller's transaction, so the record commits (or rolls back) with
    the business change it attests. Writers are serialised: on PostgreSQL by a
    transaction-scoped advisory lock held until commit; on SQLite every write
    transaction already holds the database lock (IMMEDIATE mode). The unique
    `seq` and `hash` columns are the backstop if either ever fails.
    """
    # Normalise the payload once (keys sorted, JSON types only) so the stored
    # value hashes the same after a round trip through the database.
    payload = json.loads(canonical_json(payload))
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_EVIDENCE_LOCK_ID])
    last = EvidenceRecord.objects.order_by("-seq").values("seq", "hash").first()
    seq = last["seq"] + 1 if last else 1
    prev_hash = last["hash"] if last else GENESIS_HASH
    return EvidenceRecord.objects.create(
        seq=seq,
        kind=kind,
        subject=subject,
        payload=payload,
        prev_hash=prev_hash,
        hash=record_hash(prev_hash=prev_hash, seq=seq, kind=kind, subject=subject, payload=payload),
    )


@transaction.atomic
def user_register(*, username: str, email: str, password: str, role: str) -> tuple[User, str]:
    """Create a buyer or seller account and its API token; return (user, token key)."""
    if role not in User.Role.values:
        raise ValidationFailed(f"Unknown role {role!r}; choose buyer or seller.")
    if User.objects.filter(username__iexact=username).exists():
        raise ValidationFailed("That username is taken.", code="username_taken")
    try:
        with transaction.atomic():
            user = User.objects.create_user(username=username, email=email, password=password, role=role)
    except IntegrityError as exc:  # a concurrent registration won the race
        raise ValidationFailed("That username is taken.", code="username_taken") from exc
    token, _ = Token.objects.get_or_create(user=user)
    return user, token.key


def user_token(*, username: str, password: str) -> str:
    """Return the API token of the user with these credentials (created on first use)."""
    user = authenticate(username=username, password=password)
    if user is None or not user.is_active:
        raise ValidationFailed("Unable to log in with the given username and password.", code="invalid_credentials")
    token, _ = Token.objects.get_or_create(user=user)
    return token.key
