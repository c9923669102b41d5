"""Escrow pages: fund, the local gateway's simulated card payment, release now,
the seller's payouts, the buyer's spending, and the escrow panel of the
engagement page (`escrow_panel_context` + `web/_escrow_panel.html`).

Thin: each view calls one service or selector. A service's DomainError (a
refused move, the payment provider being down) becomes a message on the page the
view redirects to, never a 500. Engagement-scoped writes answer 404 to anyone who
is not a party, before the service is asked.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from core.errors import DomainError
from core.models import User
from core.money import format_minor
from escrow import selectors as escrow_selectors
from escrow import services as escrow_services
from escrow.models import Dispute, Escrow
from marketplace import selectors as market_selectors
from marketplace.models import Engagement
from web.forms import ReleaseForm

# Escrow states in which the buyer's money is in (and so was paid).
_MONEY_IN = (Escrow.Status.FUNDED, Escrow.Status.HELD)


# --- the escrow panel of the engagement page ---------------------------------------------------


_UNREAD: Any = object()


def escrow_panel_context(
    engagement: Engagement | int,
    user: User | None = None,
    *,
    release_form: ReleaseForm | None = None,
    dispute: Dispute | None = _UNREAD,
) -> dict[str, Any]:
    """Context for `web/_escrow_panel.html`, to merge into the engagement page's context.

    Returns `{"escrow_panel": {"escrow", "role", "engagement", "can_fund", "can_release",
    "evaluation_failed", "release_form"},
    "escrow": <the same report>}`: `escrow` is `escrow_report(...)` or None, `role` is
    "buyer", "seller", "staff" or None. The top-level `escrow` is kept for the page's own
    next-step buttons. A fixed number of queries: `escrow_for_engagement` prefetches the
    ledger legs, the status history and the timers.

    Transitional: called with an engagement id alone (the engagement page's call until it
    passes `(engagement, request.user)`), the panel knows no role and shows no actions.
    """
    if isinstance(engagement, Engagement):
        engagement_id, panel_engagement = engagement.pk, engagement
        role = _panel_role(engagement, user)
    else:
        engagement_id, panel_engagement, role = engagement, None, None
    escrow = escrow_selectors.escrow_for_engagement(engagement_id=engagement_id)
    report = escrow_selectors.escrow_report(escrow) if escrow is not None else None
    status = panel_engagement.status if panel_engagement is not None else None
    # The latest evaluation's decision, as the escrow applied it: releasing after a failed
    # job takes an explicit confirmation.
    failed = _evaluation_failed(escrow)
    if dispute is _UNREAD:
        # Only a held escrow words its hold by the dispute (the engagement page passes the one it read).
        held = escrow is not None and escrow.status == Escrow.Status.HELD
        dispute = escrow_selectors.dispute_for_engagement(engagement_id=engagement_id) if held else None
    panel = {
        "escrow": report,
        "role": role,
        "engagement": panel_engagement,
        # Offered, not decided: the services refuse whatever the state no longer allows.
        "can_fund": role == "buyer"
        and status == Engagement.Status.AGREED
        and (report is None or report["status"] == Escrow.Status.AWAITING_FUNDS),
        "can_release": role == "buyer"
        and status == Engagement.Status.EVALUATED
        and report is not None
        and report["status"] in _MONEY_IN,
        "evaluation_failed": failed,
        "release_form": release_form or ReleaseForm(failed=failed),
        "dispute": dispute,
    }
    return {"escrow_panel": panel, "escrow": report}


def _evaluation_failed(escrow: Escrow | None) -> bool:
    return escrow is not None and escrow.evaluation_outcome == "failed"


def _panel_role(engagement: Engagement, user: User | None) -> str | None:
    if user is None or not user.is_authenticated:
        return None
    role = market_selectors.engagement_role(engagement=engagement, user=user)
    if role is None and user.is_staff:
        return "staff"
    return role


# --- helpers -------------------------------------------------------------------------------------


def _user(request: HttpRequest) -> User:
    assert isinstance(request.user, User)  # behind login_required
    return request.user


def _party_or_404(request: HttpRequest, pk: int) -> User:
    user = _user(request)
    if not market_selectors.engagement_is_visible(user=user, pk=pk):
        raise Http404("No such engagement.")
    return user


def _to_engagement(request: HttpRequest, pk: int, message: str, *, level: int = messages.SUCCESS) -> HttpResponse:
    messages.add_message(request, level, message)
    return redirect("web:engagement-detail", pk=pk)


def _forbidden(request: HttpRequest, message: str) -> HttpResponse:
    return render(request, "web/forbidden.html", {"message": message}, status=403)


# --- funding --------------------------------------------------------------------------------------


@login_required
@require_POST
def engagement_fund(request: HttpRequest, pk: int) -> HttpResponse:
    """Start funding: to the payment page (Stripe's hosted checkout, or the local simulator)."""
    user = _party_or_404(request, pk)
    try:
        escrow, checkout_url = escrow_services.escrow_fund(engagement_id=pk, actor=user, via_api=False)
    except DomainError as exc:
        return _to_engagement(request, pk, exc.detail, level=messages.ERROR)
    if checkout_url:
        return redirect(checkout_url)
    return _to_engagement(
        request, pk, f"Escrow funded: {format_minor(escrow.amount_minor, escrow.currency)} is held for this job."
    )


@login_required
@require_http_methods(["GET", "POST"])
def simulated_checkout(request: HttpRequest, escrow_id: int) -> HttpResponse:
    """The local gateway's stand-in for a card payment page: no real money moves.

    Exists only while the local gateway is configured, for escrows opened with it,
    and only for the escrow's buyer (404 for anyone else). Paying twice is harmless:
    `escrow_confirm_funding` is idempotent, and a paid escrow sends the buyer back.
    """
    if settings.PAYMENT_GATEWAY != "local":
        raise Http404("The simulated card page exists only with the local payment gateway.")
    user = _user(request)
    try:
        escrow = escrow_selectors.escrow_get(user=user, pk=escrow_id)
    except Escrow.DoesNotExist as exc:
        raise Http404("No such escrow.") from exc
    engagement = escrow.engagement
    if engagement.buyer_id != user.pk or escrow.gateway != "local":
        raise Http404("No such escrow.")
    if escrow.status != Escrow.Status.AWAITING_FUNDS:
        if escrow.status == Escrow.Status.CANCELLED:
            note = "This escrow was cancelled: there is nothing to pay."
        else:
            note = "This escrow is already paid: nothing more was charged."
        return _to_engagement(request, engagement.pk, note, level=messages.INFO)
    if request.method == "POST":
        try:
            escrow_services.escrow_confirm_funding(
                escrow_id=escrow.pk, charge_reference=f"ch_sim_escrow_{escrow.pk}", actor=user
            )
        except DomainError as exc:
            return _to_engagement(request, engagement.pk, exc.detail, level=messages.ERROR)
        return _to_engagement(
            request,
            engagement.pk,
            f"Payment of {format_minor(escrow.amount_minor, escrow.currency)} simulated: "
            "the money is held in escrow and the job has started.",
        )
    return render(request, "web/simulated_checkout.html", {"escrow": escrow, "engagement": engagement})


# --- release now ----------------------------------------------------------------------------------


@login_required
@require_POST
def engagement_release(request: HttpRequest, pk: int) -> HttpResponse:
    """Release now. After a failed evaluation the buyer must confirm (a checkbox) that they know
    it failed; without it the page is shown again with the error and no money moves."""
    user = _party_or_404(request, pk)
    escrow = escrow_selectors.escrow_for_engagement(engagement_id=pk)
    is_buyer = escrow is not None and escrow.engagement.buyer_id == user.pk
    form = ReleaseForm(request.POST, failed=is_buyer and _evaluation_failed(escrow))
    if not form.is_valid():
        from web.views import _render_engagement

        return _render_engagement(request, pk, {"release_form": form}, status=400)
    try:
        settlement = escrow_services.escrow_release(engagement_id=pk, actor=user)
    except DomainError as exc:
        return _to_engagement(request, pk, exc.detail, level=messages.ERROR)
    currency = settlement.escrow.currency
    return _to_engagement(
        request,
        pk,
        f"Released: {format_minor(settlement.seller_net_minor, currency)} goes to the seller "
        f"after the {format_minor(settlement.platform_fee_minor, currency)} platform fee.",
    )


# --- payouts (sellers) ----------------------------------------------------------------------------


@login_required
@require_GET
def payouts(request: HttpRequest) -> HttpResponse:
    user = _user(request)
    if not user.is_seller:
        return _forbidden(request, "Payouts are for seller accounts.")
    payout = escrow_selectors.seller_payouts(seller=user)
    context = {
        **payout,
        "totals": _payout_totals(payout["settlements"]),
        # The local gateway pays out to a simulated account whatever the seller connected:
        # there is nothing to connect, and payouts are always enabled.
        "simulated": settings.PAYMENT_GATEWAY == "local",
    }
    return render(request, "web/payouts.html", context)


def _payout_totals(settlements: Iterable[dict[str, Any]]) -> list[tuple[str, dict[str, int]]]:
    """Net to the seller per currency: paid out, on its way, and failed (for an admin)."""
    totals: dict[str, dict[str, int]] = {}
    for row in settlements:
        total = totals.setdefault(row["currency"], {"net": 0, "paid": 0, "pending": 0, "failed": 0, "fee": 0})
        total["net"] += row["seller_net_minor"]
        total["fee"] += row["platform_fee_minor"]
        if row["payout_status"] in ("paid", "pending", "failed"):
            total[row["payout_status"]] += row["seller_net_minor"]
    return sorted(totals.items())


@login_required
@require_POST
def payout_onboard(request: HttpRequest) -> HttpResponse:
    """Connect (or finish connecting) the seller's payout account; Stripe answers with a link."""
    user = _user(request)
    try:
        account, url = escrow_services.payout_onboard(seller=user)
    except DomainError as exc:
        messages.error(request, exc.detail)
        return redirect("web:payouts" if user.is_seller else "web:home")
    if url:
        return redirect(url)
    if account.payouts_enabled:
        messages.success(request, f"Payout account {account.provider_account} is connected.")
    else:
        messages.info(request, "The payment provider has not enabled payouts on this account yet.")
    return redirect("web:payouts")


# --- spending (buyers) ----------------------------------------------------------------------------


@login_required
@require_GET
def spending(request: HttpRequest) -> HttpResponse:
    user = _user(request)
    if not user.is_buyer:
        return _forbidden(request, "Spending is for buyer accounts.")
    escrows = list(escrow_selectors.buyer_spending(buyer=user))
    return render(request, "web/spending.html", {"escrows": escrows, "totals": _spending_totals(escrows)})


def _spending_totals(escrows: Iterable[Escrow]) -> list[tuple[str, dict[str, int]]]:
    """Per currency: paid in, held now, released to sellers (before their fee), refunded."""
    totals: dict[str, dict[str, int]] = {}
    for escrow in escrows:
        if escrow.status not in (*_MONEY_IN, Escrow.Status.SETTLED):
            continue  # never paid: awaiting funds, or cancelled before payment
        total = totals.setdefault(escrow.currency, {"paid": 0, "held": 0, "released": 0, "refunded": 0})
        total["paid"] += escrow.amount_minor
        if escrow.status in _MONEY_IN:
            total["held"] += escrow.amount_minor
        settlement = getattr(escrow, "settlement", None)
        if settlement is not None:
            total["released"] += settlement.seller_gross_minor
            total["refunded"] += settlement.buyer_refund_minor
    return sorted(totals.items())
