"""Marketplace data: what sellers offer and what buyers and sellers agree.

- `AgentListing` is an agent for hire (draft / published / suspended), with
  `BenchmarkClaim`s (what the seller says the agent scored elsewhere) and, when
  it has an `endpoint_url`, a per-listing secret for signing calls to it.
- `PactTemplate` groups the published `PactVersion`s of one pact. A
  `PactVersion` is immutable: its clauses and terms are hashed at creation, the
  model refuses to save it twice, and PostgreSQL refuses UPDATE and DELETE.
  Versions locked by a negotiation belong to one engagement.
- `Engagement` is one job: its status moves only through
  `marketplace.states.TRANSITIONS`, under a row lock, with an
  `EngagementStatusChange` row per move.
- `Proposal`s are the negotiation: full content each time, numbered per
  engagement. Posting one is its author's acceptance; the other party's accept
  of the latest proposal locks a `PactVersion`.
- `Deliverable` is the agent's output (at most one per engagement) with the
  facts judges need; `DeliveryAttempt` records each call the platform made to
  an agent endpoint, failed or not.
- `AgentToken` lets a seller's agent deliver by API: scoped to one listing,
  stored only as a hash, revocable.
"""

from __future__ import annotations

import secrets

from django.conf import settings
from django.db import models
from django.db.models import Q

from core.models import StatusChange, TimeStampedModel


def new_endpoint_secret() -> str:
    return secrets.token_hex(32)


class AgentListing(TimeStampedModel):
    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        PUBLISHED = "published", "Published"
        SUSPENDED = "suspended", "Suspended"

    seller = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="listings")
    name = models.CharField(max_length=120)
    slug = models.SlugField(max_length=140, unique=True)
    description = models.TextField(blank=True)
    categories = models.JSONField(default=list)
    price_minor = models.BigIntegerField()
    currency = models.CharField(max_length=3)
    endpoint_url = models.URLField(max_length=500, blank=True)
    endpoint_secret = models.CharField(max_length=64, default=new_endpoint_secret)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PUBLISHED, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=Q(price_minor__gt=0), name="listing_price_positive"),
            models.CheckConstraint(condition=Q(currency__regex=r"^[a-z]{3}$"), name="listing_currency_iso"),
        ]

    def __str__(self) -> str:
        return self.name


class BenchmarkClaim(TimeStampedModel):
    listing = models.ForeignKey(AgentListing, on_delete=models.CASCADE, related_name="benchmark_claims")
    benchmark = models.CharField(max_length=120)
    score = models.FloatField()
    measured_on = models.DateField()
    source_url = models.URLField(max_length=500, blank=True)
    categories = models.JSONField(default=list)

    class Meta:
        ordering = ["-measured_on", "-id"]

    def __str__(self) -> str:
        return f"{self.benchmark}: {self.score}"


class PactTemplate(TimeStampedModel):
    listing = models.ForeignKey(AgentListing, on_delete=models.CASCADE, related_name="pact_templates")
    name = models.CharField(max_length=120)

    class Meta:
        ordering = ["name", "id"]
        constraints = [models.UniqueConstraint(fields=["listing", "name"], name="pact_template_unique_name")]

    def __str__(self) -> str:
        return self.name


class ImmutableError(Exception):
    pass


class PactVersion(models.Model):
    class Kind(models.TextChoices):
        PUBLISHED = "published", "Published template version"
        LOCKED = "locked", "Locked by a negotiation"

    template = models.ForeignKey(PactTemplate, on_delete=models.PROTECT, related_name="versions")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    version = models.CharField(max_length=64)
    clauses = models.JSONField()
    terms = models.JSONField()
    content_hash = models.CharField(max_length=64, db_index=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["template", "version"], condition=Q(kind="published"), name="pact_version_unique_published"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.template.name} {self.version}"

    def save(self, *args: object, **kwargs: object) -> None:
        if self.pk is not None and not self._state.adding:
            raise ImmutableError("A pact version is immutable once created; publish a new version instead.")
        super().save(*args, **kwargs)  # type: ignore[arg-type]

    def delete(self, *args: object, **kwargs: object) -> tuple[int, dict[str, int]]:
        raise ImmutableError("A pact version is never deleted.")

    @property
    def content(self) -> dict:
        return {"clauses": self.clauses, "terms": self.terms}


