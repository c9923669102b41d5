"""The staff console: one queue of what waits for an admin (disputes, escrows held for an
inconclusive evaluation, trust escalations), oldest first, with filters and counts; and
the case page with the whole evidence of one engagement and the ruling form.

Staff only: anyone else logged in gets a 403 page, anonymous visitors the login page.
Thin: pages read selectors (a fixed number of queries whatever the case's size), and
each POST calls one service; a refusal is shown on the case page with its status code.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterable
from functools import wraps
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ObjectDoesNotExist
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from core.errors import DomainError
from core.models import User
from core.selectors import evidence_for_subjects
from escrow import disputes
from escrow import selectors as escrow_selectors
from escrow.models import Dispute, Escrow
from marketplace import selectors as market_selectors
from marketplace.models import Engagement
from trust import selectors as trust_selectors
from trust import services as trust_services
from trust.models import TrustPolicy
from web.dispute_forms import RulingForm

PAGE_SIZE = 25
KINDS = {"all": "Everything", "disputes": "Disputes", "held": "Inconclusive / held", "escalations": "Escalations"}
DISPUTE_STATUSES = {"active": "Active", **dict(Dispute.Status.choices), "all": "All"}


def staff_required(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    @login_required
    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not request.user.is_staff:
            return render(request, "web/forbidden.html", {"message": "The console is for Pactum staff."}, status=403)
        return view(request, *args, **kwargs)

    return wrapper


def _staff(request: HttpRequest) -> User:
    assert isinstance(request.user, User)
    return request.user


# --- the queue -----------------------------------------------------------------------------------------


def _dispute_item(d: Dispute) -> dict[str, Any]:
    engagement = d.engagement
    return {
        "kind": "dispute",
        "id": d.pk,
        "since": d.created_at,
        "engagement": engagement,
        "status": d.status,
        "status_label": d.get_status_display(),
        "title": f"Dispute #{d.pk} · opened by the {d.opened_by_party}",
        "summary": d.reason,
        "amount_minor": d.escrow.amount_minor,
        "currency": d.escrow.currency,
        "due": d.answer_due_at if d.status == Dispute.Status.OPEN else None,
    }


def _held_item(e: Escrow) -> dict[str, Any]:
    return {
        "kind": "held",
        "id": e.pk,
        "since": e.held_since or e.updated_at,  # type: ignore[attr-defined]
        "engagement": e.engagement,
        "status": "held",
        "status_label": "Held",
        "title": f"Escrow #{e.pk} · {e.evaluation_outcome or 'held'}",
        "summary": e.hold_reason,
        "amount_minor": e.amount_minor,
        "currency": e.currency,
        "due": None,
    }


def _escalation_item(x: Any) -> dict[str, Any]:
    return {
        "kind": "escalation",
        "id": x.pk,
        "since": x.created_at,
        "engagement": None,
        "listing": x.listing,
        "status": x.status,
        "status_label": x.get_status_display(),
        "title": f"Escalation #{x.pk} · {x.listing.name}",
        "summary": _escalation_summary(x),
        "amount_minor": None,
        "currency": "",
        "due": None,
        "policy": x.policy,
    }


def _escalation_summary(x: Any) -> str:
    """An escalation in words (the row names its policy): what was measured against the policy's
    threshold, and what the policy does."""
    metric = TrustPolicy.Metric(x.metric).label if x.metric in TrustPolicy.Metric.values else x.metric
    comparator = (
        TrustPolicy.Comparator(x.comparator).label if x.comparator in TrustPolicy.Comparator.values else x.comparator
    )
    return f"{metric} is {x.metric_value:.3g} (triggers at {comparator} {x.threshold:g}) → {x.action_label}"


def _sources(kind: str, status: str) -> list[tuple[Any, Callable[[Any], dict[str, Any]]]]:
    sources: list[tuple[Any, Callable[[Any], dict[str, Any]]]] = []
    if kind in ("all", "disputes"):
        sources.append((escrow_selectors.console_disputes(status=status if kind == "disputes" else ""), _dispute_item))
    if kind in ("all", "held"):
        sources.append((escrow_selectors.held_escrows(), _held_item))
    if kind in ("all", "escalations"):
        sources.append((trust_selectors.escalations_open(), _escalation_item))
    return sources


def _merged_page(sources: list[tuple[Any, Callable[[Any], dict[str, Any]]]], number: int) -> dict[str, Any]:
    """Oldest first across sources: each source is read up to the end of the requested page
    (every source is ordered by its own age), merged, and cut (one count and one read per source)."""
    total = sum(qs.count() for qs, _ in sources)
    pages = max(1, -(-total // PAGE_SIZE))
    number = min(max(1, number), pages)
    end = number * PAGE_SIZE
    streams: list[Iterable[dict[str, Any]]] = [[item(row) for row in qs[:end]] for qs, item in sources]
    merged = list(heapq.merge(*streams, key=lambda i: i["since"]))
    return {
        "items": merged[end - PAGE_SIZE : end],
        "number": number,
        "pages": pages,
        "total": total,
        "has_previous": number > 1,
        "has_next": number < pages,
    }


@staff_required
@require_GET
def queue(request: HttpRequest) -> HttpResponse:
    kind = request.GET.get("kind", "all")
    kind = kind if kind in KINDS else "all"
    status = request.GET.get("status", "active")
    status = status if status in DISPUTE_STATUSES else "active"
    try:
        number = int(request.GET.get("page", "1"))
    except ValueError:
        number = 1
    counts = escrow_selectors.console_counts()
    counts["escalations"] = trust_selectors.escalations_open().count()
    counts["all"] = counts["disputes"] + counts["held"] + counts["escalations"]
    return render(
        request,
        "console/queue.html",
        {
            "page": _merged_page(_sources(kind, status), number),
            "kind": kind,
            "status": status,
            "kinds": KINDS,
            "statuses": DISPUTE_STATUSES,
            "counts": counts,
        },
    )


# --- case pages ------------------------------------------------------------------------------------------


def _case_context(request: HttpRequest, engagement_id: int) -> dict[str, Any]:
    """The whole evidence of one engagement, in a fixed number of queries."""
    page = market_selectors.engagement_page(user=_staff(request), pk=engagement_id)
    engagement: Engagement = page["engagement"]
    escrow = escrow_selectors.escrow_for_case(engagement_id=engagement_id)
    evaluations = [
        {**trust_selectors.evaluation_report(e), "reason": e.reason}
        for e in escrow_selectors.case_evaluations(engagement_id=engagement_id)
    ]
    return {
        **page,
        "escrow_obj": escrow,
        "escrow": escrow_selectors.escrow_report(escrow) if escrow is not None else None,
        "evaluations": evaluations,
        "previews": escrow_selectors.ruling_previews(escrow) if escrow is not None else [],
        "evidence_records": list(evidence_for_subjects(subjects=[f"engagement:{engagement.pk}"])),
    }


def _dispute_or_404(request: HttpRequest, pk: int) -> Dispute:
    try:
        return escrow_selectors.dispute_get(user=_staff(request), pk=pk)
    except Dispute.DoesNotExist as exc:
        raise Http404("No such dispute.") from exc


def _render_dispute_case(
    request: HttpRequest, pk: int, form: RulingForm | None = None, status: int = 200
) -> HttpResponse:
    dispute = _dispute_or_404(request, pk)
    context = _case_context(request, dispute.engagement_id)
    context.update(
        {
            "case_kind": "dispute",
            "dispute_obj": dispute,
            "dispute": escrow_selectors.dispute_report(dispute),
            "timeline": escrow_selectors.case_timeline(
                engagement=context["engagement"], escrow=context["escrow_obj"], dispute=dispute
            ),
            "ruling_form": form or RulingForm(),
            "can_rule": dispute.is_active,
            "rule_url": reverse("console:dispute-rule", args=[dispute.pk]),
            "reevaluate_url": reverse("console:dispute-reevaluate", args=[dispute.pk]),
        }
    )
    return render(request, "console/case.html", context, status=status)


@staff_required
@require_GET
def dispute_case(request: HttpRequest, pk: int) -> HttpResponse:
    return _render_dispute_case(request, pk)


def _ruling_kwargs(form: RulingForm) -> dict[str, Any]:
    return {
        "outcome": form.cleaned_data["outcome"],
        "seller_share_bps": form.cleaned_data["seller_share_bps"],
        "rationale": form.cleaned_data["rationale"],
    }


@staff_required
@require_POST
def dispute_rule(request: HttpRequest, pk: int) -> HttpResponse:
    _dispute_or_404(request, pk)
    form = RulingForm(request.POST)
    status = 400
    if form.is_valid():
        try:
            dispute = disputes.dispute_rule(dispute_id=pk, actor=_staff(request), **_ruling_kwargs(form))
        except DomainError as exc:
            form.add_service_error(exc)
            status = exc.status_code
        else:
            messages.success(
                request,
                f"Dispute #{pk} ruled: {dispute.ruling_outcome}, {dispute.seller_share_bps} bps to the seller. "
                "The settlement is booked and the parties are notified.",
            )
            return redirect("console:dispute", pk=pk)
    return _render_dispute_case(request, pk, form, status)


@staff_required
@require_POST
def dispute_reevaluate(request: HttpRequest, pk: int) -> HttpResponse:
    _dispute_or_404(request, pk)
    try:
        evaluation = disputes.dispute_request_reevaluation(dispute_id=pk, actor=_staff(request))
    except DomainError as exc:
        messages.error(request, exc.detail)
    else:
        messages.success(request, f"Re-evaluation round {evaluation.round} started with a larger panel.")
    return redirect("console:dispute", pk=pk)


def _held_or_404(escrow_id: int) -> int:
    """The engagement of the escrow (404 when there is no such escrow)."""
    engagement_id = escrow_selectors.escrow_engagement_id(escrow_id=escrow_id)
    if engagement_id is None:
        raise Http404("No such escrow.")
    return engagement_id


def _render_held_case(
    request: HttpRequest, escrow_id: int, form: RulingForm | None = None, status: int = 200
) -> HttpResponse:
    context = _case_context(request, _held_or_404(escrow_id))
    report = context["escrow"]
    context.update(
        {
            "case_kind": "held",
            "dispute": None,
            "timeline": escrow_selectors.case_timeline(
                engagement=context["engagement"], escrow=context["escrow_obj"], dispute=None
            ),
            "ruling_form": form or RulingForm(),
            "can_rule": report is not None and report["status"] == Escrow.Status.HELD,
            "rule_url": reverse("console:held-rule", args=[escrow_id]),
            "reevaluate_url": reverse("console:held-reevaluate", args=[escrow_id]),
        }
    )
    return render(request, "console/case.html", context, status=status)


@staff_required
@require_GET
def held_case(request: HttpRequest, escrow_id: int) -> HttpResponse:
    return _render_held_case(request, escrow_id)


@staff_required
@require_POST
def held_rule(request: HttpRequest, escrow_id: int) -> HttpResponse:
    _held_or_404(escrow_id)
    form = RulingForm(request.POST)
    status = 400
    if form.is_valid():
        try:
            settlement = disputes.escrow_rule_held(escrow_id=escrow_id, actor=_staff(request), **_ruling_kwargs(form))
        except DomainError as exc:
            form.add_service_error(exc)
            status = exc.status_code
        else:
            messages.success(request, f"Escrow #{escrow_id} settled: {settlement.outcome}.")
            return redirect("console:held", escrow_id=escrow_id)
    return _render_held_case(request, escrow_id, form, status)


@staff_required
@require_POST
def held_reevaluate(request: HttpRequest, escrow_id: int) -> HttpResponse:
    _held_or_404(escrow_id)
    try:
        evaluation = disputes.escrow_request_reevaluation(escrow_id=escrow_id, actor=_staff(request))
    except DomainError as exc:
        messages.error(request, exc.detail)
    else:
        messages.success(request, f"Re-evaluation round {evaluation.round} started with a larger panel.")
    return redirect("console:held", escrow_id=escrow_id)


@staff_required
@require_POST
def escalation_resolve(request: HttpRequest, event_id: int) -> HttpResponse:
    try:
        trust_services.escalation_resolve(event_id=event_id, actor=_staff(request), note=request.POST.get("note", ""))
    except DomainError as exc:
        messages.error(request, exc.detail)
    except ObjectDoesNotExist as exc:
        raise Http404("No such escalation.") from exc
    else:
        messages.success(request, f"Escalation #{event_id} resolved.")
    return redirect(reverse("console:queue") + "?kind=escalations")
