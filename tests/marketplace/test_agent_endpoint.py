"""The platform calling a seller's agent endpoint, and the demo agents.

Agent endpoints are real HTTP servers on 127.0.0.1 started by the tests: our
code is exercised unpatched, down to the socket. The test server checks the
signature with hmac itself, so a bug shared by signer and verifier could not
hide.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import shutil
import ssl
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from django.db import connection

from marketplace import services
from marketplace.agent_client import call_agent, is_public_address, sign, verify_signature
from marketplace.models import Deliverable, DeliveryAttempt, Engagement
from marketplace.tasks import call_agent_endpoint
from tests.factories import BuyerFactory, SellerFactory
from web.demo_agents import DEMO_AGENTS, answer, demo_agent_url

pytestmark = pytest.mark.django_db

TASK = "Summarise the evidence on RE2 regular expressions."
GOOD_ANSWER = {
    "output": "RE2 matches in linear time (https://github.com/google/re2).",
    "citations": ["https://github.com/google/re2"],
    "actions": ["search", "read"],
}
TERMS = {"price_minor": 5000, "currency": "usd", "delivery_deadline_hours": 48}


def pact_clauses(max_ms: int) -> list[dict]:
    return [
        {"key": "cites", "kind": "citation_rate", "params": {"min_rate": 0.9}, "severity": "major"},
        {"key": "fast", "kind": "max_latency_ms", "params": {"max_ms": max_ms}, "severity": "minor"},
        {"key": "scope", "kind": "scope", "params": {"allowed_actions": ["search", "read"]}, "severity": "critical"},
    ]


def active_engagement(*, endpoint_url: str, max_ms: int = 5000, task: object = TASK) -> Engagement:
    """An engagement funded and waiting for its agent, built through the real services.

    The endpoint is set only once the engagement is active: activating a
    listing with an endpoint enqueues the call on commit, and in the
    transactional tests that would reach the test broker (and any worker
    listening there). The tests call the service or the task themselves.
    """
    seller, buyer = SellerFactory.create(), BuyerFactory.create()
    listing = services.listing_create(seller=seller, name="Endpoint agent", price_minor=5000, currency="usd")
    pact = services.pact_publish(listing=listing, actor=seller, name="Pact", clauses=pact_clauses(max_ms), terms=TERMS)
    engagement = services.engagement_create(buyer=buyer, listing=listing, template=pact.template, task=task)
    services.proposal_accept(engagement_id=engagement.pk, actor=seller)
    services.engagement_mark_active(engagement_id=engagement.pk)
    services.listing_update(listing=listing, actor=seller, endpoint_url=endpoint_url)
    return Engagement.objects.select_related("listing", "pact_version").get(pk=engagement.pk)


# --- a seller's agent, at the network boundary ---------------------------------------


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    signature_valid: bool


@dataclass
class Reply:
    status: int = 200
    body: bytes = json.dumps(GOOD_ANSWER).encode()
    delay_s: float = 0.0
    headers: dict[str, str] = field(default_factory=dict)
    content_length: bool = True
    trickle_s: float = 0.0  # pause between the body's bytes


class AgentServer:
    """A ThreadingHTTPServer on 127.0.0.1 that records requests and answers `reply`."""

    def __init__(self, tls: ssl.SSLContext | None = None) -> None:
        self.scheme = "https" if tls else "http"
        self.secret = ""
        self.reply = Reply()
        self.replies_by_path: dict[str, Reply] = {}
        self.received: list[Received] = []
        self.on_request: Callable[[], None] | None = None  # runs on the server thread before it answers
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                server.received.append(
                    Received(self.path, dict(self.headers.items()), body, server.signature_valid(self.headers, body))
                )
                if server.on_request is not None:
                    server.on_request()
                reply = server.replies_by_path.get(self.path, server.reply)
                time.sleep(reply.delay_s)
                self.send_response(reply.status)
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Type", "application/json")
                if reply.content_length:
                    self.send_header("Content-Length", str(len(reply.body)))
                self.end_headers()
                if not reply.trickle_s:
                    self.wfile.write(reply.body)
                for byte in reply.body if reply.trickle_s else b"":
                    self.wfile.write(bytes([byte]))
                    self.wfile.flush()
                    time.sleep(reply.trickle_s)

            def log_message(self, format: str, *args: object) -> None:
                pass

        class Server(ThreadingHTTPServer):
            def handle_error(self, request: object, client_address: object) -> None:
                pass  # the platform hung up on a slow answer: expected in the timeout tests

        self.httpd = Server(("127.0.0.1", 0), Handler)
        if tls is not None:
            self.httpd.socket = tls.wrap_socket(self.httpd.socket, server_side=True)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def url(self, path: str = "/agent", host: str = "127.0.0.1") -> str:
        return f"{self.scheme}://{host}:{self.port}{path}"

    def signature_valid(self, headers: object, body: bytes) -> bool:
        """Stripe-style check written out here, independent of marketplace.agent_client."""
        parts = dict(p.split("=", 1) for p in headers.get("X-Pactum-Signature", "").split(",") if "=" in p)  # type: ignore[attr-defined]
        if "t" not in parts or "v1" not in parts:
            return False
        expected = hmac.new(self.secret.encode(), parts["t"].encode() + b"." + body, hashlib.sha256).hexdigest()
        return hmac.compare_digest(expected, parts["v1"]) and abs(time.time() - int(parts["t"])) < 300

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def agent_server() -> Iterator[AgentServer]:
    server = AgentServer()
    yield server
    server.close()


@pytest.fixture
def allow_loopback(settings) -> None:
    # The test agent listens on 127.0.0.1, which production refuses.
    settings.AGENT_ENDPOINT_ALLOW_PRIVATE = True


def engagement_for(server: AgentServer, **kwargs: object) -> Engagement:
    engagement = active_engagement(endpoint_url=server.url(), **kwargs)  # type: ignore[arg-type]
    server.secret = engagement.listing.endpoint_secret
    return engagement


# --- the call ---------------------------------------------------------------------------


def test_the_agent_receives_the_task_and_pact_signed_with_the_listing_secret(agent_server, allow_loopback):
    engagement = engagement_for(agent_server)

    services.engagement_call_agent(engagement_id=engagement.pk)

    (request,) = agent_server.received
    assert request.signature_valid
    assert verify_signature(engagement.listing.endpoint_secret, request.headers["X-Pactum-Signature"], request.body)
    assert request.headers["X-Pactum-Engagement"] == str(engagement.pk)
    assert request.headers["Host"] == f"127.0.0.1:{agent_server.port}"
    payload = json.loads(request.body)
    pact = engagement.pact_version
    assert payload == {
        "engagement": engagement.pk,
        "task": TASK,
        "pact": {"hash": pact.content_hash, "clauses": pact.clauses, "terms": pact.terms},
    }


def test_a_successful_call_delivers_from_the_endpoint_and_moves_the_engagement_to_delivered(
    agent_server, allow_loopback
):
    engagement = engagement_for(agent_server)

    attempt = services.engagement_call_agent(engagement_id=engagement.pk)

    assert attempt is not None
    assert (attempt.number, attempt.ok, attempt.status_code, attempt.error) == (1, True, 200, "")
    deliverable = Deliverable.objects.get(engagement=engagement)
    assert deliverable.source == Deliverable.Source.ENDPOINT
    assert deliverable.submitted_by is None
    assert deliverable.output == GOOD_ANSWER["output"]
    assert deliverable.citations == GOOD_ANSWER["citations"]
    assert deliverable.actions == GOOD_ANSWER["actions"]
    engagement.refresh_from_db()
    assert engagement.status == Engagement.Status.DELIVERED


def test_latency_is_measured_by_the_platform_not_taken_from_the_agent(agent_server, allow_loopback):
    engagement = engagement_for(agent_server)
    agent_server.reply = Reply(body=json.dumps({**GOOD_ANSWER, "latency_ms": 1}).encode(), delay_s=0.2)

    attempt = services.engagement_call_agent(engagement_id=engagement.pk)

    deliverable = Deliverable.objects.get(engagement=engagement)
    assert deliverable.latency_ms is not None
    assert 200 <= deliverable.latency_ms < 2000
    assert attempt is not None
    assert attempt.latency_ms == deliverable.latency_ms


def test_an_answer_slower_than_the_pacts_latency_budget_is_a_failed_attempt(agent_server, allow_loopback):
    # Budget 200 ms + the 1 s margin: the call gives up at 1200 ms.
    engagement = engagement_for(agent_server, max_ms=200)
    agent_server.reply = Reply(delay_s=3)

    started = time.monotonic()
    attempt = services.engagement_call_agent(engagement_id=engagement.pk)
    elapsed = time.monotonic() - started

    assert attempt is not None
    assert not attempt.ok
    assert attempt.error == "timed out after 1200 ms"
    assert attempt.latency_ms is not None
    assert 1200 <= attempt.latency_ms < 2000
    assert elapsed < 2.5
    assert not Deliverable.objects.filter(engagement=engagement).exists()
    engagement.refresh_from_db()
    assert engagement.status == Engagement.Status.ACTIVE


def test_an_answer_trickled_byte_by_byte_is_cut_at_the_deadline(agent_server, allow_loopback):
    # Every byte arrives well within a socket timeout; only the total is too slow.
    engagement = engagement_for(agent_server, max_ms=200)
    agent_server.reply = Reply(trickle_s=0.05)  # about 4 s for the whole answer

    started = time.monotonic()
    attempt = services.engagement_call_agent(engagement_id=engagement.pk)

    assert (attempt.ok, attempt.error) == (False, "timed out after 1200 ms")
    assert time.monotonic() - started < 2


def test_a_redirect_is_not_followed(agent_server, allow_loopback):
    engagement = engagement_for(agent_server)
    agent_server.reply = Reply(status=302, body=b"", headers={"Location": agent_server.url("/elsewhere")})

    attempt = services.engagement_call_agent(engagement_id=engagement.pk)

    assert not attempt.ok
    assert attempt.status_code == 302
    assert "redirects are not followed" in attempt.error
    assert [r.path for r in agent_server.received] == ["/agent"]
    assert not Deliverable.objects.filter(engagement=engagement).exists()


@pytest.mark.parametrize(
    ("reply", "reason"),
    [
        (Reply(body=b'{"output": "unterminated'), "the response is not valid JSON"),
        (Reply(body=b'["output"]'), 'the response must be a JSON object with an "output"'),
        (Reply(body=b'{"answer": "no output key"}'), 'the response has no "output" (text or a JSON object)'),
        (Reply(body=b'{"output": "x", "citations": "one"}'), '"citations" must be a list of strings'),
        (Reply(status=500, body=b'{"error": "boom"}'), "endpoint answered HTTP 500"),
    ],
)
def test_a_malformed_or_failed_answer_is_a_failed_attempt(agent_server, allow_loopback, reply, reason):
    engagement = engagement_for(agent_server)
    agent_server.reply = reply

    attempt = services.engagement_call_agent(engagement_id=engagement.pk)

    assert (attempt.ok, attempt.error) == (False, reason)
    assert not Deliverable.objects.filter(engagement=engagement).exists()


@pytest.mark.parametrize("content_length", [True, False], ids=["declared", "streamed"])
def test_an_answer_over_the_size_cap_is_refused(agent_server, allow_loopback, settings, content_length):
    settings.AGENT_ENDPOINT_MAX_RESPONSE_BYTES = 1000
    engagement = engagement_for(agent_server)
    agent_server.reply = Reply(body=json.dumps({"output": "x" * 5000}).encode(), content_length=content_length)

    attempt = services.engagement_call_agent(engagement_id=engagement.pk)

    assert (attempt.ok, attempt.error) == (False, "the response is larger than 1000 bytes")


def test_an_answer_the_delivery_rules_refuse_is_a_failed_attempt_with_their_reason(agent_server, allow_loopback):
    engagement = engagement_for(agent_server)
    agent_server.reply = Reply(body=json.dumps({"output": "x", "citations": ["u" * 2001]}).encode())

    attempt = services.engagement_call_agent(engagement_id=engagement.pk)

    assert not attempt.ok
    assert attempt.error == "the answer was refused: citations: a list of strings (URLs or references)."
    engagement.refresh_from_db()
    assert engagement.status == Engagement.Status.ACTIVE


@pytest.mark.django_db(transaction=True)
def test_an_answer_arriving_after_another_delivery_is_discarded(agent_server, allow_loopback):
    # Committed data: the seller's delivery runs on the server thread, on its own connection.
    engagement = engagement_for(agent_server)

    def seller_delivers_meanwhile() -> None:
        try:
            services.deliverable_submit(engagement_id=engagement.pk, actor=engagement.listing.seller, output="by hand")
        finally:
            connection.close()

    agent_server.on_request = seller_delivers_meanwhile

    attempt = services.engagement_call_agent(engagement_id=engagement.pk)

    assert not attempt.ok
    assert attempt.error == "the answer was discarded: This engagement has already been delivered."
    assert Deliverable.objects.get(engagement=engagement).source == Deliverable.Source.SELLER


# --- addresses the platform will not call ---------------------------------------------------


def test_a_private_ip_is_refused_before_any_connection(settings):
    settings.AGENT_ENDPOINT_ALLOW_PRIVATE = False
    # Nothing listens at 10.0.0.1:9; a connection attempt would hang until the timeout.
    engagement = active_engagement(endpoint_url="http://10.0.0.1:9/")

    started = time.monotonic()
    attempt = services.engagement_call_agent(engagement_id=engagement.pk)

    assert time.monotonic() - started < 1
    assert not attempt.ok
    assert attempt.error.startswith("refused: 10.0.0.1 is a private, loopback or reserved address")
    assert attempt.status_code is None
    assert attempt.latency_ms is None  # the clock starts at connect; it never started


def test_a_name_resolving_to_loopback_is_refused(agent_server, settings):
    settings.AGENT_ENDPOINT_ALLOW_PRIVATE = False
    engagement = active_engagement(endpoint_url=f"http://localhost:{agent_server.port}/agent")

    attempt = services.engagement_call_agent(engagement_id=engagement.pk)

    assert not attempt.ok
    assert attempt.error.startswith("refused: localhost resolves to ")
    assert agent_server.received == []  # the agent was reachable, and never called


@pytest.mark.parametrize(
    "url",
    [
        "http://[::ffff:127.0.0.1]:{port}/agent",  # IPv4-mapped IPv6
        "http://[::1]:{port}/agent",
        "http://0.0.0.0:{port}/agent",
        "http://169.254.169.254/latest/meta-data/",  # cloud metadata, link-local
    ],
)
def test_other_non_public_addresses_are_refused(agent_server, url):
    response = call_agent(
        url=url.format(port=agent_server.port), secret="s", payload={}, timeout_ms=2000, allow_private=False
    )
    assert not response.ok
    assert response.error.startswith("refused: ")
    assert agent_server.received == []


@pytest.mark.parametrize("url", ["ftp://example.com/agent", "file:///etc/passwd", "http:///no-host", "not a url"])
def test_only_http_and_https_urls_are_called(url):
    response = call_agent(url=url, secret="s", payload={}, timeout_ms=2000, allow_private=True)
    assert (response.ok, response.error) == (False, "the endpoint URL must be an http or https URL with a host")


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("8.8.8.8", True),
        ("2606:4700:4700::1111", True),
        ("10.1.2.3", False),
        ("172.16.0.1", False),
        ("192.168.1.1", False),
        ("100.64.0.1", False),  # carrier-grade NAT
        ("127.0.0.1", False),
        ("169.254.169.254", False),
        ("224.0.0.1", False),  # multicast
        ("240.0.0.1", False),  # reserved
        ("0.0.0.0", False),
        ("::1", False),
        ("fe80::1", False),
        ("fc00::1", False),
        ("::ffff:10.0.0.1", False),  # IPv4-mapped
        ("2002:a00:1::", False),  # 6to4 around 10.0.0.1
        ("64:ff9b::a00:1", False),  # NAT64 around 10.0.0.1
    ],
)
def test_is_public_address(address, public):
    assert is_public_address(ipaddress.ip_address(address)) is public


def test_a_closed_port_is_a_failed_attempt_with_a_reason(allow_loopback, agent_server):
    port = agent_server.port
    agent_server.close()  # nothing listens there any more

    response = call_agent(url=f"http://127.0.0.1:{port}/", secret="s", payload={}, timeout_ms=2000, allow_private=True)

    assert (response.ok, response.error) == (False, f"connection refused by 127.0.0.1:{port}")


# --- https ----------------------------------------------------------------------------------


def self_signed_certificate(directory: Path, name: str) -> tuple[str, str]:
    """A certificate for `name` (and its key), made with the machine's openssl."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.fail("openssl is not installed; the https tests need it to make a certificate.")
    cert, key = directory / f"{name}.crt", directory / f"{name}.key"
    subject = ["-subj", f"/CN={name}", "-addext", f"subjectAltName=DNS:{name}"]
    files = ["-keyout", str(key), "-out", str(cert)]
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", *subject, *files],
        check=True,
        capture_output=True,
    )
    return str(cert), str(key)


