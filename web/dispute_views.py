"""The parties' dispute pages: open, answer and withdraw from the engagement page, and
download an evidence file. The dispute panel itself is `{% dispute_panel %}`
(web/templatetags/disputes.py), rendered inside the engagement page.

Thin: each view parses a form and calls one service of `escrow.disputes`; a refusal
is shown on the engagement page with its status code (400, 403, 409, 413, 415),
never a 500. Anyone who is not a party (or staff) gets a 404 before any service runs.
"""

from __future__ import annotations

import datetime
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from core.errors import DomainError
from core.models import User
from escrow import disputes
from escrow import selectors as escrow_selectors
from escrow.api.views import evidence_file_response
from escrow.models import Dispute, DisputeEvidenceFile, Escrow
from marketplace import selectors as market_selectors
from marketplace.models import Engagement
from web.dispute_forms import DisputeAnswerForm, DisputeOpenForm, DisputeWithdrawForm


def _user(request: HttpRequest) -> User:
    assert isinstance(request.user, User)  # behind login_required
    return request.user


def _party_or_404(request: HttpRequest, engagement_id: int) -> User:
    user = _user(request)
    if not market_selectors.engagement_is_visible(user=user, pk=engagement_id):
        raise Http404("No such engagement.")
    return user


def _dispute_engagement_or_404(request: HttpRequest, dispute_id: int) -> int:
    user = _user(request)
    engagement_id = escrow_selectors.dispute_engagement_id(user=user, dispute_id=dispute_id)
    if engagement_id is None:
        raise Http404("No such dispute.")
    return engagement_id


def _engagement_page(request: HttpRequest, pk: int, forms: dict[str, Any], status: int) -> HttpResponse:
    from web.views import _render_engagement

    return _render_engagement(request, pk, forms, status=status)


def _done(request: HttpRequest, pk: int, message: str) -> HttpResponse:
    messages.success(request, message)
    return redirect(reverse("web:engagement-detail", args=[pk]) + "#dispute")


# --- the panel's context --------------------------------------------------------------------------


def dispute_panel_context(context: Any) -> dict[str, Any]:
    """What `web/_dispute_panel.html` shows, from the engagement page's own context plus
    one selector call (the engagement's latest dispute with its files and history)."""
    engagement: Engagement = context["engagement"]
    request = context["request"]
    user = request.user
    role = context.get("role")
    escrow = context.get("escrow") or {}
    evaluation = context.get("evaluation") or {}
    # The engagement page reads the dispute once for its next step, its escrow panel and this panel.
    if "engagement_dispute" in context:
        dispute = context["engagement_dispute"]
    else:
        dispute = escrow_selectors.dispute_for_engagement(engagement_id=engagement.pk)
    report = escrow_selectors.dispute_report(dispute) if dispute is not None else None
    active = dispute is not None and dispute.is_active
    outcome = evaluation.get("outcome")
    scheduled = [
        t
        for t in escrow.get("timers", [])
        if t["status"] == "pending" and t["action"] in ("release", "settle_failed", "manual_release")
    ]
    open_form = context.get("dispute_open_form")
    answer_form = context.get("dispute_answer_form")
    withdraw_form = context.get("dispute_withdraw_form")
    can_open = bool(
        role in ("buyer", "seller")
        and engagement.status == Engagement.Status.EVALUATED
        and escrow.get("status") == Escrow.Status.FUNDED
        and not active
        and (outcome == "failed" if role == "seller" else outcome in ("passed", "failed"))
    )
    return {
        "engagement": engagement,
        "dispute": report,
        "dispute_obj": dispute,
        "role": role,
        "active": active,
        "can_open": can_open or (open_form is not None and open_form.is_bound),
        "window_closes": datetime.datetime.fromisoformat(scheduled[0]["due_at"]) if scheduled else None,
        "can_answer": bool(
            dispute is not None
            and dispute.status == Dispute.Status.OPEN
            and role in ("buyer", "seller")
            and role != dispute.opened_by_party
        ),
        "can_withdraw": bool(active and dispute is not None and user.pk == dispute.opened_by_id),
        "open_form": open_form or DisputeOpenForm(),
        "answer_form": answer_form or DisputeAnswerForm(),
        "withdraw_form": withdraw_form or DisputeWithdrawForm(),
        **_error_summary(
            (open_form, "Your dispute was not opened."),
            (answer_form, "Your answer was not sent."),
            (withdraw_form, "The dispute was not withdrawn."),
        ),
        "is_staff": getattr(user, "is_staff", False),
    }


