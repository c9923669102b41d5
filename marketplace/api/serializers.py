"""Input and output shapes of the marketplace API (DESIGN.md, Representations)."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from marketplace.models import AgentListing, AgentToken, BenchmarkClaim, Engagement, PactTemplate, PactVersion
from marketplace.pacts import pact_diff

# --- listings ---------------------------------------------------------------------


class ListingInputSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=120)
    description = serializers.CharField(max_length=10_000, required=False, allow_blank=True, default="")
    categories = serializers.ListField(
        child=serializers.CharField(max_length=50), required=False, default=list, max_length=10
    )
    price_minor = serializers.IntegerField(min_value=1, max_value=10**11)
    currency = serializers.CharField(max_length=3, min_length=3)
    endpoint_url = serializers.URLField(max_length=500, required=False, allow_blank=True, default="")
    status = serializers.ChoiceField(
        choices=[AgentListing.Status.DRAFT, AgentListing.Status.PUBLISHED], default=AgentListing.Status.PUBLISHED
    )

    def validate_endpoint_url(self, value: str) -> str:
        if value and not value.lower().startswith(("http://", "https://")):
            raise serializers.ValidationError("Only http and https endpoints.")
        return value


class ListingPatchSerializer(ListingInputSerializer):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs["partial"] = True
        super().__init__(*args, **kwargs)


class ListingQuerySerializer(serializers.Serializer):
    category = serializers.CharField(required=False, allow_blank=True, max_length=50, default="")
    q = serializers.CharField(required=False, allow_blank=True, max_length=200, default="")
    ordering = serializers.ChoiceField(choices=["trust", "price", "-price", "recent"], required=False, default="trust")


class BenchmarkClaimSerializer(serializers.ModelSerializer):
    class Meta:
        model = BenchmarkClaim
        fields = ["id", "benchmark", "score", "measured_on", "source_url", "categories"]


class BenchmarkClaimInputSerializer(serializers.Serializer):
    benchmark = serializers.CharField(max_length=120)
    score = serializers.FloatField(min_value=-1e9, max_value=1e9)
    measured_on = serializers.DateField()
    source_url = serializers.URLField(max_length=500, required=False, allow_blank=True, default="")
    categories = serializers.ListField(
        child=serializers.CharField(max_length=50), required=False, default=list, max_length=10
    )


class ListingOutputSerializer(serializers.ModelSerializer):
    seller = serializers.CharField(source="seller.username")
    has_endpoint = serializers.SerializerMethodField()
    benchmark_claims = BenchmarkClaimSerializer(many=True)
    trust = serializers.SerializerMethodField()

    class Meta:
        model = AgentListing
        fields = [
            "id",
            "name",
            "slug",
            "seller",
            "description",
            "categories",
            "price_minor",
            "currency",
            "status",
            "has_endpoint",
            "benchmark_claims",
            "trust",
            "created_at",
            "updated_at",
        ]

    def get_has_endpoint(self, listing: AgentListing) -> bool:
        return bool(listing.endpoint_url)

    def get_trust(self, listing: AgentListing) -> dict | None:
        """The agent's trust summary (read for the whole page at once by the view)."""
        return self.context.get("trust", {}).get(listing.pk)


class PactVersionSerializer(serializers.ModelSerializer):
    hash = serializers.CharField(source="content_hash")

    class Meta:
        model = PactVersion
        fields = ["id", "version", "hash", "clauses", "terms", "created_at"]


class PactTemplateSerializer(serializers.ModelSerializer):
    agent = serializers.IntegerField(source="listing_id")
    latest_version = serializers.SerializerMethodField()
    versions = serializers.SerializerMethodField()

    class Meta:
        model = PactTemplate
        fields = ["id", "agent", "name", "latest_version", "versions"]

    def _versions(self, template: PactTemplate) -> list[PactVersion]:
        # Prefetched as `published_versions` (newest first) by the selectors.
        return list(getattr(template, "published_versions", None) or template.versions.filter(kind="published"))

    def get_latest_version(self, template: PactTemplate) -> dict | None:
        versions = self._versions(template)
        return PactVersionSerializer(versions[0]).data if versions else None

    def get_versions(self, template: PactTemplate) -> list[dict]:
        return [{"id": v.id, "version": v.version, "hash": v.content_hash} for v in self._versions(template)]


class ListingDetailSerializer(ListingOutputSerializer):
    pacts = PactTemplateSerializer(many=True, source="pact_templates")

    class Meta(ListingOutputSerializer.Meta):
        fields = [*ListingOutputSerializer.Meta.fields, "pacts"]


class ListingOwnerSerializer(ListingDetailSerializer):
    """What the owner (and staff) see: where and how the platform calls the agent."""

    class Meta(ListingDetailSerializer.Meta):
        fields = [*ListingDetailSerializer.Meta.fields, "endpoint_url", "endpoint_secret"]


class PactPublishSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=120)
    clauses = serializers.JSONField()
    terms = serializers.JSONField()


class AgentTokenInputSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=100)


class AgentTokenSerializer(serializers.ModelSerializer):
    active = serializers.BooleanField(source="is_active")

    class Meta:
        model = AgentToken
        fields = ["id", "name", "prefix", "active", "created_at", "last_used_at", "revoked_at"]


