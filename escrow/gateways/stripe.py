"""Stripe Connect, separate charges and transfers: the only module that imports `stripe`.

- Funding: a Checkout Session (mode payment) whose PaymentIntent carries the
  engagement's `transfer_group` and the escrow id in its metadata; the escrow
  is funded by the webhook, never by the redirect.
- Release: a Transfer to the seller's Express account with `source_transaction`
  (the funding charge), so it can never outrun the buyer's money.
- Refund: a Refund of the funding charge.
- Onboarding: an Express account (created once) and an Account Link.

Every money-moving call (and the account creation) sends the caller's
deterministic idempotency key, so a retry (ours, or the library's own network
retries, which reuse the key) returns the first object instead of moving money
twice. Our idempotency key also travels in the object's metadata, so a webhook
can match the object to its outbox row even when our call's response was lost.
Errors become `GatewayError`: network failures, 409, 429 and 5xx are retryable;
card and invalid-request errors are final. The API key is never logged.
"""

from __future__ import annotations

import logging
from typing import Any

import stripe
from django.conf import settings

from escrow.gateways.base import (
    FundingRequest,
    FundingStart,
    Gateway,
    GatewayError,
    Onboarding,
    ProviderResult,
    RefundRequest,
    TransferRequest,
)

logger = logging.getLogger(__name__)

# Metadata keys Pactum writes on Stripe objects (namespaced: the Stripe account may serve other products).
META_ESCROW = "pactum_escrow_id"
META_ENGAGEMENT = "pactum_engagement_id"
META_KEY = "pactum_idempotency_key"
META_SELLER = "pactum_seller_id"


def _gateway_error(operation: str, exc: stripe.StripeError) -> GatewayError:
    """Stripe's own message (never the request, so never the key) and whether a retry can help."""
    status = exc.http_status
    if isinstance(exc, stripe.APIConnectionError | stripe.RateLimitError):
        retryable = True
    elif isinstance(exc, stripe.CardError | stripe.InvalidRequestError | stripe.IdempotencyError):
        retryable = False
    elif isinstance(exc, stripe.AuthenticationError | stripe.PermissionError):
        # A revoked or mistyped key is an operator's mistake: keep the money movement
        # pending (the outbox backs off) so fixing the key lets it through.
        retryable = True
    else:
        retryable = status is None or status >= 500 or status in (409, 429)
    message = exc.user_message or type(exc).__name__
    code = f" ({exc.code})" if exc.code else ""
    reason = f"stripe {operation} failed: {message}{code}"[:500]
    logger.warning("%s [http %s, request %s, retryable=%s]", reason, status, exc.request_id, retryable)
    return GatewayError(reason, retryable=retryable)


def _plain(obj: Any) -> dict[str, Any]:
    return obj.to_dict(for_json=True) if hasattr(obj, "to_dict") else dict(obj)


def account_payouts_enabled(account: dict[str, Any]) -> bool:
    """Can we transfer to this connected account? With separate charges and transfers what
    matters is its `transfers` capability; older accounts without it report `payouts_enabled`."""
    capabilities = account.get("capabilities") or {}
    if isinstance(capabilities, dict) and "transfers" in capabilities:
        return capabilities["transfers"] == "active"
    return bool(account.get("payouts_enabled"))