def tls_server(directory: Path, certificate_name: str) -> tuple[AgentServer, str]:
    """An https agent on 127.0.0.1 presenting a certificate for `certificate_name`; and that certificate."""
    cert, key = self_signed_certificate(directory, certificate_name)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    return AgentServer(tls=context), cert


@pytest.fixture
def tls_servers(tmp_path: Path) -> Iterator[Callable[[str], tuple[AgentServer, str]]]:
    started: list[AgentServer] = []

    def start(certificate_name: str) -> tuple[AgentServer, str]:
        server, cert = tls_server(tmp_path, certificate_name)
        started.append(server)
        return server, cert

    yield start
    for server in started:
        server.close()


def test_https_connects_to_the_vetted_address_and_verifies_the_certificate_for_the_name(tls_servers):
    # The URL names localhost; the platform connects to 127.0.0.1 and still checks the name.
    server, cert = tls_servers("localhost")

    response = call_agent(
        url=server.url(host="localhost"), secret="s", payload={}, timeout_ms=5000, allow_private=True, ca_certs=cert
    )

    assert response.ok, response.error
    assert response.body == GOOD_ANSWER
    assert server.received[0].headers["Host"] == f"localhost:{server.port}"


def test_https_refuses_a_trusted_certificate_for_another_name(tls_servers):
    # What a rebinding or hijacked address would present: a valid certificate, for someone else.
    server, other_cert = tls_servers("other.test")

    response = call_agent(
        url=server.url(host="localhost"),
        secret="s",
        payload={},
        timeout_ms=5000,
        allow_private=True,
        ca_certs=other_cert,
    )

    assert not response.ok
    assert response.error == "TLS failed for localhost: Hostname mismatch, certificate is not valid for 'localhost'."
    assert server.received == []


