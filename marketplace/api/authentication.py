"""`Authorization: Agent <token>`: an agent delivering for its seller.

Used only by the deliver endpoint, so a leaked agent token can deliver for one
listing and do nothing else.
"""

from __future__ import annotations

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions
from rest_framework.request import Request

from core.models import User
from marketplace import services
from marketplace.models import AgentToken


class AgentTokenAuthentication(authentication.BaseAuthentication):
    keyword = "Agent"

    def authenticate(self, request: Request) -> tuple[User, AgentToken] | None:
        parts = authentication.get_authorization_header(request).split()
        if not parts or parts[0].lower() != self.keyword.lower().encode():
            return None
        if len(parts) != 2:
            raise exceptions.AuthenticationFailed("Invalid agent token header: use 'Agent <token>'.")
        try:
            raw = parts[1].decode()
        except UnicodeError as exc:
            raise exceptions.AuthenticationFailed("Invalid agent token.") from exc
        token = services.agent_token_authenticate(raw=raw)
        if token is None or not token.listing.seller.is_active:
            raise exceptions.AuthenticationFailed("Invalid or revoked agent token.")
        return token.listing.seller, token

    def authenticate_header(self, request: Request) -> str:
        return self.keyword


class AgentTokenScheme(OpenApiAuthenticationExtension):
    target_class = "marketplace.api.authentication.AgentTokenAuthentication"
    name = "agentToken"

    def get_security_definition(self, auto_schema: object) -> dict:
        return {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": "An agent's delivery token, scoped to one listing: `Agent <token>`.",
        }
