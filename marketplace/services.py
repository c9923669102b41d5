"""Every write of the marketplace. Keyword-only; the top-level ones are the
transaction boundary; side effects (signals, tasks) run on commit.

Permission rules live here too, so the API, the pages and the tasks share them:
only sellers list agents, only a listing's owner edits it, only the two parties
negotiate, only the seller delivers.
"""

from __future__ import annotations

import datetime
import hashlib
import math
import secrets
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import URLValidator
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.text import slugify

from core.errors import Conflict, NotAllowed, ValidationFailed
from core.evidence import canonical_json
from core.models import User
from core.money import MoneyError, normalize_currency
from core.services import evidence_append
from core.state_machine import move_status
from core.validation import ensure_storable
from marketplace import agent_client, signals
from marketplace.lock_objects import engagement_lock
from marketplace.models import (
    AgentListing,
    AgentToken,
    BenchmarkClaim,
    Deliverable,
    DeliveryAttempt,
    Engagement,
    EngagementStatusChange,
    PactTemplate,
    PactVersion,
    Proposal,
)
from marketplace.pacts import latency_budget_ms, next_version, normalize_pact, pact_hash
from marketplace.states import CANCELLABLE, TRANSITIONS

MAX_CATEGORIES = 10
MAX_PROPOSALS = 100  # a negotiation that long is not converging; it also bounds the engagement page
AGENT_TOKEN_PREFIX = "pat_"


# --- listings -----------------------------------------------------------------


_http_url = URLValidator(schemes=["http", "https"])


def _text(field: str, value: Any, *, max_length: int, required: bool = True) -> str:
    """A string field the database can store; every caller (API, pages, tasks) gets the same rule."""
    if not isinstance(value, str):
        raise ValidationFailed(f"{field}: text expected.")
    value = value.strip()
    if required and not value:
        raise ValidationFailed(f"{field}: this field may not be blank.")
    ensure_storable(value, field)
    if len(value) > max_length:
        raise ValidationFailed(f"{field}: at most {max_length} characters.")
    return value


def _url(field: str, value: Any) -> str:
    value = _text(field, value, max_length=500, required=False)
    if value:
        try:
            _http_url(value)
        except DjangoValidationError as exc:
            raise ValidationFailed(f"{field}: an http or https URL.") from exc
    return value


def _clean_categories(categories: Any) -> list[str]:
    if not isinstance(categories, list) or not all(isinstance(c, str) for c in categories):
        raise ValidationFailed("categories: a list of category names.")
    if any(len(c) > 50 for c in categories):
        raise ValidationFailed("categories: each at most 50 characters.")
    cleaned = sorted({slugify(c) for c in categories if slugify(c)})
    if len(cleaned) > MAX_CATEGORIES:
        raise ValidationFailed(f"categories: at most {MAX_CATEGORIES}.")
    return cleaned


def _currency(code: str) -> str:
    try:
        return normalize_currency(code)
    except MoneyError as exc:
        raise ValidationFailed(f"currency: {exc}") from exc


def _unique_slug(name: str) -> str:
    base = slugify(name)[:120] or "agent"
    slug, n = base, 1
    while AgentListing.objects.filter(slug=slug).exists():
        n += 1
        slug = f"{base}-{n}"
    return slug


def _require_seller(user: User) -> None:
    if not user.is_authenticated or user.role != User.Role.SELLER:
        raise NotAllowed("Only sellers can publish agent listings.")


def _require_owner(listing: AgentListing, user: User) -> None:
    if listing.seller_id != user.pk:
        raise NotAllowed("Only the listing's seller can change it.")