def test_https_refuses_an_untrusted_certificate(tls_servers):
    server, _ = tls_servers("localhost")

    response = call_agent(url=server.url(host="localhost"), secret="s", payload={}, timeout_ms=5000, allow_private=True)

    assert (response.ok, response.error) == (False, "TLS failed for localhost: self-signed certificate")
    assert server.received == []


# --- signatures -------------------------------------------------------------------------------


def test_signature_verifies_only_the_same_body_secret_and_a_fresh_timestamp():
    body = b'{"task": "x"}'
    now = 1_700_000_000
    header = sign("secret", now, body)

    assert verify_signature("secret", header, body, now=now)
    assert verify_signature("secret", header, body, now=now + 300)
    assert not verify_signature("secret", header, body + b" ", now=now)
    assert not verify_signature("other", header, body, now=now)
    assert not verify_signature("secret", header, body, now=now + 301)  # stale
    assert not verify_signature("secret", header, body, now=now - 301)  # from the future
    assert not verify_signature("secret", "", body, now=now)
    assert not verify_signature("secret", f"t={now}", body, now=now)
    assert not verify_signature("secret", "t=abc,v1=00", body, now=now)


def test_any_matching_v1_signature_is_accepted_for_secret_rotation():
    body = b"{}"
    header = f"t=100,v1={'0' * 64},{sign('new', 100, body).split(',')[1]}"
    assert verify_signature("new", header, body, now=100)