# --- engagements ----------------------------------------------------------------------


class EngagementCreateSerializer(serializers.Serializer):
    agent = serializers.IntegerField(min_value=1)
    pact = serializers.IntegerField(min_value=1)
    task = serializers.JSONField()
    category = serializers.CharField(max_length=60, required=False, allow_blank=True, default="")


class ProposalInputSerializer(serializers.Serializer):
    clauses = serializers.JSONField()
    terms = serializers.JSONField()
    note = serializers.CharField(max_length=1000, required=False, allow_blank=True, default="")


class AcceptInputSerializer(serializers.Serializer):
    proposal = serializers.IntegerField(min_value=1, required=False)


class CancelInputSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=300, required=False, allow_blank=True, default="")


class DeliverInputSerializer(serializers.Serializer):
    output = serializers.JSONField()
    citations = serializers.ListField(child=serializers.CharField(max_length=2000), required=False, default=list)
    actions = serializers.ListField(child=serializers.JSONField(), required=False, default=list, max_length=1000)
    latency_ms = serializers.IntegerField(min_value=0, max_value=86_400_000, required=False, allow_null=True)


def proposal_rows(engagement: Engagement) -> list[dict[str, Any]]:
    """Proposals (prefetched, in order) with their diffs against the previous one."""
    rows = []
    previous = None
    for p in engagement.proposals.all():
        rows.append(
            {
                "number": p.number,
                "author": p.author.username,
                "author_role": p.author_role,
                "hash": p.content_hash,
                "clauses": p.clauses,
                "terms": p.terms,
                "note": p.note,
                "created_at": serializers.DateTimeField().to_representation(p.created_at),
                "accepted_by": p.accepted_by.username if p.accepted_by else None,
                "accepted_at": serializers.DateTimeField().to_representation(p.accepted_at) if p.accepted_at else None,
                "diff": pact_diff(previous.content if previous else None, p.content),
            }
        )
        previous = p
    return rows


class EngagementListSerializer(serializers.ModelSerializer):
    buyer = serializers.CharField(source="buyer.username")
    agent = serializers.SerializerMethodField()
    pact = serializers.SerializerMethodField()

    class Meta:
        model = Engagement
        fields = ["id", "status", "buyer", "agent", "pact", "created_at", "updated_at", "delivery_due_at"]

    def get_agent(self, e: Engagement) -> dict:
        return {"id": e.listing_id, "name": e.listing.name, "slug": e.listing.slug, "seller": e.listing.seller.username}

    def get_pact(self, e: Engagement) -> dict:
        return {"id": e.template_id, "name": e.template.name}


class EngagementDetailSerializer(EngagementListSerializer):
    pact_version = serializers.SerializerMethodField()
    proposals = serializers.SerializerMethodField()
    escrow = serializers.SerializerMethodField()
    evaluation = serializers.SerializerMethodField()
    dispute = serializers.SerializerMethodField()
    deliverable = serializers.SerializerMethodField()
    history = serializers.SerializerMethodField()
    delivery_attempts = serializers.SerializerMethodField()

    class Meta(EngagementListSerializer.Meta):
        fields = [
            *EngagementListSerializer.Meta.fields,
            "task",
            "pact_version",
            "proposals",
            "escrow",
            "evaluation",
            "dispute",
            "deliverable",
            "delivery_attempts",
            "history",
        ]

    def get_pact_version(self, e: Engagement) -> dict | None:
        v = e.pact_version
        if v is None:
            return None
        return {"id": v.id, "version": v.version, "hash": v.content_hash, "clauses": v.clauses, "terms": v.terms}

    def get_proposals(self, e: Engagement) -> list[dict]:
        return proposal_rows(e)

    def get_escrow(self, e: Engagement) -> dict | None:
        return self.context.get("escrow")

    def get_evaluation(self, e: Engagement) -> dict | None:
        return self.context.get("evaluation")

    def get_dispute(self, e: Engagement) -> dict | None:
        """The engagement's latest dispute (escrow's representation), read by the view."""
        return self.context.get("dispute")

    def get_deliverable(self, e: Engagement) -> dict | None:
        d = getattr(e, "deliverable", None)
        if d is None:
            return None
        return {
            "id": d.id,
            "output": d.output,
            "citations": d.citations,
            "actions": d.actions,
            "latency_ms": d.latency_ms,
            "hash": d.content_hash,
            "source": d.source,
            "created_at": serializers.DateTimeField().to_representation(d.created_at),
        }

    def get_delivery_attempts(self, e: Engagement) -> list[dict]:
        return [
            {"number": a.number, "ok": a.ok, "status_code": a.status_code, "latency_ms": a.latency_ms, "error": a.error}
            for a in e.delivery_attempts.all()
        ]

    def get_history(self, e: Engagement) -> list[dict]:
        dt = serializers.DateTimeField()
        return [
            {
                "from": c.from_status or None,
                "to": c.to_status,
                "actor": c.actor.username if c.actor else None,
                "reason": c.reason,
                "at": dt.to_representation(c.created_at),
            }
            for c in e.status_changes.all()
        ]
