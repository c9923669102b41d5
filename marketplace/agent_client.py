"""The platform's calls to sellers' agent endpoints: the only module that makes them.

A call is one signed JSON POST. Because the URL is seller-controlled, the call
is guarded against server-side request forgery:

- only http and https; the host is resolved once and *every* address it
  resolves to must be public (not private, loopback, link-local, multicast,
  reserved, unspecified; IPv6 forms that embed an IPv4 address are judged by
  that address), unless `allow_private` (development only);
- the connection goes to the vetted address itself, with the original name in
  the Host header and, for https, in SNI and the certificate check, so a second
  DNS answer (rebinding) cannot send the request elsewhere;
- redirects are never followed; the answer is read up to a byte cap and within
  one wall-clock deadline.

Network problems never raise: they come back as `AgentResponse(ok=False,
error=<a reason a seller can act on>)`.

Signatures: `X-Pactum-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of
"<t>.<raw body>" keyed with the listing's endpoint secret>`. Agents check it
with `verify_signature` (or the same few lines in their own language).
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import http.client
import ipaddress
import json
import logging
import socket
import ssl
import threading
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import urllib3
from django.conf import settings
from urllib3.connection import HTTPConnection, HTTPSConnection

from core.evidence import canonical_json
from core.validation import storable_problem

logger = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Pactum-Signature"
ENGAGEMENT_HEADER = "X-Pactum-Engagement"
SIGNATURE_TOLERANCE_S = 300
USER_AGENT = "Pactum-AgentClient/1"
_READ_CHUNK = 64 * 1024

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")


@dataclass(frozen=True)
class AgentResponse:
    ok: bool
    status_code: int | None = None
    latency_ms: int | None = None
    body: dict[str, Any] | None = None
    error: str = ""


# --- signatures ------------------------------------------------------------------


def _digest(secret: str, timestamp: int, body: bytes) -> str:
    return hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The X-Pactum-Signature header value for `body` sent at `timestamp`."""
    return f"t={timestamp},v1={_digest(secret, timestamp, body)}"


def verify_signature(
    secret: str, header: str, body: bytes, tolerance_s: int = SIGNATURE_TOLERANCE_S, now: float | None = None
) -> bool:
    """True when `header` signs exactly `body` with `secret`, within `tolerance_s` of now.

    Stale *and* future timestamps are refused, so a captured request cannot be
    replayed later, nor pre-signed for later. Several v1 values are allowed
    (any one matching suffices) so a secret can be rotated without downtime.
    """
    timestamp: int | None = None
    candidates: list[str] = []
    for part in (header or "").split(","):
        key, _, value = part.strip().partition("=")
        if key == "t" and value.isascii() and value.isdigit():
            timestamp = int(value)
        elif key == "v1" and value:
            candidates.append(value)
    if timestamp is None or not candidates:
        return False
    current = time.time() if now is None else now
    if abs(current - timestamp) > tolerance_s:
        return False
    expected = _digest(secret, timestamp, body)
    # compare_digest on every candidate (no early exit) keeps the timing flat.
    matches = [hmac.compare_digest(expected, candidate) for candidate in candidates]
    return any(matches)


# --- address vetting ---------------------------------------------------------------


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address stands for, if it is one of the embedding forms."""
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip.teredo is not None:
        return ip.teredo[1]
    if ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def is_public_address(ip: IPAddress) -> bool:
    """Whether the platform may connect to `ip` when private addresses are not allowed."""
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = _embedded_ipv4(ip)
        if embedded is not None and not is_public_address(embedded):
            return False
    # is_global alone misses some ranges on older Pythons (multicast is "global"
    # for IPv4), so every property is checked explicitly as well.
    return ip.is_global and not (
        ip.is_private or ip.is_loopback or ip.is_link_local or ip.is_multicast or ip.is_reserved or ip.is_unspecified
    )


class _Refused(Exception):
    """The URL is not one the platform will call; the message says why."""


def _resolve(host: str, port: int, *, allow_private: bool) -> list[str]:
    """Every address `host` resolves to, all vetted; raises _Refused."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise _Refused(f"could not resolve host {host!r}") from exc
    addresses: list[str] = []
    for _family, _type, _proto, _canon, sockaddr in infos:
        address = str(sockaddr[0])
        try:
            ip = ipaddress.ip_address(address.split("%", 1)[0])  # drop an IPv6 zone id
        except ValueError as exc:
            raise _Refused(f"host {host!r} resolved to an unusable address {address!r}") from exc
        if not allow_private and not is_public_address(ip):
            what = host if host.strip("[]") == address else f"{host} resolves to {address}, which"
            raise _Refused(
                f"refused: {what} is a private, loopback or reserved address; "
                "agent endpoints must be on the public internet"
            )
        if address not in addresses:
            addresses.append(address)
    if not addresses:
        raise _Refused(f"could not resolve host {host!r}")
    return addresses


