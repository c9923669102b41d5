"""`POST /webhooks/stripe/`: Stripe's signed events into the inbox.

The view verifies the `Stripe-Signature` header on the raw body, stores the
event once by its id (`services.webhook_event_record`) and answers 200; the
event is applied after commit by a `settlement` task. A duplicate delivery is
answered 200 and changes nothing. Anything unverifiable or unparseable is a
400 `{"detail", "code"}` and stores nothing.

The signature scheme (Stripe's): the header is `t=<unix seconds>,v1=<hex>[,v1=<hex>...]`
where each `v1` is HMAC-SHA256 of `"<t>.<raw body>"` keyed with an endpoint
secret. Any `v1` may match any configured secret (`STRIPE_WEBHOOK_SECRET` is a
comma-separated list, so a rotation can overlap); the comparison is constant
time; and `t` must be within 300 s of now on *both* sides (stripe-python only
refuses old timestamps; a far-future one would stay replayable for as long).
This module does not import `stripe`: verifying is a few lines of `hmac`.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
from collections.abc import Sequence
from typing import Any

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, JsonResponse
from django.urls import path
from django.views.decorators.csrf import csrf_exempt

from escrow import services

logger = logging.getLogger(__name__)

SIGNATURE_TOLERANCE_S = 300


class SignatureError(Exception):
    def __init__(self, detail: str, code: str) -> None:
        super().__init__(detail)
        self.detail = detail
        self.code = code


def webhook_secrets() -> list[str]:
    """The configured endpoint secrets (a list, or a comma-separated string)."""
    configured = settings.STRIPE_WEBHOOK_SECRET
    items = configured.split(",") if isinstance(configured, str) else list(configured or [])
    return [s.strip() for s in items if s and s.strip()]


def verify_signature(
    *, payload: bytes, header: str, secrets: Sequence[str], now: float, tolerance: int = SIGNATURE_TOLERANCE_S
) -> int:
    """Check a `Stripe-Signature` header against the raw body; return its timestamp or raise."""
    if not header:
        raise SignatureError("The Stripe-Signature header is missing.", "missing_signature")
    timestamps: list[str] = []
    signatures: list[str] = []
    for element in header.split(","):
        key, sep, value = element.strip().partition("=")
        if not sep:
            continue
        if key == "t":
            timestamps.append(value)
        elif key == "v1":
            signatures.append(value)
    if len(timestamps) != 1 or not timestamps[0].isdigit() or len(timestamps[0]) > 12:
        raise SignatureError(
            "The Stripe-Signature header needs exactly one integer timestamp t.", "malformed_signature"
        )
    if not signatures:
        raise SignatureError("The Stripe-Signature header carries no v1 signature.", "malformed_signature")
    signed = timestamps[0].encode() + b"." + payload
    expected = [hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest() for secret in secrets]
    # Every pair is compared (no early exit), each in constant time.
    matches = [hmac.compare_digest(e.encode(), s.encode("utf-8", "replace")) for e in expected for s in signatures]
    if not any(matches):
        raise SignatureError("No signature matches the body with any configured secret.", "invalid_signature")
    timestamp = int(timestamps[0])
    if timestamp < now - tolerance:
        raise SignatureError(f"The signature is older than {tolerance} seconds.", "stale_timestamp")
    if timestamp > now + tolerance:
        raise SignatureError(f"The signature is dated more than {tolerance} seconds ahead.", "future_timestamp")
    return timestamp


def _error(status: int, detail: str, code: str) -> JsonResponse:
    return JsonResponse({"detail": detail, "code": code}, status=status)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _parse_event(raw: bytes) -> dict[str, Any]:
    if b"\\u0000" in raw:  # JSON may spell a NUL; PostgreSQL's jsonb cannot store one
        raise ValueError("a NUL character")
    event = json.loads(raw, parse_constant=_reject_constant)
    if not isinstance(event, dict):
        raise ValueError("not an object")
    json.dumps(event, ensure_ascii=False).encode()  # a lone surrogate escape cannot be stored either
    return event


@csrf_exempt
def stripe_webhook(request: HttpRequest) -> JsonResponse:
    if request.method != "POST":
        response = _error(405, "Only POST is allowed here.", "method_not_allowed")
        response["Allow"] = "POST"
        return response
    secrets = webhook_secrets()
    if not secrets:
        return _error(503, "Stripe webhooks are not configured (STRIPE_WEBHOOK_SECRET).", "not_configured")
    try:
        raw = request.body
    except RequestDataTooBig:
        return _error(400, "The body is too large.", "too_large")
    try:
        verify_signature(
            payload=raw, header=request.headers.get("Stripe-Signature", ""), secrets=secrets, now=time.time()
        )
    except SignatureError as exc:
        logger.warning("stripe webhook refused: %s", exc.detail)
        return _error(400, exc.detail, exc.code)
    try:
        event = _parse_event(raw)
    except ValueError as exc:  # json.JSONDecodeError and UnicodeDecodeError are ValueErrors
        return _error(400, f"The body is not a JSON event: {exc}", "invalid_json")
    event_id, event_type, data = event.get("id"), event.get("type"), event.get("data")
    if (
        not isinstance(event_id, str)
        or not 0 < len(event_id) <= 255
        or not isinstance(event_type, str)
        or not 0 < len(event_type) <= 100
        or not isinstance(data, dict)
        or not isinstance(data.get("object"), dict)
    ):
        return _error(400, "An event needs a string id and type and a data.object.", "invalid_event")
    _, created = services.webhook_event_record(event_id=event_id, event_type=event_type, payload=event)
    return JsonResponse({"received": True, "duplicate": not created})


# Mounted by config.urls at webhooks/stripe/.
urlpatterns = [path("", stripe_webhook, name="stripe-webhook")]