# --- the task -------------------------------------------------------------------------------


def test_a_second_run_of_the_task_is_a_no_op(agent_server, allow_loopback):
    engagement = engagement_for(agent_server)

    call_agent_endpoint.apply(args=(engagement.pk,))
    call_agent_endpoint.apply(args=(engagement.pk,))

    assert len(agent_server.received) == 1
    assert DeliveryAttempt.objects.filter(engagement=engagement).count() == 1
    assert Deliverable.objects.filter(engagement=engagement).count() == 1


def test_the_task_retries_a_failing_endpoint_three_times_in_all_and_keeps_each_reason(agent_server, allow_loopback):
    engagement = engagement_for(agent_server)
    agent_server.reply = Reply(status=503, body=b"{}")

    # Eager: Celery runs the retries at once instead of after their countdown.
    call_agent_endpoint.apply(args=(engagement.pk,))
    call_agent_endpoint.apply(args=(engagement.pk,))  # a redelivered message does not add a fourth

    attempts = list(DeliveryAttempt.objects.filter(engagement=engagement).values_list("number", "ok", "error"))
    assert attempts == [(n, False, "endpoint answered HTTP 503") for n in (1, 2, 3)]
    assert len(agent_server.received) == 3
    engagement.refresh_from_db()
    assert engagement.status == Engagement.Status.ACTIVE