# --- the call --------------------------------------------------------------------------


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _check_body(raw: bytes) -> tuple[dict[str, Any] | None, str]:
    """Parse and shape-check an agent's answer: (body, "") or (None, reason)."""
    try:
        body = json.loads(raw.decode("utf-8"), parse_constant=_refuse_constant)
    except (UnicodeDecodeError, ValueError, RecursionError):
        return None, "the response is not valid JSON"  # NaN, Infinity and extreme nesting included
    problem = storable_problem(body)
    if problem:
        return None, f"the response cannot be stored: {problem}"
    if not isinstance(body, dict):
        return None, 'the response must be a JSON object with an "output"'
    output = body.get("output")
    if not isinstance(output, (str, dict)) or output in ("", {}):
        return None, 'the response has no "output" (text or a JSON object)'
    citations = body.get("citations", [])
    if not isinstance(citations, list) or not all(isinstance(c, str) for c in citations):
        return None, '"citations" must be a list of strings'
    if not isinstance(body.get("actions", []), list):
        return None, '"actions" must be a list'
    return body, ""


class _Watchdog:
    """Cuts the connection when the deadline passes.

    Socket timeouts bound each read, not the whole call: an endpoint that
    trickles a byte just inside every timeout would hold a worker for as long as
    it likes. Shutting the socket down from a timer bounds the total.
    """

    def __init__(self, sock: socket.socket, seconds: float) -> None:
        self._sock = sock
        self._lock = threading.Lock()
        self._done = False
        self._timer = threading.Timer(max(seconds, 0.0), self._fire)
        self._timer.daemon = True
        self._timer.start()

    def _fire(self) -> None:
        with self._lock:
            if self._done:
                return
            # The plain-socket method, so an SSL socket's state is left alone;
            # the blocked read then sees end of stream.
            with contextlib.suppress(OSError):
                socket.socket.shutdown(self._sock, socket.SHUT_RDWR)

    def stop(self) -> None:
        # Under the lock, so the timer never touches a socket that is being closed.
        with self._lock:
            self._done = True
            self._timer.cancel()


