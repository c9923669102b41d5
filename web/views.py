"""Server-rendered pages. Each view parses a form, calls one service or
selector, and renders; services' domain errors are shown on the page with
their status code (400, 403, 409), never as a 500.

Owner-only pages answer 404 when the listing is not visible to the user at
all and 403 when it is visible but belongs to someone else.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from rest_framework.exceptions import ValidationError as PactValidationError

from core import services
from core.errors import DomainError
from escrow import selectors as escrow_selectors
from marketplace import selectors
from marketplace import services as market
from marketplace.models import AgentListing, AgentToken, Engagement, PactTemplate
from trust import selectors as trust_selectors
from web import escrow_views
from web.forms import (
    EXAMPLE_CLAUSES,
    AcceptForm,
    AgentTokenForm,
    BenchmarkClaimForm,
    CancelForm,
    DeliverForm,
    EngagementFilterForm,
    HireForm,
    ListingForm,
    ListingSearchForm,
    PactContentForm,
    PactForm,
    ProposalForm,
    SignUpForm,
)

PAGE_SIZE = 20


def home(request: HttpRequest) -> HttpResponse:
    return render(request, "web/home.html")


@require_http_methods(["GET", "POST"])
def signup(request: HttpRequest) -> HttpResponse:
    if request.user.is_authenticated:
        return redirect("web:home")
    form = SignUpForm(request.POST or None, initial={"role": request.GET.get("role", "buyer")})
    if request.method == "POST" and form.is_valid():
        user, _token = services.user_register(
            username=form.cleaned_data["username"],
            email=form.cleaned_data["email"],
            password=form.cleaned_data["password1"],
            role=form.cleaned_data["role"],
        )
        login(request, user, backend="django.contrib.auth.backends.ModelBackend")
        messages.success(request, f"Welcome to Pactum, {user.username}. You are signed in as a {user.role}.")
        return redirect("web:home")
    return render(request, "registration/signup.html", {"form": form})


# --- helpers ------------------------------------------------------------------------------


def _forbidden(request: HttpRequest, message: str) -> HttpResponse:
    return render(request, "web/forbidden.html", {"message": message}, status=403)


def _listing_or_404(request: HttpRequest, slug: str) -> AgentListing:
    try:
        return selectors.listing_get(user=request.user, slug=slug)  # type: ignore[arg-type]
    except AgentListing.DoesNotExist as exc:
        raise Http404("No such agent.") from exc


def _is_owner(request: HttpRequest, listing: AgentListing) -> bool:
    return request.user.is_authenticated and listing.seller_id == request.user.pk


NOT_OWNER = "Only this agent's seller can do that."


def _hireable_templates(listing: AgentListing) -> list[PactTemplate]:
    return [t for t in listing.pact_templates.all() if getattr(t, "published_versions", None)]


# --- listings -------------------------------------------------------------------------------


@require_GET
def agent_list(request: HttpRequest) -> HttpResponse:
    form = ListingSearchForm(request.GET, categories=selectors.listing_categories())
    filters = form.filters()
    category = filters["category"]
    if filters["ordering"] == "trust":
        listings = trust_selectors.listings_ranked(
            selectors.listing_list(user=request.user, category=category, q=filters["q"]),  # type: ignore[arg-type]
            category=category,
        )
    else:
        listings = selectors.listing_list(user=request.user, **filters)  # type: ignore[arg-type]
    page = Paginator(listings, PAGE_SIZE).get_page(request.GET.get("page"))
    page.object_list = list(page.object_list)
    # The trust badges of the whole page in two queries, for the category browsed.
    summaries = trust_selectors.trust_summaries(listing_ids=[listing.pk for listing in page], category=category)
    for listing in page.object_list:
        listing.trust = summaries[listing.pk]  # type: ignore[attr-defined]
    context = {"form": form, "page": page, "category": category, "min_evidence": settings.TRUST_MIN_EVIDENCE}
    return render(request, "web/agent_list.html", context)


def _render_agent_detail(
    request: HttpRequest, listing: AgentListing, hire_form: HireForm | None = None, status: int = 200
) -> HttpResponse:
    templates = _hireable_templates(listing)
    if hire_form is None and request.user.is_authenticated and request.user.is_buyer:  # type: ignore[union-attr]
        hire_form = HireForm(templates=templates, categories=listing.categories)
    context = {
        "listing": listing,
        "is_owner": _is_owner(request, listing),
        "hire_form": hire_form,
        "trust": trust_selectors.trust_summaries(listing_ids=[listing.pk])[listing.pk],
        "min_evidence": settings.TRUST_MIN_EVIDENCE,
    }
    return render(request, "web/agent_detail.html", context, status=status)


@require_GET
def agent_detail(request: HttpRequest, slug: str) -> HttpResponse:
    return _render_agent_detail(request, _listing_or_404(request, slug))


@require_http_methods(["GET", "POST"])
def agent_hire(request: HttpRequest, slug: str) -> HttpResponse:
    """POST opens an engagement; a GET (a bookmarked or reloaded URL) goes to the agent's page,
    where the hire form lives."""
    if request.method == "GET":
        return redirect(reverse("web:agent-detail", kwargs={"slug": slug}) + "#hire")
    return _agent_hire(request, slug)


@login_required
def _agent_hire(request: HttpRequest, slug: str) -> HttpResponse:
    listing = _listing_or_404(request, slug)
    form = HireForm(request.POST, templates=_hireable_templates(listing), categories=listing.categories)
    if not form.is_valid():
        return _render_agent_detail(request, listing, form, status=400)
    try:
        engagement = market.engagement_create(
            buyer=request.user,  # type: ignore[arg-type]
            listing=listing,
            template=form.cleaned_data["pact"],
            task=form.cleaned_data["task"],
            category=form.cleaned_data["category"],
        )
    except DomainError as exc:
        form.add_service_error(exc)
        return _render_agent_detail(request, listing, form, status=exc.status_code)
    messages.success(
        request,
        "Engagement opened. Proposal 1 holds the pact's terms: the seller can accept it or counter.",
    )
    return redirect("web:engagement-detail", pk=engagement.pk)


@login_required
@require_http_methods(["GET", "POST"])
def listing_new(request: HttpRequest) -> HttpResponse:
    if not request.user.is_seller:  # type: ignore[union-attr]
        return _forbidden(request, "Only seller accounts can list agents.")
    form = ListingForm(request.POST or None)
    status = 200
    if request.method == "POST":
        status = 400
        if form.is_valid():
            try:
                listing = market.listing_create(seller=request.user, **form.service_kwargs())  # type: ignore[arg-type]
            except DomainError as exc:
                form.add_service_error(exc)
                status = exc.status_code
            else:
                messages.success(request, f"{listing.name} is listed. Add a pact so buyers can hire it.")
                return redirect("web:agent-detail", slug=listing.slug)
    return render(request, "web/listing_form.html", {"form": form, "listing": None}, status=status)


@login_required
@require_http_methods(["GET", "POST"])
def listing_edit(request: HttpRequest, slug: str) -> HttpResponse:
    listing = _listing_or_404(request, slug)
    if not _is_owner(request, listing):
        return _forbidden(request, NOT_OWNER)
    suspended = listing.status == AgentListing.Status.SUSPENDED
    form = ListingForm(request.POST or None, initial=ListingForm.initial_for(listing), lock_status=suspended)
    status = 200
    if request.method == "POST":
        status = 400
        if form.is_valid():
            try:
                market.listing_update(listing=listing, actor=request.user, **form.service_kwargs())  # type: ignore[arg-type]
            except DomainError as exc:
                form.add_service_error(exc)
                status = exc.status_code
            else:
                messages.success(request, "Listing saved.")
                return redirect("web:agent-detail", slug=listing.slug)
    return render(request, "web/listing_form.html", {"form": form, "listing": listing}, status=status)


@login_required
@require_http_methods(["GET", "POST"])
def pact_new(request: HttpRequest, slug: str) -> HttpResponse:
    listing = _listing_or_404(request, slug)
    if not _is_owner(request, listing):
        return _forbidden(request, NOT_OWNER)
    status = 200
    if request.method == "POST":
        form = PactForm(request.POST)
        status = 400
        if form.is_valid():
            try:
                version = market.pact_publish(
                    listing=listing,
                    actor=request.user,  # type: ignore[arg-type]
                    name=form.cleaned_data["name"],
                    clauses=form.cleaned_data["clauses"],
                    terms=form.terms(),
                )
            except PactValidationError as exc:
                form.add_pact_errors(exc.detail)
            except DomainError as exc:
                form.add_service_error(exc)
                status = exc.status_code
            else:
                messages.success(request, f"Pact “{version.template.name}” is at version {version.version}.")
                return redirect(reverse("web:agent-detail", kwargs={"slug": listing.slug}) + "#pacts")
    else:
        form = PactForm(initial=_pact_initial(listing, request.GET.get("from", "")))
    return render(request, "web/pact_form.html", {"form": form, "listing": listing}, status=status)


def _pact_initial(listing: AgentListing, template_id: str) -> dict[str, Any]:
    """Start from an existing pact's latest version (?from=<id>), else from a realistic example."""
    for template in _hireable_templates(listing):
        if str(template.pk) == template_id:
            latest = template.published_versions[0]  # type: ignore[attr-defined]
            return {"name": template.name, **PactContentForm.initial_for(latest.clauses, latest.terms)}
    terms = {"price_minor": listing.price_minor, "currency": listing.currency}
    return {"name": "Standard pact", **PactContentForm.initial_for(EXAMPLE_CLAUSES, terms)}


