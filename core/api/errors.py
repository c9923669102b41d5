"""One error shape for the whole API: `{"detail": str, "code": str}`, plus
`errors` (field -> messages) for validation failures.

Domain errors raised by services (`core.errors.DomainError` subclasses) map to
their HTTP status here, so views never translate them by hand.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied
from django.http import Http404
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from core.errors import DomainError


def _first_error(errors: Any) -> tuple[list[str], str] | None:
    """Path and text of the first concrete message in DRF's nested error structure."""
    if isinstance(errors, dict):
        items: Any = errors.items()
    elif isinstance(errors, list):
        items = enumerate(errors)
    else:
        return ([], str(errors)) if str(errors) else None
    for key, value in items:
        found = _first_error(value)
        if found is None:
            continue
        path, message = found
        # Field names and positions in a list of objects are part of the path;
        # positions in a list of messages and "non_field_errors" are not.
        if key != "non_field_errors" and (isinstance(key, str) or isinstance(value, dict)):
            path = [f"[{key}]" if isinstance(key, int) else str(key), *path]
        return path, message
    return None


def _first_message(errors: Any) -> str:
    found = _first_error(errors)
    if found is None:
        return ""
    path, message = found
    return f"{'.'.join(path).replace('.[', '[')}: {message}" if path else message


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, DomainError):
        return Response({"detail": exc.detail, "code": exc.code}, status=exc.status_code)
    if isinstance(exc, Http404):
        exc = exceptions.NotFound(str(exc) or None)
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()

    response = drf_exception_handler(exc, context)
    if response is None or not isinstance(exc, exceptions.APIException):
        return response

    if isinstance(exc, exceptions.ValidationError):
        errors = exc.detail if isinstance(exc.detail, dict) else {"non_field_errors": exc.detail}
        response.data = {
            "detail": f"Invalid input. {_first_message(errors)}",
            "code": "invalid",
            "errors": errors,
        }
        response.status_code = status.HTTP_400_BAD_REQUEST
        return response

    detail = exc.detail
    code = exc.get_codes() if hasattr(exc, "get_codes") else exc.default_code
    response.data = {
        "detail": str(detail if not isinstance(detail, (list, dict)) else _first_message(detail)),
        "code": code if isinstance(code, str) else exc.default_code,
    }
    return response
