"""Core data: users with a marketplace role, the shared base model, and the
evidence chain.

The evidence chain is an append-only, hash-linked log. Each record's hash covers
the previous record's hash and the canonical JSON of its own envelope (sequence
number, kind, subject and payload), so changing, deleting or reordering any
record breaks every hash after it. Records are written only through
`core.services.evidence_append`, which serialises writers; on PostgreSQL a
trigger refuses UPDATE and DELETE on the table outright.
"""

from django.conf import settings
from django.contrib.auth.models import AbstractUser
from django.db import models


class TimeStampedModel(models.Model):
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        abstract = True


class StatusChange(models.Model):
    """One move of a status machine: the history row written with every move
    (see core.state_machine.move_status). Subclasses add the foreign key to the
    object that moved."""

    from_status = models.CharField(max_length=16, blank=True)
    to_status = models.CharField(max_length=16)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True)
    reason = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        abstract = True
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"{self.from_status or '-'} -> {self.to_status}"


class User(AbstractUser):
    class Role(models.TextChoices):
        BUYER = "buyer", "Buyer"
        SELLER = "seller", "Seller"

    # Staff (admins) are created with `createsuperuser` and carry no market role.
    role = models.CharField(max_length=16, choices=Role.choices, blank=True, default="")

    @property
    def is_buyer(self) -> bool:
        return self.role == self.Role.BUYER

    @property
    def is_seller(self) -> bool:
        return self.role == self.Role.SELLER


class EvidenceRecord(models.Model):
    seq = models.PositiveBigIntegerField(unique=True)
    kind = models.CharField(max_length=64, db_index=True)
    subject = models.CharField(max_length=128, db_index=True)
    payload = models.JSONField()
    prev_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["seq"]
        constraints = [
            models.CheckConstraint(condition=models.Q(seq__gte=1), name="evidence_seq_positive"),
        ]

    def __str__(self) -> str:
        return f"#{self.seq} {self.kind} {self.subject}"


class IdempotencyRecord(models.Model):
    """The first response to a mutating API request sent with an
    `Idempotency-Key` header, replayed for retries of the same request.

    `scope` is a hash of the caller's credentials, so two clients never share
    a key; `fingerprint` is a hash of method, path and body, so a key reused
    for a different request is refused. `status_code` is null while the first
    request is still running.
    """

    scope = models.CharField(max_length=64)
    key = models.CharField(max_length=255)
    fingerprint = models.CharField(max_length=64)
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    content_type = models.CharField(max_length=100, blank=True)
    body = models.BinaryField(blank=True, default=b"")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["scope", "key"], name="idempotency_unique_scope_key")]

    def __str__(self) -> str:
        return f"{self.key} ({self.status_code or 'in progress'})"