@login_required
@require_http_methods(["GET", "POST"])
def benchmark_new(request: HttpRequest, slug: str) -> HttpResponse:
    listing = _listing_or_404(request, slug)
    if not _is_owner(request, listing):
        return _forbidden(request, NOT_OWNER)
    form = BenchmarkClaimForm(request.POST or None)
    status = 200
    if request.method == "POST":
        status = 400
        if form.is_valid():
            try:
                market.benchmark_claim_create(listing=listing, actor=request.user, **form.cleaned_data)  # type: ignore[arg-type]
            except DomainError as exc:
                form.add_service_error(exc)
                status = exc.status_code
            else:
                messages.success(request, "Benchmark claim added.")
                return redirect(reverse("web:agent-detail", kwargs={"slug": listing.slug}) + "#benchmarks")
    return render(request, "web/benchmark_form.html", {"form": form, "listing": listing}, status=status)


@never_cache  # the response to a create carries the raw token, shown once
@login_required
@require_http_methods(["GET", "POST"])
def agent_tokens(request: HttpRequest, slug: str) -> HttpResponse:
    listing = _listing_or_404(request, slug)
    if not _is_owner(request, listing):
        return _forbidden(request, NOT_OWNER)
    form = AgentTokenForm(request.POST or None)
    raw_token = None
    status = 200
    if request.method == "POST":
        status = 400
        if form.is_valid():
            try:
                _token, raw_token = market.agent_token_create(
                    listing=listing,
                    actor=request.user,  # type: ignore[arg-type]
                    name=form.cleaned_data["name"],
                )
            except DomainError as exc:
                form.add_service_error(exc)
                status = exc.status_code
            else:
                # Rendered, not redirected: the raw key must not travel through the session.
                status = 201
                form = AgentTokenForm()
    context = {
        "listing": listing,
        "form": form,
        "raw_token": raw_token,
        "tokens": selectors.agent_tokens_for(listing=listing),
    }
    return render(request, "web/agent_tokens.html", context, status=status)


