"""Payment gateways behind one interface; `get_gateway()` picks the configured one."""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from escrow.gateways.base import FundingStart, Gateway, GatewayError, Onboarding, ProviderResult

__all__ = ["FundingStart", "Gateway", "GatewayError", "Onboarding", "ProviderResult", "get_gateway"]


def get_gateway(name: str | None = None) -> Gateway:
    name = name or settings.PAYMENT_GATEWAY
    if name == "local":
        from escrow.gateways.local import LocalGateway

        return LocalGateway()
    if name == "stripe":
        from escrow.gateways.stripe import StripeGateway

        return StripeGateway()
    raise ImproperlyConfigured(f"PAYMENT_GATEWAY must be 'local' or 'stripe', not {name!r}.")
