"""Every read of the marketplace that a page, an API view or another app needs.

Querysets come with their related rows already joined or prefetched, so a list
runs a constant number of queries whatever its length.
"""

from __future__ import annotations

from typing import Any

from django.db.models import Prefetch, Q, QuerySet

from core.models import User
from marketplace.models import (
    AgentListing,
    AgentToken,
    BenchmarkClaim,
    Deliverable,
    Engagement,
    EngagementStatusChange,
    PactTemplate,
    PactVersion,
    Proposal,
)
from marketplace.pacts import pact_diff

LISTING_ORDERINGS = {
    "recent": ("-created_at", "-id"),
    "price": ("price_minor", "id"),
    "-price": ("-price_minor", "id"),
}


def _published_versions() -> Prefetch:
    return Prefetch(
        "pact_templates__versions",
        queryset=PactVersion.objects.filter(kind=PactVersion.Kind.PUBLISHED).order_by("-created_at", "-id"),
        to_attr="published_versions",
    )


def listing_visible_to(user: User | None) -> Q:
    """Published listings for everyone; a seller also sees their own drafts; staff see all."""
    if user is not None and user.is_authenticated and user.is_staff:
        return Q()
    visible = Q(status=AgentListing.Status.PUBLISHED)
    if user is not None and user.is_authenticated:
        visible |= Q(seller_id=user.pk)
    return visible


def listing_list(
    *, user: User | None = None, category: str = "", q: str = "", ordering: str = "recent", mine: bool = False
) -> QuerySet[AgentListing]:
    qs = AgentListing.objects.select_related("seller").prefetch_related("benchmark_claims")
    if mine and user is not None and user.is_authenticated:
        qs = qs.filter(seller_id=user.pk)
    else:
        qs = qs.filter(status=AgentListing.Status.PUBLISHED)
    if category:
        # JSON containment is not portable to SQLite; categories are slugs, so a quoted match is exact.
        qs = qs.filter(categories__icontains=f'"{category.lower()}"')
    if q:
        qs = qs.filter(Q(name__icontains=q) | Q(description__icontains=q))
    return qs.order_by(*LISTING_ORDERINGS.get(ordering, LISTING_ORDERINGS["recent"]))


def listing_get(*, user: User | None, pk: int | None = None, slug: str | None = None) -> AgentListing:
    """One listing with its claims and pact templates (latest versions); raises DoesNotExist."""
    qs = (
        AgentListing.objects.select_related("seller")
        .prefetch_related("benchmark_claims", "pact_templates", _published_versions())
        .filter(listing_visible_to(user))
    )
    return qs.get(pk=pk) if pk is not None else qs.get(slug=slug)


def listing_categories() -> list[str]:
    seen: set[str] = set()
    for categories in AgentListing.objects.filter(status=AgentListing.Status.PUBLISHED).values_list(
        "categories", flat=True
    ):
        seen.update(categories or [])
    return sorted(seen)


def pact_templates_for(*, listing: AgentListing) -> QuerySet[PactTemplate]:
    return listing.pact_templates.prefetch_related(
        Prefetch(
            "versions",
            queryset=PactVersion.objects.filter(kind=PactVersion.Kind.PUBLISHED).order_by("-created_at", "-id"),
            to_attr="published_versions",
        )
    ).order_by("name", "id")


def pact_template_get(*, listing: AgentListing, pk: int) -> PactTemplate:
    return pact_templates_for(listing=listing).get(pk=pk)


def benchmark_claims_for(*, listing: AgentListing) -> QuerySet[BenchmarkClaim]:
    return listing.benchmark_claims.all()


def agent_tokens_for(*, listing: AgentListing) -> QuerySet[AgentToken]:
    return listing.agent_tokens.all()


def engagement_visible_to(user: User) -> Q:
    if user.is_staff:
        return Q()
    return Q(buyer_id=user.pk) | Q(listing__seller_id=user.pk)


def engagement_list(*, user: User, status: str = "") -> QuerySet[Engagement]:
    qs = (
        Engagement.objects.filter(engagement_visible_to(user))
        .select_related("buyer", "listing__seller", "template", "pact_version")
        .order_by("-created_at", "-id")
    )
    if status:
        qs = qs.filter(status=status)
    return qs


def engagement_get(*, user: User, pk: int) -> Engagement:
    """One engagement with proposals, history, deliverable; raises DoesNotExist for non-parties."""
    return (
        Engagement.objects.filter(engagement_visible_to(user))
        .select_related("buyer", "listing__seller", "template", "pact_version", "deliverable")
        .prefetch_related(
            Prefetch("proposals", queryset=Proposal.objects.select_related("author", "accepted_by").order_by("number")),
            Prefetch(
                "status_changes",
                queryset=EngagementStatusChange.objects.select_related("actor").order_by("created_at", "id"),
            ),
            "delivery_attempts",
        )
        .get(pk=pk)
    )


def proposals_with_diffs(*, engagement: Engagement) -> list[dict[str, Any]]:
    """Each proposal with its diff against the one before (prefetched proposals)."""
    rows: list[dict[str, Any]] = []
    previous: Proposal | None = None
    for proposal in engagement.proposals.all():
        rows.append(
            {
                "proposal": proposal,
                "diff": pact_diff(previous.content if previous else None, proposal.content),
            }
        )
        previous = proposal
    return rows


def engagement_role(*, engagement: Engagement, user: User) -> str | None:
    if user.pk == engagement.buyer_id:
        return "buyer"
    if user.pk == engagement.listing.seller_id:
        return "seller"
    return None


def engagement_deliverable(*, engagement_id: int) -> Deliverable | None:
    return Deliverable.objects.filter(engagement_id=engagement_id).first()


def seller_dashboard(*, seller: User) -> dict[str, Any]:
    """What a seller needs to act on: listings, proposals waiting for them, deliveries due."""
    engagements = engagement_list(user=seller).filter(listing__seller_id=seller.pk)
    negotiating = list(
        engagements.filter(status=Engagement.Status.NEGOTIATING).prefetch_related(
            Prefetch("proposals", queryset=Proposal.objects.order_by("-number"), to_attr="latest_first")
        )
    )
    return {
        "listings": list(listing_list(user=seller, mine=True).prefetch_related("pact_templates")),
        "proposals_waiting": [e for e in negotiating if e.latest_first and e.latest_first[0].author_role == "buyer"],
        "deliveries_due": list(engagements.filter(status=Engagement.Status.ACTIVE).order_by("delivery_due_at")),
        "recent": list(engagements[:10]),
    }


def engagement_page(*, user: User, pk: int) -> dict[str, Any]:
    """Everything the engagement page shows, read in a fixed number of queries.

    For the parties and staff only; raises Engagement.DoesNotExist for anyone else.
    `role` is "buyer", "seller" or None (staff looking on).
    """
    engagement = engagement_get(user=user, pk=pk)
    proposals = proposals_with_diffs(engagement=engagement)
    try:
        deliverable: Deliverable | None = engagement.deliverable
    except Deliverable.DoesNotExist:
        deliverable = None
    return {
        "engagement": engagement,
        "role": engagement_role(engagement=engagement, user=user),
        "proposals": proposals,
        "latest_proposal": proposals[-1]["proposal"] if proposals else None,
        "status_changes": list(engagement.status_changes.all()),
        "deliverable": deliverable,
        "delivery_attempts": list(engagement.delivery_attempts.all()),
    }


def engagement_is_visible(*, user: User, pk: int) -> bool:
    """Whether `user` may see engagement `pk` (a party or staff): a cheap check before a write."""
    return Engagement.objects.filter(engagement_visible_to(user), pk=pk).exists()