def test_the_task_does_nothing_for_an_engagement_that_is_not_active(agent_server, allow_loopback):
    engagement = engagement_for(agent_server)
    services.engagement_mark_expired(engagement_id=engagement.pk)

    call_agent_endpoint.apply(args=(engagement.pk,))

    assert agent_server.received == []
    assert not DeliveryAttempt.objects.filter(engagement=engagement).exists()


# --- demo agents -------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def _demo_agents_enabled(settings) -> None:
    settings.DEMO_AGENTS_ENABLED = True


def demo_listing_engagement(name: str) -> Engagement:
    return active_engagement(endpoint_url=f"http://127.0.0.1:8000/demo-agents/{name}/")


def post_signed(client, name: str, secret: str, task: object = TASK, engagement: int = 1):
    body = json.dumps({"engagement": engagement, "task": task, "pact": {}}).encode()
    return client.post(
        f"/demo-agents/{name}/",
        data=body,
        content_type="application/json",
        headers={"X-Pactum-Signature": sign(secret, int(time.time()), body)},
    )


@pytest.mark.parametrize("name", sorted(DEMO_AGENTS))
def test_a_demo_agent_answers_a_request_signed_with_its_listings_secret(client, name):
    engagement = demo_listing_engagement(name)

    response = post_signed(client, name, engagement.listing.endpoint_secret)

    assert response.status_code == 200
    expected = answer(name, TASK)
    assert response.json() == {"output": expected.output, "citations": expected.citations, "actions": expected.actions}


