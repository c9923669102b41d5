"""Escrow pages: fund, the local simulated card payment, release, and the escrow
panel of the engagement page. Thin: one service or selector call each."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from core.errors import DomainError
from core.models import User
from escrow import selectors as escrow_selectors
from escrow import services as escrow_services
from escrow.models import Escrow
from marketplace import selectors as market_selectors


def escrow_panel_context(engagement_id: int) -> dict[str, Any]:
    escrow = escrow_selectors.escrow_for_engagement(engagement_id=engagement_id)
    return {"escrow": escrow_selectors.escrow_report(escrow) if escrow else None}


def _user(request: HttpRequest) -> User:
    assert isinstance(request.user, User)  # behind login_required
    return request.user


def _back(request: HttpRequest, pk: int, message: str, *, error: bool = False) -> HttpResponse:
    (messages.error if error else messages.success)(request, message)
    return redirect("web:engagement-detail", pk=pk)


@login_required
@require_POST
def engagement_fund(request: HttpRequest, pk: int) -> HttpResponse:
    if not market_selectors.engagement_is_visible(user=_user(request), pk=pk):
        raise Http404("No such engagement.")
    try:
        escrow, checkout_url = escrow_services.escrow_fund(engagement_id=pk, actor=_user(request), via_api=False)
    except DomainError as exc:
        return _back(request, pk, exc.detail, error=True)
    if checkout_url:
        return redirect(checkout_url)
    return _back(request, pk, f"Escrow funded: {escrow.amount_minor} {escrow.currency.upper()} held.")


@login_required
@require_http_methods(["GET", "POST"])
def simulated_checkout(request: HttpRequest, escrow_id: int) -> HttpResponse:
    """The local gateway's stand-in for a card payment page. No real money moves."""
    if settings.PAYMENT_GATEWAY != "local":
        raise Http404("The simulated card page exists only with the local payment gateway.")
    try:
        escrow = escrow_selectors.escrow_get(user=_user(request), pk=escrow_id)
    except Escrow.DoesNotExist as exc:
        raise Http404("No such escrow.") from exc
    engagement = escrow.engagement
    if engagement.buyer_id != _user(request).pk:
        raise Http404("No such escrow.")
    if escrow.status != Escrow.Status.AWAITING_FUNDS:
        return _back(request, engagement.pk, "This escrow is already paid.")
    if request.method == "POST":
        try:
            escrow_services.escrow_confirm_funding(
                escrow_id=escrow.pk, charge_reference=f"ch_sim_{escrow.pk}", actor=_user(request)
            )
        except DomainError as exc:
            return _back(request, engagement.pk, exc.detail, error=True)
        return _back(request, engagement.pk, "Payment simulated: the money is held in escrow and the job has started.")
    return render(
        request,
        "web/simulated_checkout.html",
        {"escrow": escrow_selectors.escrow_report(escrow), "engagement": engagement},
    )


@login_required
@require_POST
def engagement_release(request: HttpRequest, pk: int) -> HttpResponse:
    if not market_selectors.engagement_is_visible(user=_user(request), pk=pk):
        raise Http404("No such engagement.")
    try:
        settlement = escrow_services.escrow_release(engagement_id=pk, actor=_user(request))
    except DomainError as exc:
        return _back(request, pk, exc.detail, error=True)
    return _back(request, pk, f"Released: {settlement.seller_net_minor} to the seller after the platform fee.")


@login_required
@require_GET
def payouts(request: HttpRequest) -> HttpResponse:
    user = _user(request)
    if user.role != User.Role.SELLER:
        raise Http404("Payouts are for sellers.")
    return render(request, "web/payouts.html", escrow_selectors.seller_payouts(seller=user))


@login_required
@require_POST
def payout_onboard(request: HttpRequest) -> HttpResponse:
    try:
        account, url = escrow_services.payout_onboard(seller=_user(request))
    except DomainError as exc:
        messages.error(request, exc.detail)
        return redirect("web:home")
    if url:
        return redirect(url)
    messages.success(request, f"Payout account {account.provider_account} connected.")
    return redirect("web:payouts")


@login_required
@require_GET
def spending(request: HttpRequest) -> HttpResponse:
    user = _user(request)
    if user.role != User.Role.BUYER:
        raise Http404("Spending is for buyers.")
    escrows = list(escrow_selectors.buyer_spending(buyer=user))
    totals: dict[str, dict[str, int]] = {}
    for escrow in escrows:
        row = totals.setdefault(escrow.currency, {"paid": 0, "held": 0, "released": 0, "refunded": 0})
        settlement = getattr(escrow, "settlement", None)
        if escrow.status in (Escrow.Status.FUNDED, Escrow.Status.HELD, Escrow.Status.SETTLED):
            row["paid"] += escrow.amount_minor
        if escrow.status in (Escrow.Status.FUNDED, Escrow.Status.HELD):
            row["held"] += escrow.amount_minor
        if settlement is not None:
            row["released"] += settlement.seller_gross_minor
            row["refunded"] += settlement.buyer_refund_minor
    return render(request, "web/spending.html", {"escrows": escrows, "totals": sorted(totals.items())})