@transaction.atomic
def listing_create(
    *,
    seller: User,
    name: str,
    description: str = "",
    categories: list[str] | None = None,
    price_minor: int,
    currency: str,
    endpoint_url: str = "",
    status: str = AgentListing.Status.PUBLISHED,
) -> AgentListing:
    _require_seller(seller)
    if status not in (AgentListing.Status.DRAFT, AgentListing.Status.PUBLISHED):
        raise ValidationFailed("status: a new listing is draft or published.")
    if not isinstance(price_minor, int) or isinstance(price_minor, bool) or not 0 < price_minor <= 10**11:
        raise ValidationFailed("price_minor: a positive integer number of minor units.")
    name = _text("name", name, max_length=120)
    description = _text("description", description, max_length=10_000, required=False)
    endpoint_url = _url("endpoint_url", endpoint_url)
    for _ in range(3):
        try:
            with transaction.atomic():
                return AgentListing.objects.create(
                    seller=seller,
                    name=name,
                    slug=_unique_slug(name),
                    description=description,
                    categories=_clean_categories(categories or []),
                    price_minor=price_minor,
                    currency=_currency(currency),
                    endpoint_url=endpoint_url,
                    status=status,
                )  # fields checked above
        except IntegrityError:  # a concurrent listing took the slug; pick the next one
            continue
    raise Conflict("Could not pick a unique address for this listing; try again.")


EDITABLE_LISTING_FIELDS = frozenset(
    {"name", "description", "categories", "price_minor", "currency", "endpoint_url", "status"}
)


@transaction.atomic
def listing_update(*, listing: AgentListing, actor: User, **changes: Any) -> AgentListing:
    listing = AgentListing.objects.select_for_update().get(pk=listing.pk)
    _require_owner(listing, actor)
    unknown = set(changes) - EDITABLE_LISTING_FIELDS
    if unknown:
        raise ValidationFailed(f"Cannot change {', '.join(sorted(unknown))}.")
    if "status" in changes:
        new_status = changes["status"]
        if new_status not in (AgentListing.Status.DRAFT, AgentListing.Status.PUBLISHED):
            raise ValidationFailed("status: sellers can set draft or published.")
        if listing.status == AgentListing.Status.SUSPENDED and new_status != listing.status:
            raise Conflict("This listing is suspended by Pactum; only an admin can lift a suspension.")
    if "categories" in changes:
        changes["categories"] = _clean_categories(changes["categories"])
    if "name" in changes:
        changes["name"] = _text("name", changes["name"], max_length=120)
    if "description" in changes:
        changes["description"] = _text("description", changes["description"], max_length=10_000, required=False)
    if "endpoint_url" in changes:
        changes["endpoint_url"] = _url("endpoint_url", changes["endpoint_url"])
    if "currency" in changes:
        changes["currency"] = _currency(changes["currency"])
    price = changes.get("price_minor", 1)
    if not isinstance(price, int) or isinstance(price, bool) or not 0 < price <= 10**11:
        raise ValidationFailed("price_minor: a positive integer number of minor units.")
    for field, value in changes.items():
        setattr(listing, field, value)
    listing.save()
    return listing


@transaction.atomic
def listing_set_status(*, listing_id: int, status: str) -> AgentListing:
    """Platform-side status change (trust policies suspend or restore listings)."""
    listing = AgentListing.objects.select_for_update().get(pk=listing_id)
    listing.status = status
    listing.save(update_fields=["status", "updated_at"])
    return listing


@transaction.atomic
def benchmark_claim_create(
    *,
    listing: AgentListing,
    actor: User,
    benchmark: str,
    score: float,
    measured_on: Any,
    source_url: str = "",
    categories: list[str] | None = None,
) -> BenchmarkClaim:
    _require_owner(listing, actor)
    benchmark = _text("benchmark", benchmark, max_length=120)
    if isinstance(score, bool) or not isinstance(score, (int, float)) or not math.isfinite(score) or abs(score) > 1e9:
        raise ValidationFailed("score: a finite number.")
    if not isinstance(measured_on, datetime.date) or isinstance(measured_on, datetime.datetime):
        raise ValidationFailed("measured_on: a date.")
    if measured_on > timezone.now().date():
        raise ValidationFailed("measured_on: a benchmark cannot be measured in the future.")
    return BenchmarkClaim.objects.create(
        listing=listing,
        benchmark=benchmark,
        score=float(score),
        measured_on=measured_on,
        source_url=_url("source_url", source_url),
        categories=_clean_categories(categories or []),
    )


# --- agent tokens -----------------------------------------------------------------