class StripeGateway(Gateway):
    name = "stripe"

    def __init__(self) -> None:
        api_key = settings.STRIPE_SECRET_KEY
        if not api_key:
            # Retryable: the money movement waits until the operator sets the key.
            raise GatewayError("Stripe is not configured: STRIPE_SECRET_KEY is empty.", retryable=True)
        self._client = stripe.StripeClient(
            api_key,
            base_addresses={"api": settings.STRIPE_API_BASE.rstrip("/")},
            max_network_retries=settings.STRIPE_MAX_NETWORK_RETRIES,
            http_client=stripe.RequestsClient(timeout=settings.STRIPE_TIMEOUT_S),
        )

    # --- money ------------------------------------------------------------------------------

    def start_funding(self, request: FundingRequest, *, via_api: bool) -> FundingStart:
        # The buyer always pays on Stripe's page; `via_api` only matters to the simulator.
        metadata = {META_ESCROW: str(request.escrow_id), META_ENGAGEMENT: str(request.engagement_id)}
        try:
            session = self._client.v1.checkout.sessions.create(
                params={
                    "mode": "payment",
                    "line_items": [
                        {
                            "quantity": 1,
                            "price_data": {
                                "currency": request.currency,
                                "unit_amount": request.amount_minor,
                                "product_data": {"name": request.description},
                            },
                        }
                    ],
                    "payment_intent_data": {
                        "transfer_group": f"engagement-{request.engagement_id}",
                        "metadata": metadata,
                        "description": request.description,
                    },
                    "metadata": metadata,
                    "client_reference_id": f"escrow-{request.escrow_id}",
                    "success_url": request.success_url,
                    "cancel_url": request.cancel_url,
                },
                options={"idempotency_key": request.idempotency_key},
            )
        except stripe.StripeError as exc:
            raise _gateway_error("checkout session", exc) from exc
        return FundingStart(reference=session.id, checkout_url=session.url, funded=False)

    def transfer(self, request: TransferRequest) -> ProviderResult:
        if not request.source_transaction:
            raise GatewayError("stripe transfer refused: the escrow has no funding charge", retryable=False)
        try:
            transfer = self._client.v1.transfers.create(
                params={
                    "amount": request.amount_minor,
                    "currency": request.currency,
                    "destination": request.destination_account,
                    "source_transaction": request.source_transaction,
                    "transfer_group": request.transfer_group,
                    "metadata": {META_KEY: request.idempotency_key},
                },
                options={"idempotency_key": request.idempotency_key},
            )
        except stripe.StripeError as exc:
            raise _gateway_error("transfer", exc) from exc
        return ProviderResult(reference=transfer.id)

    def refund(self, request: RefundRequest) -> ProviderResult:
        if not request.charge_reference:
            raise GatewayError("stripe refund refused: the escrow has no funding charge", retryable=False)
        try:
            refund = self._client.v1.refunds.create(
                params={
                    "charge": request.charge_reference,
                    "amount": request.amount_minor,
                    "metadata": {META_KEY: request.idempotency_key},
                },
                options={"idempotency_key": request.idempotency_key},
            )
        except stripe.StripeError as exc:
            raise _gateway_error("refund", exc) from exc
        return ProviderResult(reference=refund.id)

    # --- sellers ------------------------------------------------------------------------------

    def onboard(self, *, seller_id: int, email: str, existing_account: str, return_url: str) -> Onboarding:
        url = settings.STRIPE_CONNECT_RETURN_URL or return_url
        if not existing_account.startswith("acct_") or existing_account.startswith("acct_sim_"):
            existing_account = ""  # none yet, or the local simulator's (the gateway was switched)
        try:
            if existing_account:
                account_id = existing_account
                # Going through the link again must not switch payouts off for an account
                # that is already complete: report what Stripe says.
                enabled = account_payouts_enabled(_plain(self._client.v1.accounts.retrieve(existing_account)))
            else:
                account = self._client.v1.accounts.create(
                    params={
                        "type": "express",
                        **({"email": email} if email else {}),
                        "capabilities": {"transfers": {"requested": True}},
                        "metadata": {META_SELLER: str(seller_id)},
                    },
                    # One account per seller, even if the link call below fails and the seller retries.
                    options={"idempotency_key": f"pactum-seller-{seller_id}-express-account"},
                )
                account_id, enabled = account.id, False
            link = self._client.v1.account_links.create(
                params={"account": account_id, "type": "account_onboarding", "refresh_url": url, "return_url": url}
            )
        except stripe.StripeError as exc:
            raise _gateway_error("onboarding", exc) from exc
        # The link is a short-lived bearer URL: handed to the seller, never logged or stored.
        return Onboarding(account=account_id, url=link.url, payouts_enabled=enabled)

    # --- re-reading objects for the webhook inbox (the provider's current state wins) -----------

    def retrieve_payment_intent(self, intent_id: str) -> dict[str, Any]:
        try:
            return _plain(self._client.v1.payment_intents.retrieve(intent_id))
        except stripe.StripeError as exc:
            raise _gateway_error("payment intent lookup", exc) from exc

    def retrieve_dispute(self, dispute_id: str) -> dict[str, Any]:
        try:
            return _plain(self._client.v1.disputes.retrieve(dispute_id))
        except stripe.StripeError as exc:
            raise _gateway_error("dispute lookup", exc) from exc

    def retrieve_account(self, account_id: str) -> dict[str, Any]:
        try:
            return _plain(self._client.v1.accounts.retrieve(account_id))
        except stripe.StripeError as exc:
            raise _gateway_error("account lookup", exc) from exc
