"""What a payment gateway does for Pactum.

Every call that moves money carries a deterministic idempotency key derived
from the settlement or escrow, so a retry after a timeout can never move the
money twice. Gateways raise `GatewayError` (retryable or not) and never touch
the database: the services record what happened.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

from core.errors import DomainError


class GatewayError(DomainError):
    """The payment provider refused or could not be reached. Reaching an API
    view, it is a 503 with the provider's reason (never a 500)."""

    status_code = 503
    code = "payment_provider_unavailable"

    def __init__(self, reason: str, *, retryable: bool = True) -> None:
        super().__init__(f"The payment provider could not complete this: {reason}")
        self.reason = reason
        self.retryable = retryable


@dataclass(frozen=True)
class FundingStart:
    reference: str  # checkout session (or simulator) reference
    checkout_url: str | None  # where the buyer pays; None when funded at once
    funded: bool  # the money is already in (local gateway through the API)
    charge_reference: str = ""


@dataclass(frozen=True)
class ProviderResult:
    reference: str


@dataclass(frozen=True)
class Onboarding:
    account: str
    url: str | None
    payouts_enabled: bool


@dataclass(frozen=True)
class FundingRequest:
    escrow_id: int
    engagement_id: int
    amount_minor: int
    currency: str
    description: str
    success_url: str
    cancel_url: str
    idempotency_key: str


@dataclass(frozen=True)
class TransferRequest:
    amount_minor: int
    currency: str
    destination_account: str
    source_transaction: str
    transfer_group: str
    idempotency_key: str


@dataclass(frozen=True)
class RefundRequest:
    amount_minor: int
    charge_reference: str
    idempotency_key: str


class Gateway(ABC):
    name: str

    @abstractmethod
    def start_funding(self, request: FundingRequest, *, via_api: bool) -> FundingStart: ...

    @abstractmethod
    def transfer(self, request: TransferRequest) -> ProviderResult: ...

    @abstractmethod
    def refund(self, request: RefundRequest) -> ProviderResult: ...

    @abstractmethod
    def onboard(self, *, seller_id: int, email: str, existing_account: str, return_url: str) -> Onboarding: ...