class Engagement(TimeStampedModel):
    class Status(models.TextChoices):
        NEGOTIATING = "negotiating", "Negotiating"
        AGREED = "agreed", "Agreed"
        ACTIVE = "active", "Active"
        DELIVERED = "delivered", "Delivered"
        EVALUATED = "evaluated", "Evaluated"
        CLOSED = "closed", "Closed"
        DISPUTED = "disputed", "Disputed"
        CANCELLED = "cancelled", "Cancelled"
        EXPIRED = "expired", "Expired"

    buyer = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="engagements")
    listing = models.ForeignKey(AgentListing, on_delete=models.PROTECT, related_name="engagements")
    template = models.ForeignKey(PactTemplate, on_delete=models.PROTECT, related_name="engagements")
    # The published version proposal 1 was taken from; the locked version is named after it.
    template_version = models.ForeignKey(PactVersion, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    task = models.JSONField()
    # The kind of work this job is (one of the listing's categories): the trust
    # record keeps per-category evidence from it.
    category = models.CharField(max_length=60, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.NEGOTIATING, db_index=True)
    pact_version = models.OneToOneField(
        PactVersion, on_delete=models.PROTECT, null=True, blank=True, related_name="engagement"
    )
    activated_at = models.DateTimeField(null=True, blank=True)
    delivery_due_at = models.DateTimeField(null=True, blank=True, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"Engagement #{self.pk} ({self.status})"


class EngagementStatusChange(StatusChange):
    engagement = models.ForeignKey(Engagement, on_delete=models.CASCADE, related_name="status_changes")


class Proposal(models.Model):
    class Role(models.TextChoices):
        BUYER = "buyer", "Buyer"
        SELLER = "seller", "Seller"

    engagement = models.ForeignKey(Engagement, on_delete=models.CASCADE, related_name="proposals")
    number = models.PositiveIntegerField()
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    author_role = models.CharField(max_length=8, choices=Role.choices)
    clauses = models.JSONField()
    terms = models.JSONField()
    content_hash = models.CharField(max_length=64)
    note = models.CharField(max_length=1000, blank=True)
    accepted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    accepted_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["engagement", "number"]
        constraints = [
            models.UniqueConstraint(fields=["engagement", "number"], name="proposal_unique_number"),
            models.UniqueConstraint(
                fields=["engagement"], condition=Q(accepted_at__isnull=False), name="proposal_one_accepted"
            ),
        ]

    def __str__(self) -> str:
        return f"Proposal {self.number} of engagement {self.engagement_id}"

    @property
    def content(self) -> dict:
        return {"clauses": self.clauses, "terms": self.terms}


class Deliverable(models.Model):
    class Source(models.TextChoices):
        SELLER = "seller", "Seller (web or API)"
        AGENT_TOKEN = "agent_token", "Agent token"
        ENDPOINT = "endpoint", "Platform call to the agent endpoint"

    engagement = models.OneToOneField(Engagement, on_delete=models.PROTECT, related_name="deliverable")
    output = models.JSONField()
    citations = models.JSONField(default=list)
    actions = models.JSONField(default=list)
    latency_ms = models.PositiveIntegerField(null=True, blank=True)
    content_hash = models.CharField(max_length=64)
    source = models.CharField(max_length=16, choices=Source.choices)
    submitted_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"Deliverable of engagement {self.engagement_id}"


class DeliveryAttempt(models.Model):
    engagement = models.ForeignKey(Engagement, on_delete=models.CASCADE, related_name="delivery_attempts")
    number = models.PositiveIntegerField()
    url = models.URLField(max_length=500)
    ok = models.BooleanField(default=False)
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    latency_ms = models.PositiveIntegerField(null=True, blank=True)
    error = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["engagement", "number"]
        constraints = [models.UniqueConstraint(fields=["engagement", "number"], name="delivery_attempt_unique")]

    def __str__(self) -> str:
        return f"Attempt {self.number} ({'ok' if self.ok else self.error})"


class AgentToken(models.Model):
    listing = models.ForeignKey(AgentListing, on_delete=models.CASCADE, related_name="agent_tokens")
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=12)
    key_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None