@pytest.mark.parametrize("secret", ["", "wrong-secret"], ids=["unsigned", "wrong-secret"])
def test_a_demo_agent_refuses_a_request_without_a_valid_signature(client, secret):
    demo_listing_engagement("beacon")

    if secret:
        response = post_signed(client, "beacon", secret)
    else:
        response = client.post("/demo-agents/beacon/", data={"task": TASK}, content_type="application/json")

    assert response.status_code == 401
    assert "X-Pactum-Signature" in response.json()["error"]


def test_a_demo_agent_does_not_accept_another_agents_secret(client):
    atlas = demo_listing_engagement("atlas")
    demo_listing_engagement("beacon")

    assert post_signed(client, "beacon", atlas.listing.endpoint_secret).status_code == 401


def test_demo_agents_are_absent_unless_enabled(client, settings):
    engagement = demo_listing_engagement("beacon")
    settings.DEMO_AGENTS_ENABLED = False

    assert post_signed(client, "beacon", engagement.listing.endpoint_secret).status_code == 404


def test_demo_answers_are_deterministic_and_use_the_task():
    for name in DEMO_AGENTS:
        first, again = answer(name, TASK), answer(name, TASK)
        assert first == again
        assert "RE2 regular expressions" in first.output
        assert answer(name, "Compare electric bikes in European cities.").output != first.output
    assert answer("beacon", {"question": TASK}) == answer("beacon", TASK)