@login_required
@require_POST
def agent_token_revoke(request: HttpRequest, slug: str, token_id: int) -> HttpResponse:
    listing = _listing_or_404(request, slug)
    if not _is_owner(request, listing):
        return _forbidden(request, NOT_OWNER)
    try:
        token = selectors.agent_tokens_for(listing=listing).get(pk=token_id)
    except AgentToken.DoesNotExist as exc:
        raise Http404("No such token.") from exc
    try:
        market.agent_token_revoke(token=token, actor=request.user)  # type: ignore[arg-type]
    except DomainError as exc:
        messages.error(request, exc.detail)
    else:
        messages.success(request, f"Token “{token.name}” ({token.prefix}…) is revoked.")
    return redirect("web:agent-tokens", slug=listing.slug)


@login_required
@require_GET
def seller_dashboard(request: HttpRequest) -> HttpResponse:
    if not request.user.is_seller:  # type: ignore[union-attr]
        return _forbidden(request, "The seller dashboard is for seller accounts.")
    dashboard = selectors.seller_dashboard(seller=request.user)  # type: ignore[arg-type]
    disputes_waiting = escrow_selectors.disputes_awaiting_answer(user=request.user)  # type: ignore[arg-type]
    return render(request, "web/seller_dashboard.html", {**dashboard, "disputes_waiting": disputes_waiting})


