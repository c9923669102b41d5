"""The embedded default: a simulated card processor, clearly labelled as such.

Through the API, funding settles at once; in the web UI a simulated card page
confirms it. Payouts and refunds succeed at once with a reference derived from
their idempotency key (so a retry returns the same reference).
"""

from __future__ import annotations

import hashlib

from django.urls import reverse

from escrow.gateways.base import (
    FundingRequest,
    FundingStart,
    Gateway,
    Onboarding,
    ProviderResult,
    RefundRequest,
    TransferRequest,
)


def _ref(prefix: str, key: str) -> str:
    return f"{prefix}_sim_{hashlib.sha256(key.encode()).hexdigest()[:20]}"


class LocalGateway(Gateway):
    name = "local"

    def start_funding(self, request: FundingRequest, *, via_api: bool) -> FundingStart:
        reference = _ref("cs", request.idempotency_key)
        if via_api:
            return FundingStart(
                reference=reference, checkout_url=None, funded=True, charge_reference=_ref("ch", reference)
            )
        url = reverse("web:simulated-checkout", kwargs={"escrow_id": request.escrow_id})
        return FundingStart(reference=reference, checkout_url=url, funded=False)

    def transfer(self, request: TransferRequest) -> ProviderResult:
        return ProviderResult(reference=_ref("tr", request.idempotency_key))

    def refund(self, request: RefundRequest) -> ProviderResult:
        return ProviderResult(reference=_ref("re", request.idempotency_key))

    def onboard(self, *, seller_id: int, email: str, existing_account: str, return_url: str) -> Onboarding:
        return Onboarding(account=existing_account or f"acct_sim_{seller_id}", url=None, payouts_enabled=True)