def test_the_three_demo_agents_behave_differently_on_the_same_task():
    beacon, atlas, quill = (answer(name, TASK) for name in ("beacon", "atlas", "quill"))
    assert len({beacon.output, atlas.output, quill.output}) == 3

    def claims(text: str) -> list[str]:
        return [s for s in text.replace("\n", " ").split(". ") if s.strip()]

    # Beacon: every claim carries its source, fast, in scope.
    assert all("https://arxiv.org/abs/" in claim for claim in claims(beacon.output))
    assert len(beacon.citations) == len(claims(beacon.output))
    assert beacon.delay_s < 0.1
    assert set(beacon.actions) <= {"search", "read"}
    # Atlas: some claims uncited, and slow.
    assert 0 < len(atlas.citations) < len(claims(atlas.output))
    assert atlas.delay_s > 1
    # Quill: prose with a single reference.
    assert len(quill.citations) == 1
    assert quill.output.count("\n\n") == 2


def test_atlas_sometimes_acts_out_of_scope():
    tasks = [f"Survey the literature on topic number {n}." for n in range(20)]
    out_of_scope = [t for t in tasks if "browse_payments" in answer("atlas", t).actions]
    assert 0 < len(out_of_scope) < len(tasks)
    assert not any("browse_payments" in answer("beacon", t).actions for t in tasks)


@pytest.mark.django_db(transaction=True)
def test_the_platform_delivers_a_demo_agents_answer_over_http(live_server, allow_loopback):
    # Committed data: the live server's thread looks up the listing's secret.
    engagement = active_engagement(endpoint_url=f"{live_server.url}/demo-agents/beacon/")

    attempt = services.engagement_call_agent(engagement_id=engagement.pk)

    assert attempt.ok, attempt.error
    deliverable = Deliverable.objects.get(engagement=engagement)
    assert deliverable.source == Deliverable.Source.ENDPOINT
    assert deliverable.output == answer("beacon", TASK).output
    assert deliverable.citations == answer("beacon", TASK).citations


def test_demo_agent_urls_point_at_the_platforms_own_base_url(settings):
    settings.PACTUM_BASE_URL = "http://127.0.0.1:8123/"
    assert demo_agent_url("quill") == "http://127.0.0.1:8123/demo-agents/quill/"


@pytest.mark.parametrize(
    "raw",
    [
        b'{"output": {"x": NaN}}',
        b'{"output": "ok", "citations": ["a"], "x": Infinity}',
        b'{"output": ' + b"[" * 3000 + b"]" * 3000 + b"}",
    ],
)
def test_answers_no_database_can_store_are_refused_with_a_reason(raw):
    from marketplace.agent_client import _check_body

    body, reason = _check_body(raw)
    assert body is None
    assert reason


def test_signature_timestamps_must_be_ascii_digits():
    from marketplace.agent_client import verify_signature

    assert verify_signature("secret", "t=\u00b2,v1=00", b"{}") is False