# --- engagements ------------------------------------------------------------------------------


@login_required
@require_GET
def engagement_list(request: HttpRequest) -> HttpResponse:
    form = EngagementFilterForm(request.GET)
    engagements = selectors.engagement_list(user=request.user, status=form.status_filter())  # type: ignore[arg-type]
    page = Paginator(engagements, PAGE_SIZE).get_page(request.GET.get("page"))
    # Disputes the other side opened against this user: they need an answer before a deadline.
    disputes_waiting = escrow_selectors.disputes_awaiting_answer(user=request.user)  # type: ignore[arg-type]
    return render(
        request, "web/engagement_list.html", {"form": form, "page": page, "disputes_waiting": disputes_waiting}
    )


def _render_engagement(
    request: HttpRequest, pk: int, forms: dict[str, Any] | None = None, status: int = 200
) -> HttpResponse:
    try:
        page = selectors.engagement_page(user=request.user, pk=pk)  # type: ignore[arg-type]
    except Engagement.DoesNotExist as exc:
        raise Http404("No such engagement.") from exc
    latest = page["latest_proposal"]
    # Read once: the next step, the escrow panel and the dispute panel all word it.
    dispute = escrow_selectors.dispute_for_engagement(engagement_id=pk)
    context: dict[str, Any] = {
        **page,
        "engagement_dispute": dispute,
        "accept_form": AcceptForm(initial={"proposal": latest.number if latest else None}),
        "proposal_form": ProposalForm(initial=ProposalForm.initial_for(latest.clauses, latest.terms))
        if latest
        else None,
        "cancel_form": CancelForm(),
        "deliver_form": DeliverForm(),
        **_evaluation_context(pk),
        **escrow_views.escrow_panel_context(
            page["engagement"],
            request.user,  # type: ignore[arg-type]
            release_form=(forms or {}).get("release_form"),
            dispute=dispute,
        ),
        **(forms or {}),
    }
    return render(request, "web/engagement_detail.html", context, status=status)


def _evaluation_context(engagement_id: int) -> dict[str, Any]:
    """The evaluation panel: the latest round as its report, and every round as evidence.

    A fixed number of queries whatever the size of the pact or the panel (see
    trust.selectors.evaluation_latest for the prefetches).
    """
    evaluation = trust_selectors.evaluation_latest(engagement_id=engagement_id)
    return {
        "engagement_id": engagement_id,
        "evaluation": trust_selectors.evaluation_report(evaluation) if evaluation else None,
        # The report leaves out why a round ran; a re-evaluation shows it.
        "round_reason": evaluation.reason if evaluation else "",
        "rounds": trust_selectors.evaluation_rounds(engagement_id=engagement_id) if evaluation else [],
    }


