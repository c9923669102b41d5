"""The caller of an API request, typed for the services."""

from rest_framework.exceptions import NotAuthenticated
from rest_framework.request import Request

from core.models import User


def actor(request: Request) -> User:
    """The authenticated user; views that need one are already behind IsAuthenticated."""
    user = request.user
    if not isinstance(user, User):
        raise NotAuthenticated()
    return user


def viewer(request: Request) -> User | None:
    """The user if logged in, None for anonymous readers of public endpoints."""
    user = request.user
    return user if isinstance(user, User) else None