def _token_hash(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


@transaction.atomic
def agent_token_create(*, listing: AgentListing, actor: User, name: str) -> tuple[AgentToken, str]:
    """Create a delivery token for one listing; the raw key is returned once, only a hash is kept."""
    _require_owner(listing, actor)
    name = _text("name", name, max_length=100)
    raw = AGENT_TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = AgentToken.objects.create(listing=listing, name=name, prefix=raw[:12], key_hash=_token_hash(raw))
    return token, raw


@transaction.atomic
def agent_token_revoke(*, token: AgentToken, actor: User) -> AgentToken:
    _require_owner(token.listing, actor)
    AgentToken.objects.filter(pk=token.pk, revoked_at__isnull=True).update(revoked_at=timezone.now())
    token.refresh_from_db()
    return token


def agent_token_authenticate(*, raw: str) -> AgentToken | None:
    """The active token with this key, or None. Records when it was last used."""
    token = (
        AgentToken.objects.select_related("listing__seller")
        .filter(key_hash=_token_hash(raw), revoked_at__isnull=True)
        .first()
    )
    if token is not None:
        AgentToken.objects.filter(pk=token.pk).update(last_used_at=timezone.now())
    return token


# --- pacts -----------------------------------------------------------------------


@transaction.atomic
def pact_publish(*, listing: AgentListing, actor: User, name: str, clauses: Any, terms: Any) -> PactVersion:
    """Publish a pact template, or a new version of the template with this name.

    Identical content republishes nothing and returns the current version.
    Locks the template row so two publishers cannot take the same version.
    """
    _require_owner(listing, actor)
    name = _text("name", name, max_length=120)
    content = normalize_pact(clauses, terms)
    template, _ = PactTemplate.objects.get_or_create(listing=listing, name=name)
    template = PactTemplate.objects.select_for_update().get(pk=template.pk)
    latest = template.versions.filter(kind=PactVersion.Kind.PUBLISHED).order_by("-created_at", "-id").first()
    digest = pact_hash(content)
    if latest is not None and latest.content_hash == digest:
        return latest
    return PactVersion.objects.create(
        template=template,
        kind=PactVersion.Kind.PUBLISHED,
        version=next_version(latest.version if latest else None, latest.content if latest else None, content),
        clauses=content["clauses"],
        terms=content["terms"],
        content_hash=digest,
    )


# --- engagements and negotiation -----------------------------------------------------


def _role_in(engagement: Engagement, user: User) -> str:
    if user.pk == engagement.buyer_id:
        return Proposal.Role.BUYER
    if user.pk == engagement.listing.seller_id:
        return Proposal.Role.SELLER
    raise NotAllowed("Only the buyer and the seller of this engagement can do that.")


def _move(engagement: Engagement, to_status: str, *, actor: User | None, reason: str = "") -> Engagement:
    """Move a *locked* engagement to `to_status`, writing its history row."""
    return move_status(
        engagement,
        to_status,
        transitions=TRANSITIONS,
        history=EngagementStatusChange,
        history_fk="engagement",
        noun="engagement",
        actor=actor,
        reason=reason,
    )


def _latest_template_version(template: PactTemplate) -> PactVersion:
    version = template.versions.filter(kind=PactVersion.Kind.PUBLISHED).order_by("-created_at", "-id").first()
    if version is None:
        raise ValidationFailed("pact: this pact has no published version.")
    return version


@transaction.atomic(durable=True)
def engagement_create(
    *, buyer: User, listing: AgentListing, template: PactTemplate, task: Any, category: str = ""
) -> Engagement:
    """Open an engagement; proposal 1 is the template's latest version, authored by the buyer.

    `category` names the kind of job (one of the listing's categories; the
    listing's first when not given); the agent's per-category trust grows from it.
    """
    if buyer.role != User.Role.BUYER:
        raise NotAllowed("Only buyers can hire agents.")
    if listing.status != AgentListing.Status.PUBLISHED:
        raise Conflict("This agent is not available for hire.", code="listing_unavailable")
    if template.listing_id != listing.pk:
        raise ValidationFailed("pact: that pact belongs to another agent.")
    if task in (None, "", {}, []):
        raise ValidationFailed("task: describe the job for the agent.")
    if len(canonical_json(task)) > 50_000:
        raise ValidationFailed("task: at most 50,000 characters.")
    ensure_storable(task, "task")
    if not isinstance(category, str):
        raise ValidationFailed("category: one of the agent's categories.")
    if category and category not in listing.categories:
        choices = ", ".join(listing.categories) or "none"
        raise ValidationFailed(f"category: this agent works in {choices}.")
    category = category or (listing.categories[0] if listing.categories else "")
    version = _latest_template_version(template)
    engagement = Engagement.objects.create(
        buyer=buyer, listing=listing, template=template, template_version=version, task=task, category=category
    )
    EngagementStatusChange.objects.create(
        engagement=engagement, from_status="", to_status=engagement.status, actor=buyer, reason="opened"
    )
    Proposal.objects.create(
        engagement=engagement,
        number=1,
        author=buyer,
        author_role=Proposal.Role.BUYER,
        clauses=version.clauses,
        terms=version.terms,
        content_hash=version.content_hash,
        note=f"{template.name} {version.version}",
    )
    return engagement


@transaction.atomic(durable=True)
def proposal_create(*, engagement_id: int, actor: User, clauses: Any, terms: Any, note: str = "") -> Proposal:
    """Post a counter-proposal (full content). Locks the engagement row."""
    engagement = engagement_lock(engagement_id)
    role = _role_in(engagement, actor)
    if engagement.status != Engagement.Status.NEGOTIATING:
        raise Conflict(f"Negotiation is over: the engagement is {engagement.status}.", code="not_negotiating")
    content = normalize_pact(clauses, terms)
    latest = engagement.proposals.order_by("-number").first()
    number = latest.number + 1 if latest else 1
    if number > MAX_PROPOSALS:
        raise Conflict(
            f"This negotiation reached {MAX_PROPOSALS} proposals; accept the latest or cancel.",
            code="too_many_proposals",
        )
    if latest is not None and latest.content_hash == pact_hash(content):
        if latest.author_role == role:
            raise Conflict("This is the same as your latest proposal.", code="unchanged")
        raise Conflict(
            f"This is exactly proposal {latest.number}; accept it instead of proposing it again.", code="unchanged"
        )
    return Proposal.objects.create(
        engagement=engagement,
        number=number,
        author=actor,
        author_role=role,
        clauses=content["clauses"],
        terms=content["terms"],
        content_hash=pact_hash(content),
        note=note[:1000],
    )


@transaction.atomic(durable=True)
def proposal_accept(*, engagement_id: int, actor: User, proposal_number: int | None = None) -> Engagement:
    """The other party accepts the latest proposal: lock a PactVersion, move to agreed.

    Locks the engagement row, so of two concurrent accepts exactly one locks
    and the other sees the engagement already agreed (409).
    """
    engagement = engagement_lock(engagement_id)
    role = _role_in(engagement, actor)
    if engagement.status != Engagement.Status.NEGOTIATING:
        raise Conflict(f"Negotiation is over: the engagement is {engagement.status}.", code="not_negotiating")
    latest = engagement.proposals.order_by("-number").first()
    if latest is None:  # pragma: no cover - engagement_create always writes proposal 1
        raise Conflict("There is nothing to accept yet.")
    if proposal_number is not None and not 1 <= proposal_number <= latest.number:
        raise ValidationFailed(
            f"proposal: this engagement has no proposal {proposal_number} (the latest is {latest.number})."
        )
    if proposal_number is not None and proposal_number != latest.number:
        raise Conflict(
            f"Proposal {proposal_number} was superseded by proposal {latest.number}; review and accept the latest.",
            code="superseded",
        )
    if latest.author_role == role:
        raise Conflict(
            "You posted this proposal, which counts as your acceptance; the other party must accept it.",
            code="own_proposal",
        )
    now = timezone.now()
    latest.accepted_by = actor
    latest.accepted_at = now
    latest.save(update_fields=["accepted_by", "accepted_at"])
    base = engagement.template_version or _latest_template_version(engagement.template)
    pact_version = PactVersion.objects.create(
        template=engagement.template,
        kind=PactVersion.Kind.LOCKED,
        # Semantic-version build metadata: which template version it grew from, and where it was agreed.
        version=f"{base.version}+e{engagement.pk}.p{latest.number}",
        clauses=latest.clauses,
        terms=latest.terms,
        content_hash=latest.content_hash,
    )
    engagement.pact_version = pact_version
    engagement.save(update_fields=["pact_version", "updated_at"])
    _move(engagement, Engagement.Status.AGREED, actor=actor, reason=f"proposal {latest.number} accepted")
    evidence_append(
        kind="pact.locked",
        subject=f"engagement:{engagement.pk}",
        payload={
            "engagement": engagement.pk,
            "pact_version": pact_version.pk,
            "version": pact_version.version,
            "hash": pact_version.content_hash,
            "clauses": pact_version.clauses,
            "terms": pact_version.terms,
            "proposal": latest.number,
            "buyer": engagement.buyer_id,
            "seller": engagement.listing.seller_id,
            "accepted_by": actor.pk,
        },
    )
    return engagement


@transaction.atomic(durable=True)
def engagement_cancel(*, engagement_id: int, actor: User, reason: str = "") -> Engagement:
    engagement = engagement_lock(engagement_id)
    _role_in(engagement, actor)
    if engagement.status not in CANCELLABLE:
        raise Conflict(
            f"An engagement that is {engagement.status} cannot be cancelled; once funded it settles through escrow.",
            code="invalid_transition",
        )
    return _move(engagement, Engagement.Status.CANCELLED, actor=actor, reason=reason or "cancelled")


# --- states set by other apps ------------------------------------------------------


def engagement_mark_active(
    *, engagement_id: int, actor: User | None = None, reason: str = "escrow funded"
) -> Engagement:
    """Funded: start the delivery clock; the platform calls the agent if it has an endpoint.

    Joins the caller's transaction (escrow funds and activates in one).
    """
    with transaction.atomic():
        engagement = engagement_lock(engagement_id)
        _move(engagement, Engagement.Status.ACTIVE, actor=actor, reason=reason)
        now = timezone.now()
        hours = engagement.pact_version.terms["delivery_deadline_hours"] if engagement.pact_version else 48
        engagement.activated_at = now
        engagement.delivery_due_at = now + datetime.timedelta(hours=hours)
        engagement.save(update_fields=["activated_at", "delivery_due_at", "updated_at"])
        if engagement.listing.endpoint_url:
            from marketplace.tasks import call_agent_endpoint

            transaction.on_commit(lambda: call_agent_endpoint.delay(engagement.pk))
        return engagement


def _mark(engagement_id: int, to_status: str, reason: str, actor: User | None) -> Engagement:
    with transaction.atomic():
        engagement = engagement_lock(engagement_id)
        return _move(engagement, to_status, actor=actor, reason=reason)


def engagement_mark_evaluated(*, engagement_id: int, reason: str = "evaluation finalized") -> Engagement:
    return _mark(engagement_id, Engagement.Status.EVALUATED, reason, None)


def engagement_mark_disputed(
    *, engagement_id: int, actor: User | None = None, reason: str = "dispute opened"
) -> Engagement:
    return _mark(engagement_id, Engagement.Status.DISPUTED, reason, actor)


def engagement_mark_closed(*, engagement_id: int, actor: User | None = None, reason: str = "settled") -> Engagement:
    return _mark(engagement_id, Engagement.Status.CLOSED, reason, actor)


def engagement_mark_expired(*, engagement_id: int, reason: str = "delivery deadline passed") -> Engagement:
    return _mark(engagement_id, Engagement.Status.EXPIRED, reason, None)


# --- delivery ------------------------------------------------------------------------


def _deliverable_hash(output: Any, citations: Any, actions: Any, latency_ms: int | None) -> str:
    body = {"output": output, "citations": citations, "actions": actions, "latency_ms": latency_ms}
    return hashlib.sha256(canonical_json(body).encode()).hexdigest()


def _check_delivery_shape(output: Any, citations: Any, actions: Any, latency_ms: Any) -> None:
    if output in (None, "", {}, []):
        raise ValidationFailed("output: the delivery has no output.")
    if not isinstance(output, (str, dict, list)):
        raise ValidationFailed("output: text or a JSON object.")
    if len(canonical_json(output)) > 200_000:
        raise ValidationFailed("output: at most 200,000 characters.")
    if not isinstance(citations, list) or not all(isinstance(c, str) and len(c) <= 2000 for c in citations):
        raise ValidationFailed("citations: a list of strings (URLs or references).")
    if len(citations) > 500:
        raise ValidationFailed("citations: at most 500.")
    if not isinstance(actions, list) or not all(isinstance(a, (str, dict)) for a in actions) or len(actions) > 1000:
        raise ValidationFailed("actions: a list (at most 1000) of action names or {name, ...} objects.")
    for action in actions:
        if isinstance(action, dict) and not isinstance(action.get("name"), str):
            raise ValidationFailed("actions: every action object needs a name.")
    if latency_ms is not None and (
        not isinstance(latency_ms, int) or isinstance(latency_ms, bool) or not 0 <= latency_ms <= 86_400_000
    ):
        raise ValidationFailed("latency_ms: a whole number of milliseconds from 0 to 86400000.")


@transaction.atomic(durable=True)
def deliverable_submit(
    *,
    engagement_id: int,
    actor: User | None,
    output: Any,
    citations: list | None = None,
    actions: list | None = None,
    latency_ms: int | None = None,
    source: str = Deliverable.Source.SELLER,
    agent_token: AgentToken | None = None,
) -> Deliverable:
    """Store the agent's output and move the engagement to delivered.

    Only the listing's seller (or a token of that listing, or the platform
    itself for endpoint calls) delivers, only while active, only once. Locks the
    engagement row. Sends `deliverable_submitted` on commit.
    """
    citations = [] if citations is None else citations
    actions = [] if actions is None else actions
    engagement = engagement_lock(engagement_id)
    # Who may deliver is checked before what was delivered: outsiders learn nothing about the rules.
    if source == Deliverable.Source.AGENT_TOKEN:
        if agent_token is None or agent_token.listing_id != engagement.listing_id:
            raise NotAllowed("This agent token is not for this engagement's agent.")
    elif source == Deliverable.Source.SELLER and (actor is None or actor.pk != engagement.listing.seller_id):
        raise NotAllowed("Only the seller of this engagement can deliver.")
    _check_delivery_shape(output, citations, actions, latency_ms)
    ensure_storable({"output": output, "citations": citations, "actions": actions}, "")
    if Deliverable.objects.filter(engagement_id=engagement.pk).exists():
        raise Conflict("This engagement has already been delivered.", code="already_delivered")
    if engagement.status != Engagement.Status.ACTIVE:
        raise Conflict(
            f"Delivery opens once the buyer has funded escrow; the engagement is {engagement.status}.",
            code="not_active",
        )
    deliverable = Deliverable.objects.create(
        engagement=engagement,
        output=output,
        citations=citations,
        actions=actions,
        latency_ms=latency_ms,
        content_hash=_deliverable_hash(output, citations, actions, latency_ms),
        source=source,
        submitted_by=actor,
    )
    _move(engagement, Engagement.Status.DELIVERED, actor=actor, reason=f"delivered ({source})")
    evidence_append(
        kind="deliverable.submitted",
        subject=f"engagement:{engagement.pk}",
        payload={
            "engagement": engagement.pk,
            "deliverable": deliverable.pk,
            "hash": deliverable.content_hash,
            "pact_hash": engagement.pact_version.content_hash if engagement.pact_version else None,
            "source": source,
            "latency_ms": latency_ms,
        },
    )
    transaction.on_commit(
        lambda: signals.deliverable_submitted.send(
            sender=Deliverable, deliverable_id=deliverable.pk, engagement_id=engagement.pk
        )
    )
    return deliverable


@transaction.atomic
def delivery_attempt_record(
    *, engagement_id: int, url: str, ok: bool, status_code: int | None, latency_ms: int | None, error: str = ""
) -> DeliveryAttempt:
    last = DeliveryAttempt.objects.filter(engagement_id=engagement_id).order_by("-number").first()
    return DeliveryAttempt.objects.create(
        engagement_id=engagement_id,
        number=(last.number + 1) if last else 1,
        url=url,
        ok=ok,
        status_code=status_code,
        latency_ms=latency_ms,
        error=error[:500],
    )


# Added to the pact's latency budget to get the call's timeout. The budget is
# what the agent promised; the max_latency_ms clause judges the latency we
# measure against it. Cutting the call at exactly the budget would turn a
# slightly late answer into no delivery at all (a failed attempt, a retry, in
# the end an expired engagement), whereas the buyer agreed to have lateness
# judged by that clause and weighed by its severity. One second also covers the
# TCP and TLS setup between our worker and the endpoint, which the measured
# latency includes but the agent does not control.
ENDPOINT_TIMEOUT_MARGIN_MS = 1_000


def engagement_call_agent(*, engagement_id: int, max_attempts: int | None = None) -> DeliveryAttempt | None:
    """Call the agent's endpoint once for an active engagement and deliver its answer.

    Returns the recorded attempt, or None when there is nothing to do (not
    active, already delivered, no endpoint, or `max_attempts` attempts already
    recorded), so a redelivered task is a no-op.

    Deliberately not atomic: the outbound call can take the whole timeout and
    must run with no transaction open and no row locked. The delivery is then
    its own durable transaction (`deliverable_submit` locks the engagement and
    re-checks status and uniqueness, so two concurrent calls deliver once), and
    the attempt row is written last, with the outcome of both.
    """
    engagement = Engagement.objects.select_related("listing", "pact_version").filter(pk=engagement_id).first()
    if (
        engagement is None
        or engagement.status != Engagement.Status.ACTIVE
        or not engagement.listing.endpoint_url
        or engagement.pact_version is None
        or Deliverable.objects.filter(engagement_id=engagement_id).exists()
        or (
            max_attempts is not None
            and DeliveryAttempt.objects.filter(engagement_id=engagement_id).count() >= max_attempts
        )
    ):
        return None
    pact = engagement.pact_version
    url = engagement.listing.endpoint_url
    budget = latency_budget_ms(pact.clauses)
    timeout_ms = budget + ENDPOINT_TIMEOUT_MARGIN_MS if budget else settings.AGENT_ENDPOINT_DEFAULT_TIMEOUT_MS
    response = agent_client.call_agent(
        url=url,
        secret=engagement.listing.endpoint_secret,
        payload={
            "engagement": engagement.pk,
            "task": engagement.task,
            "pact": {"hash": pact.content_hash, "clauses": pact.clauses, "terms": pact.terms},
        },
        timeout_ms=timeout_ms,
        allow_private=settings.AGENT_ENDPOINT_ALLOW_PRIVATE,
        engagement_id=engagement.pk,
    )
    ok, error = response.ok, response.error
    if response.ok and response.body is not None:
        try:
            deliverable_submit(
                engagement_id=engagement.pk,
                actor=None,
                output=response.body["output"],
                citations=response.body.get("citations", []),
                actions=response.body.get("actions", []),
                # The platform's own measurement; whatever the agent says about itself is ignored.
                latency_ms=response.latency_ms,
                source=Deliverable.Source.ENDPOINT,
            )
        except ValidationFailed as exc:
            ok, error = False, f"the answer was refused: {exc.detail}"
        except (ValueError, RecursionError) as exc:  # a value no check above anticipated: record, never crash
            ok, error = False, f"the answer could not be stored: {type(exc).__name__}"
        except Conflict as exc:
            # Delivered meanwhile (a concurrent run, or the seller by hand) or no longer active.
            ok, error = False, f"the answer was discarded: {exc.detail}"
    return delivery_attempt_record(
        engagement_id=engagement.pk,
        url=url,
        ok=ok,
        status_code=response.status_code,
        latency_ms=response.latency_ms,
        error=error,
    )