def _error_summary(*candidates: tuple[Any, str]) -> dict[str, Any]:
    """The rejected form's errors for the summary at the top of the panel: each with the id of
    its field (to link to it) and its label; errors of the whole form have no field."""
    for form, title in candidates:
        if form is None or not form.is_bound or not form.errors:
            continue
        errors = []
        for name, messages_ in form.errors.items():
            field = form[name] if name != "__all__" else None
            for message in messages_:
                errors.append(
                    {
                        "id": field.id_for_label if field is not None else "",
                        "label": field.label if field is not None else "",
                        "message": message,
                    }
                )
        return {"error_title": title, "errors": errors}
    return {"error_title": "", "errors": []}


# --- writes ------------------------------------------------------------------------------------------


@login_required
@require_POST
def dispute_open(request: HttpRequest, pk: int) -> HttpResponse:
    user = _party_or_404(request, pk)
    form = DisputeOpenForm(request.POST, request.FILES)
    status = 400
    if form.is_valid():
        try:
            dispute = disputes.dispute_open(
                engagement_id=pk,
                actor=user,
                reason=form.cleaned_data["reason"],
                evidence=form.cleaned_data["evidence"],
                files=form.cleaned_data["attachments"],
            )
        except DomainError as exc:
            form.add_service_error(exc)
            status = exc.status_code
        else:
            return _done(
                request,
                pk,
                f"Dispute #{dispute.pk} is open: the money is held, and the other side may answer "
                f"until {dispute.answer_due_at:%d %b %H:%M} UTC. Then Pactum staff rule on it.",
            )
    return _engagement_page(request, pk, {"dispute_open_form": form}, status)


@login_required
@require_POST
def dispute_answer(request: HttpRequest, pk: int) -> HttpResponse:
    engagement_id = _dispute_engagement_or_404(request, pk)
    form = DisputeAnswerForm(request.POST, request.FILES)
    status = 400
    if form.is_valid():
        try:
            disputes.dispute_answer(
                dispute_id=pk,
                actor=_user(request),
                answer=form.cleaned_data["answer"],
                files=form.cleaned_data["attachments"],
            )
        except DomainError as exc:
            form.add_service_error(exc)
            status = exc.status_code
        else:
            return _done(
                request, engagement_id, "Your answer is on file: the dispute is with Pactum staff for a ruling."
            )
    return _engagement_page(request, engagement_id, {"dispute_answer_form": form}, status)


@login_required
@require_POST
def dispute_withdraw(request: HttpRequest, pk: int) -> HttpResponse:
    engagement_id = _dispute_engagement_or_404(request, pk)
    form = DisputeWithdrawForm(request.POST)
    status = 400
    if form.is_valid():
        try:
            disputes.dispute_withdraw(dispute_id=pk, actor=_user(request), note=form.cleaned_data["note"])
        except DomainError as exc:
            form.add_service_error(exc)
            status = exc.status_code
        else:
            return _done(request, engagement_id, "Dispute withdrawn: the evaluation's decision applies again.")
    return _engagement_page(request, engagement_id, {"dispute_withdraw_form": form}, status)


@login_required
@require_GET
def dispute_file(request: HttpRequest, file_id: int) -> FileResponse:
    try:
        evidence_file = escrow_selectors.dispute_evidence_file_get(user=_user(request), pk=file_id)
    except DisputeEvidenceFile.DoesNotExist as exc:
        raise Http404("No such file.") from exc
    return evidence_file_response(evidence_file)