def call_agent(
    *,
    url: str,
    secret: str,
    payload: dict[str, Any],
    timeout_ms: int,
    allow_private: bool,
    engagement_id: int | None = None,
    max_response_bytes: int | None = None,
    ca_certs: str | None = None,
) -> AgentResponse:
    """POST `payload` (signed) to an agent endpoint and return its checked answer.

    `ca_certs` is a CA bundle to trust for https instead of the system's.

    `latency_ms` runs from opening the connection to the last byte of the
    answer (name resolution is the platform's cost, not the agent's).
    """
    cap = settings.AGENT_ENDPOINT_MAX_RESPONSE_BYTES if max_response_bytes is None else max_response_bytes
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return AgentResponse(ok=False, error="the endpoint URL is not valid")
    scheme = parts.scheme.lower()
    host = parts.hostname
    if scheme not in ("http", "https") or not host:
        return AgentResponse(ok=False, error="the endpoint URL must be an http or https URL with a host")
    if parts.username or parts.password:
        return AgentResponse(ok=False, error="credentials in the endpoint URL are not supported")
    port = port or (443 if scheme == "https" else 80)
    try:
        addresses = _resolve(host, port, allow_private=allow_private)
    except _Refused as exc:
        return AgentResponse(ok=False, error=str(exc))

    body = canonical_json(payload).encode()
    host_header = f"[{host}]" if ":" in host else host
    if parts.port is not None:
        host_header = f"{host_header}:{parts.port}"
    headers = {
        "Host": host_header,
        "Content-Type": "application/json",
        "Accept": "application/json",
        "User-Agent": USER_AGENT,
        SIGNATURE_HEADER: sign(secret, int(time.time()), body),
    }
    if engagement_id is not None:
        headers[ENGAGEMENT_HEADER] = str(engagement_id)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")

    timeout_s = timeout_ms / 1000
    start = time.monotonic()
    deadline = start + timeout_s

    def elapsed_ms() -> int:
        return int((time.monotonic() - start) * 1000)

    def failed(error: str, status_code: int | None = None) -> AgentResponse:
        return AgentResponse(ok=False, status_code=status_code, latency_ms=elapsed_ms(), error=error)

    conn: HTTPConnection | None = None
    watchdog: _Watchdog | None = None
    try:
        last_error: BaseException | None = None
        for address in addresses:  # in resolver order; a later one only if an earlier will not connect
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            if scheme == "https":
                # server_hostname is sent as SNI and, with urllib3's default
                # check_hostname, is the name OpenSSL verifies the certificate for:
                # connecting to an IP does not weaken TLS.
                candidate: HTTPConnection = HTTPSConnection(
                    address,
                    port,
                    timeout=remaining,
                    cert_reqs="CERT_REQUIRED",
                    server_hostname=host,
                    ca_certs=ca_certs,
                )
            else:
                candidate = HTTPConnection(address, port, timeout=remaining)
            try:
                candidate.connect()
            except (ssl.SSLError, ssl.CertificateError):
                candidate.close()
                raise  # a certificate problem is the same on every address
            except (OSError, urllib3.exceptions.HTTPError) as exc:
                candidate.close()
                # urllib3 wraps the socket error (NewConnectionError, ConnectTimeoutError); keep the cause.
                last_error = (exc.__cause__ or exc) if isinstance(exc, urllib3.exceptions.NewConnectionError) else exc
                continue
            conn = candidate
            break
        if conn is None:
            if isinstance(last_error, ConnectionRefusedError):
                return failed(f"connection refused by {host}:{port}")
            if isinstance(last_error, OSError) and not isinstance(last_error, TimeoutError):
                return failed(f"could not connect to {host}:{port} ({last_error.strerror or last_error})")
            return failed(f"timed out after {timeout_ms} ms")

        assert conn.sock is not None
        watchdog = _Watchdog(conn.sock, deadline - time.monotonic())
        conn.request("POST", target, body=body, headers=headers, preload_content=False, decode_content=False)
        response = conn.getresponse()
        status = response.status
        if 300 <= status < 400:
            return failed(f"endpoint redirected (HTTP {status}); redirects are not followed", status)
        if not 200 <= status < 300:
            return failed(f"endpoint answered HTTP {status}", status)
        encoding = response.headers.get("Content-Encoding", "identity").strip().lower()
        if encoding not in ("", "identity"):
            # We asked for identity; decoding a compressed answer would let it exceed the cap.
            return failed(f"the response is {encoding}-encoded; send it uncompressed", status)
        declared = response.headers.get("Content-Length")
        if declared is not None and declared.isdigit() and int(declared) > cap:
            return failed(f"the response is larger than {cap} bytes", status)
        chunks: list[bytes] = []
        size = 0
        while True:
            chunk = response.read(_READ_CHUNK, decode_content=False)
            if not chunk:
                break
            size += len(chunk)
            if size > cap:
                return failed(f"the response is larger than {cap} bytes", status)
            chunks.append(chunk)
        if time.monotonic() >= deadline:
            # The watchdog may have cut the stream short: what arrived is not the answer.
            return failed(f"timed out after {timeout_ms} ms", status)
        latency = elapsed_ms()
        parsed, problem = _check_body(b"".join(chunks))
        if parsed is None:
            return AgentResponse(ok=False, status_code=status, latency_ms=latency, error=problem)
        return AgentResponse(ok=True, status_code=status, latency_ms=latency, body=parsed)
    except (ssl.SSLError, ssl.CertificateError) as exc:
        if time.monotonic() >= deadline:
            return failed(f"timed out after {timeout_ms} ms")
        # verify_message says why a certificate was refused ("Hostname mismatch, ..."); reason is OpenSSL's code.
        detail = getattr(exc, "verify_message", None) or getattr(exc, "reason", None) or str(exc)
        return failed(f"TLS failed for {host}: {detail}")
    except (OSError, http.client.HTTPException, urllib3.exceptions.HTTPError) as exc:
        # After the deadline any of these is the watchdog's (or a socket timeout's) doing.
        if time.monotonic() >= deadline or isinstance(exc, (TimeoutError, urllib3.exceptions.TimeoutError)):
            return failed(f"timed out after {timeout_ms} ms")
        logger.info("agent endpoint %s failed: %r", url, exc)
        return failed(f"the connection failed before a complete answer arrived ({type(exc).__name__})")
    finally:
        if watchdog is not None:
            watchdog.stop()
        if conn is not None:
            conn.close()