@login_required
@require_GET
def engagement_evaluation(request: HttpRequest, pk: int) -> HttpResponse:
    """The evaluation panel alone: what htmx polls while the judges work."""
    _visible_engagement_or_404(request, pk)
    context = _evaluation_context(pk)
    response = render(request, "web/_evaluation_panel.html", context)
    if request.headers.get("HX-Request") and context["evaluation"] and context["evaluation"]["status"] == "done":
        # The judges just finished: reload the page once, so the status, the next
        # step and the escrow panel catch up with the verdict.
        response["HX-Refresh"] = "true"
    return response


def _visible_engagement_or_404(request: HttpRequest, pk: int) -> None:
    if not selectors.engagement_is_visible(user=request.user, pk=pk):  # type: ignore[arg-type]
        raise Http404("No such engagement.")


def _done(request: HttpRequest, pk: int, message: str) -> HttpResponse:
    messages.success(request, message)
    return redirect("web:engagement-detail", pk=pk)


@login_required
@require_GET
def engagement_detail(request: HttpRequest, pk: int) -> HttpResponse:
    return _render_engagement(request, pk)


@login_required
@require_POST
def engagement_accept(request: HttpRequest, pk: int) -> HttpResponse:
    _visible_engagement_or_404(request, pk)
    form = AcceptForm(request.POST)
    if not form.is_valid():
        return _render_engagement(request, pk, {"accept_form": form}, status=400)
    number = form.cleaned_data["proposal"]
    try:
        market.proposal_accept(engagement_id=pk, actor=request.user, proposal_number=number)  # type: ignore[arg-type]
    except DomainError as exc:
        form.add_service_error(exc)
        return _render_engagement(request, pk, {"accept_form": form}, status=exc.status_code)
    return _done(request, pk, f"You accepted proposal {number}. The pact is locked.")


@login_required
@require_POST
def engagement_propose(request: HttpRequest, pk: int) -> HttpResponse:
    _visible_engagement_or_404(request, pk)
    form = ProposalForm(request.POST)
    status = 400
    if form.is_valid():
        try:
            proposal = market.proposal_create(
                engagement_id=pk,
                actor=request.user,  # type: ignore[arg-type]
                clauses=form.cleaned_data["clauses"],
                terms=form.terms(),
                note=form.cleaned_data["note"],
            )
        except PactValidationError as exc:
            form.add_pact_errors(exc.detail)
        except DomainError as exc:
            form.add_service_error(exc)
            status = exc.status_code
        else:
            return _done(request, pk, f"Proposal {proposal.number} sent; it counts as your acceptance.")
    return _render_engagement(request, pk, {"proposal_form": form}, status=status)


@login_required
@require_POST
def engagement_cancel(request: HttpRequest, pk: int) -> HttpResponse:
    _visible_engagement_or_404(request, pk)
    form = CancelForm(request.POST)
    status = 400
    if form.is_valid():
        try:
            market.engagement_cancel(engagement_id=pk, actor=request.user, reason=form.cleaned_data["reason"])  # type: ignore[arg-type]
        except DomainError as exc:
            form.add_service_error(exc)
            status = exc.status_code
        else:
            return _done(request, pk, "The engagement is cancelled.")
    return _render_engagement(request, pk, {"cancel_form": form}, status=status)


@login_required
@require_POST
def engagement_deliver(request: HttpRequest, pk: int) -> HttpResponse:
    _visible_engagement_or_404(request, pk)
    form = DeliverForm(request.POST)
    status = 400
    if form.is_valid():
        try:
            market.deliverable_submit(engagement_id=pk, actor=request.user, **form.service_kwargs())  # type: ignore[arg-type]
        except DomainError as exc:
            form.add_service_error(exc)
            status = exc.status_code
        else:
            return _done(request, pk, "Delivered. The judges evaluate it against the pact next.")
    return _render_engagement(request, pk, {"deliver_form": form}, status=status)
