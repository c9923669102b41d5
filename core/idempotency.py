"""`Idempotency-Key` for the API's mutating requests.

A client that retries a POST (a timeout, a dropped connection) sends the same
key and gets the first response back instead of doing the work twice. The same
key with a different request is a 422; a retry that arrives while the first
request is still running is a 409. Server errors (5xx) are not stored, so the
client may retry them. Records older than `IDEMPOTENCY_TTL` are purged by beat.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import datetime, timedelta

from django.conf import settings
from django.core.exceptions import RequestDataTooBig, TooManyFieldsSent, TooManyFilesSent
from django.db import IntegrityError, transaction
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.http.multipartparser import MultiPartParserError
from django.utils import timezone

from core.models import IdempotencyRecord

HEADER = "Idempotency-Key"
MUTATING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
MAX_KEY_LENGTH = 255
IDEMPOTENCY_TTL = timedelta(hours=24)


def _scope(request: HttpRequest) -> str:
    credential = request.headers.get("Authorization") or ""
    if not credential:
        session_id = request.COOKIES.get("sessionid")
        # Anonymous callers are told apart by address, so two clients choosing the
        # same short key do not replay each other's responses.
        credential = f"session:{session_id}" if session_id else f"anonymous:{request.META.get('REMOTE_ADDR', '')}"
    return hashlib.sha256(credential.encode()).hexdigest()


def _fingerprint(request: HttpRequest) -> str:
    """What makes two requests "the same": method, path and content.

    A multipart body is compared by its fields and its files' contents, not its
    bytes: clients choose a new boundary on every send, so a retry's raw body differs.
    """
    digest = hashlib.sha256()
    digest.update(request.method.encode() if request.method else b"")
    digest.update(b"\0" + request.get_full_path().encode() + b"\0")
    body = request.body  # read (and capped by DATA_UPLOAD_MAX_MEMORY_SIZE) before any parsing
    # Django parses a multipart body into request.POST for POST only; other methods hash the bytes.
    if request.content_type == "multipart/form-data" and request.method == "POST":
        for name, values in sorted(request.POST.lists()):
            digest.update(f"field\0{name}\0{len(values)}\0".encode())
            for value in values:
                digest.update(value.encode() + b"\0")
        for name, files in sorted(request.FILES.lists()):
            for upload in files:
                content = hashlib.sha256()
                for chunk in upload.chunks():
                    content.update(chunk)
                upload.seek(0)
                digest.update(f"file\0{name}\0{upload.name}\0{content.hexdigest()}\0".encode())
    else:
        digest.update(body)
    return digest.hexdigest()


def _error(status: int, detail: str, code: str) -> JsonResponse:
    return JsonResponse({"detail": detail, "code": code}, status=status)


class IdempotencyMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        key = request.headers.get(HEADER)
        if key is None or request.method not in MUTATING or not request.path.startswith("/api/"):
            return self.get_response(request)
        if not key.strip() or len(key) > MAX_KEY_LENGTH:
            return _error(400, f"{HEADER} must be 1 to {MAX_KEY_LENGTH} characters.", "invalid_idempotency_key")

        try:
            scope, fingerprint = _scope(request), _fingerprint(request)
        except RequestDataTooBig:
            return _error(
                413,
                f"The request body is larger than {settings.DATA_UPLOAD_MAX_MEMORY_SIZE:,} bytes.",
                "request_too_large",
            )
        except (MultiPartParserError, TooManyFieldsSent, TooManyFilesSent) as exc:
            return _error(400, f"The multipart body could not be read: {exc}", "parse_error")
        try:
            with transaction.atomic():
                record = IdempotencyRecord.objects.create(scope=scope, key=key, fingerprint=fingerprint)
        except IntegrityError:
            return self._replay(scope, key, fingerprint)

        response = self.get_response(request)
        # Server errors and throttling are not the answer to the request: let the client retry them.
        if response.status_code >= 500 or response.status_code == 429 or getattr(response, "streaming", False):
            IdempotencyRecord.objects.filter(pk=record.pk).delete()
            return response
        if hasattr(response, "render") and callable(response.render):
            response.render()
        IdempotencyRecord.objects.filter(pk=record.pk).update(
            status_code=response.status_code,
            content_type=response.get("Content-Type", ""),
            body=response.content,
        )
        return response

    @staticmethod
    def _replay(scope: str, key: str, fingerprint: str) -> HttpResponse:
        record = IdempotencyRecord.objects.filter(scope=scope, key=key).first()
        if record is None:  # purged between the insert and this read
            return _error(409, "Retry the request.", "idempotency_retry")
        if record.fingerprint != fingerprint:
            return _error(422, f"This {HEADER} was already used with a different request.", "idempotency_key_reused")
        if record.status_code is None:
            return _error(409, f"A request with this {HEADER} is still in progress.", "idempotency_in_progress")
        response = HttpResponse(bytes(record.body), status=record.status_code, content_type=record.content_type)
        response["Idempotent-Replayed"] = "true"
        return response


def idempotency_purge(*, now: datetime | None = None) -> int:
    """Delete records past their time to live; return how many."""
    cutoff = (now or timezone.now()) - IDEMPOTENCY_TTL
    deleted, _ = IdempotencyRecord.objects.filter(created_at__lt=cutoff).delete()
    return deleted
