"""The Stripe gateway against a local HTTP double of Stripe's API.

The double is a real server on 127.0.0.1 that records every request (method,
path, form-encoded parameters, Idempotency-Key) and answers with Stripe-shaped
JSON. It keeps Stripe's idempotency promise: a request with a key it has
answered gets the first answer back (and a different request with that key is
an `idempotency_error`), so "the money moved once" is checked by counting the
objects it created. Scripted failures answer before the idempotency layer, like
a failure in front of Stripe's API. Nothing of ours is patched: settings point
the real `stripe` library at the double.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl

import pytest

from escrow import ledger
from escrow import services as escrow_services
from escrow.gateways import GatewayError, get_gateway
from escrow.gateways.base import RefundRequest, TransferRequest
from escrow.models import Escrow, LedgerEntry, OutboxItem, PayoutAccount, Settlement
from tests.escrow.conftest import agreed_engagement
from tests.factories import SellerFactory

pytestmark = pytest.mark.django_db

SECRET_KEY = "sk_test_pactum_0123456789abcdef"


# --- the double ------------------------------------------------------------------------------------


@dataclass
class Recorded:
    method: str
    path: str
    params: dict[str, str]
    idempotency_key: str | None
    authorization: str
    status: int = 0
    replayed: bool = False


@dataclass
class Failure:
    method: str
    path: str
    status: int
    error: dict[str, Any]


@dataclass
class FakeStripe:
    requests: list[Recorded] = field(default_factory=list)
    objects: dict[str, dict[str, Any]] = field(default_factory=dict)
    created: list[dict[str, Any]] = field(default_factory=list)  # new objects only, never replays
    failures: list[Failure] = field(default_factory=list)
    answered: dict[str, tuple[str, dict[str, str], int, dict[str, Any]]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.lock = threading.Lock()
        self.ids = itertools.count(1)
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                fake.handle(self, "GET")

            def do_POST(self) -> None:
                fake.handle(self, "POST")

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base_url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.01,), daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    # -- what tests use --

    def fail_next(self, method: str, path: str, status: int, *, type: str = "api_error", message: str = "boom") -> None:
        code = "resource_missing" if status == 404 else None
        self.failures.append(Failure(method, path, status, {"type": type, "message": message, "code": code}))

    def put(self, obj: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            self.objects[obj["id"]] = obj
        return obj

    def calls(self, method: str, path: str) -> list[Recorded]:
        return [r for r in self.requests if r.method == method and r.path == path]

    def created_at(self, path: str) -> list[dict[str, Any]]:
        kind = {
            "/v1/transfers": "transfer",
            "/v1/refunds": "refund",
            "/v1/accounts": "account",
            "/v1/checkout/sessions": "checkout.session",
            "/v1/account_links": "account_link",
        }[path]
        return [o for o in self.created if o["object"] == kind]

    # -- the server side --

    def handle(self, handler: BaseHTTPRequestHandler, method: str) -> None:
        raw = handler.rfile.read(int(handler.headers.get("Content-Length") or 0)).decode()
        path = handler.path.split("?")[0]
        record = Recorded(
            method=method,
            path=path,
            params=dict(parse_qsl(raw, keep_blank_values=True)),
            idempotency_key=handler.headers.get("Idempotency-Key"),
            authorization=handler.headers.get("Authorization", ""),
        )
        with self.lock:
            self.requests.append(record)
            status, body = self.answer(record)
            record.status = status
        data = json.dumps(body).encode()
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(data)))
        handler.send_header("Request-Id", f"req_{next(self.ids)}")
        if record.replayed:
            handler.send_header("Idempotent-Replayed", "true")
        handler.end_headers()
        handler.wfile.write(data)

    def answer(self, r: Recorded) -> tuple[int, dict[str, Any]]:
        for failure in self.failures:
            if (failure.method, failure.path) == (r.method, r.path):
                self.failures.remove(failure)
                return failure.status, {"error": failure.error}
        if r.method == "GET":
            obj = self.objects.get(r.path.rsplit("/", 1)[-1])
            if obj is None:
                return 404, {
                    "error": {"type": "invalid_request_error", "code": "resource_missing", "message": "No such object"}
                }
            return 200, obj
        key = r.idempotency_key
        if key and key in self.answered:
            path, params, status, body = self.answered[key]
            if (path, params) != (r.path, r.params):
                return 400, {
                    "error": {
                        "type": "idempotency_error",
                        "message": "Keys for idempotent requests can only be used with the same parameters.",
                    }
                }
            r.replayed = True
            return status, body
        status, body = self.create(r)
        if key:
            self.answered[key] = (r.path, r.params, status, body)
        return status, body

    def create(self, r: Recorded) -> tuple[int, dict[str, Any]]:
        p, n = r.params, next(self.ids)
        obj: dict[str, Any]
        metadata = {k[len("metadata[") : -1]: v for k, v in p.items() if k.startswith("metadata[")}
        if r.path == "/v1/checkout/sessions":
            obj = {
                "id": f"cs_test_{n}",
                "object": "checkout.session",
                "url": f"https://checkout.stripe.test/c/pay/cs_test_{n}",
                "mode": p.get("mode"),
                "status": "open",
                "payment_status": "unpaid",
                "payment_intent": None,
                "amount_total": int(p["line_items[0][price_data][unit_amount]"]),
                "currency": p["line_items[0][price_data][currency]"],
                "metadata": metadata,
            }
        elif r.path == "/v1/transfers":
            if p.get("destination") not in self.objects:
                return 400, {
                    "error": {
                        "type": "invalid_request_error",
                        "code": "resource_missing",
                        "param": "destination",
                        "message": f"No such destination: '{p.get('destination')}'",
                    }
                }
            obj = {
                "id": f"tr_test_{n}",
                "object": "transfer",
                "amount": int(p["amount"]),
                "amount_reversed": 0,
                "reversed": False,
                "currency": p["currency"],
                "destination": p["destination"],
                "source_transaction": p.get("source_transaction"),
                "transfer_group": p.get("transfer_group"),
                "metadata": metadata,
            }
        elif r.path == "/v1/refunds":
            obj = {
                "id": f"re_test_{n}",
                "object": "refund",
                "amount": int(p["amount"]),
                "charge": p["charge"],
                "currency": "usd",
                "status": "succeeded",
                "metadata": metadata,
            }
        elif r.path == "/v1/accounts":
            obj = {
                "id": f"acct_test_{n}",
                "object": "account",
                "type": p.get("type"),
                "email": p.get("email"),
                "payouts_enabled": False,
                "charges_enabled": False,
                "details_submitted": False,
                "capabilities": {"transfers": "inactive"},
                "metadata": metadata,
            }
        elif r.path == "/v1/account_links":
            obj = {
                "object": "account_link",
                "url": f"https://connect.stripe.test/setup/e/{p['account']}/{n}",
                "created": int(time.time()),
                "expires_at": int(time.time()) + 300,
            }
        else:
            return 404, {"error": {"type": "invalid_request_error", "message": f"Unrecognized request URL ({r.path})"}}
        self.created.append(obj)
        if isinstance(obj.get("id"), str):
            self.objects[obj["id"]] = obj
        return 200, obj


def running_fake_stripe(settings) -> Iterator[FakeStripe]:
    """Serve the double and point the settings at it (the body of each module's `fake_stripe` fixture)."""
    fake = FakeStripe()
    settings.PAYMENT_GATEWAY = "stripe"
    settings.STRIPE_SECRET_KEY = SECRET_KEY
    settings.STRIPE_API_BASE = fake.base_url
    settings.STRIPE_MAX_NETWORK_RETRIES = 0
    settings.STRIPE_CONNECT_RETURN_URL = ""
    yield fake
    fake.stop()


@pytest.fixture
def fake_stripe(settings) -> Iterator[FakeStripe]:
    yield from running_fake_stripe(settings)


# --- building escrows through the real services ------------------------------------------------------


def stripe_escrow(**kwargs: Any) -> tuple[Escrow, str | None]:
    """An agreed engagement whose buyer started paying: the escrow awaits the webhook."""
    engagement = agreed_engagement(**kwargs)
    return escrow_services.escrow_fund(engagement_id=engagement.pk, actor=engagement.buyer)


def onboarded_seller(escrow: Escrow) -> PayoutAccount:
    seller = escrow.engagement.listing.seller
    account, _ = escrow_services.payout_onboard(seller=seller)
    escrow_services.payout_account_update(provider_account=account.provider_account, payouts_enabled=True)
    account.refresh_from_db()
    return account


def funded(escrow: Escrow, charge: str = "ch_test_funding") -> Escrow:
    return escrow_services.escrow_confirm_funding(escrow_id=escrow.pk, charge_reference=charge)


def settled(escrow: Escrow, *, share_bps: int) -> Settlement:
    return escrow_services.escrow_settle_share(
        escrow_id=escrow.pk, seller_share_bps=share_bps, reason="admin", actor=None
    )


def ledger_sums_to_zero() -> bool:
    return sum(LedgerEntry.objects.values_list("amount_minor", flat=True)) == 0


# --- funding ---------------------------------------------------------------------------------------------


def test_funding_opens_a_checkout_session_with_the_transfer_group_and_the_escrow_in_its_metadata(fake_stripe):
    escrow, checkout_url = stripe_escrow(price_minor=5000)
    engagement_id = escrow.engagement_id

    assert escrow.status == Escrow.Status.AWAITING_FUNDS
    (call,) = fake_stripe.calls("POST", "/v1/checkout/sessions")
    assert call.params == {
        "mode": "payment",
        "line_items[0][quantity]": "1",
        "line_items[0][price_data][currency]": "usd",
        "line_items[0][price_data][unit_amount]": "5000",
        "line_items[0][price_data][product_data][name]": f"Pactum engagement #{engagement_id}",
        "payment_intent_data[transfer_group]": f"engagement-{engagement_id}",
        "payment_intent_data[metadata][pactum_escrow_id]": str(escrow.pk),
        "payment_intent_data[metadata][pactum_engagement_id]": str(engagement_id),
        "payment_intent_data[description]": f"Pactum engagement #{engagement_id}",
        "metadata[pactum_escrow_id]": str(escrow.pk),
        "metadata[pactum_engagement_id]": str(engagement_id),
        "client_reference_id": f"escrow-{escrow.pk}",
        "success_url": f"http://127.0.0.1:8000/engagements/{engagement_id}/?funded=1",
        "cancel_url": f"http://127.0.0.1:8000/engagements/{engagement_id}/",
    }
    assert call.idempotency_key == f"escrow-{escrow.pk}-checkout"
    assert call.authorization == f"Bearer {SECRET_KEY}"
    (session,) = fake_stripe.created_at("/v1/checkout/sessions")
    assert checkout_url == session["url"]
    escrow.refresh_from_db()
    assert (escrow.gateway, escrow.checkout_reference) == ("stripe", session["id"])
    assert not escrow.transactions.exists()  # the webhook funds it, not the redirect


def test_funding_again_returns_the_same_checkout_session(fake_stripe):
    escrow, first_url = stripe_escrow()
    again, second_url = escrow_services.escrow_fund(engagement_id=escrow.engagement_id, actor=escrow.engagement.buyer)

    assert again.pk == escrow.pk
    assert second_url == first_url
    calls = fake_stripe.calls("POST", "/v1/checkout/sessions")
    assert [c.idempotency_key for c in calls] == [f"escrow-{escrow.pk}-checkout"] * 2
    assert len(fake_stripe.created_at("/v1/checkout/sessions")) == 1


def test_a_declined_checkout_creation_is_a_final_gateway_error(fake_stripe):
    fake_stripe.fail_next("POST", "/v1/checkout/sessions", 400, type="invalid_request_error", message="Bad currency")
    with pytest.raises(GatewayError) as caught:
        stripe_escrow()
    assert not caught.value.retryable
    assert "Bad currency" in caught.value.reason


# --- payouts and refunds through the outbox -------------------------------------------------------------------


def test_a_release_transfers_the_sellers_net_from_the_funding_charge(fake_stripe):
    escrow, _ = stripe_escrow(price_minor=5000, fee_bps=1000)
    account = onboarded_seller(escrow)
    funded(escrow, "ch_test_42")
    settlement = settled(escrow, share_bps=10_000)
    item = OutboxItem.objects.get(settlement=settlement, kind="payout")

    done = escrow_services.outbox_perform(item_id=item.pk)

    (call,) = fake_stripe.calls("POST", "/v1/transfers")
    assert call.params == {
        "amount": "4500",
        "currency": "usd",
        "destination": account.provider_account,
        "source_transaction": "ch_test_42",
        "transfer_group": f"engagement-{escrow.engagement_id}",
        "metadata[pactum_idempotency_key]": item.idempotency_key,
    }
    assert call.idempotency_key == item.idempotency_key == f"pactum-settlement-{settlement.pk}-payout"
    (transfer,) = fake_stripe.created_at("/v1/transfers")
    assert (done.status, done.provider_reference) == ("done", transfer["id"])
    assert Settlement.objects.get(pk=settlement.pk).payout_status == "paid"
    payable = ledger.account(ledger.K.SELLER_PAYABLE, "usd", user_id=escrow.engagement.listing.seller_id)
    assert ledger.balance(payable) == 0
    assert ledger_sums_to_zero()


def test_a_refund_refunds_the_funding_charge(fake_stripe):
    escrow, _ = stripe_escrow(price_minor=5000)
    funded(escrow, "ch_test_7")
    settlement = settled(escrow, share_bps=0)
    item = OutboxItem.objects.get(settlement=settlement, kind="refund")

    done = escrow_services.outbox_perform(item_id=item.pk)

    (call,) = fake_stripe.calls("POST", "/v1/refunds")
    assert call.params == {
        "charge": "ch_test_7",
        "amount": "5000",
        "metadata[pactum_idempotency_key]": item.idempotency_key,
    }
    assert call.idempotency_key == f"pactum-settlement-{settlement.pk}-refund"
    assert done.status == "done"
    assert done.provider_reference == fake_stripe.created_at("/v1/refunds")[0]["id"]
    assert Settlement.objects.get(pk=settlement.pk).refund_status == "paid"
    assert ledger_sums_to_zero()


def test_a_split_sends_one_transfer_and_one_refund_each_under_its_own_key(fake_stripe):
    escrow, _ = stripe_escrow(price_minor=5001, fee_bps=1000)
    onboarded_seller(escrow)
    funded(escrow)
    settlement = settled(escrow, share_bps=5000)
    for item in OutboxItem.objects.filter(settlement=settlement):
        escrow_services.outbox_perform(item_id=item.pk)

    (transfer,) = fake_stripe.calls("POST", "/v1/transfers")
    (refund,) = fake_stripe.calls("POST", "/v1/refunds")
    assert (transfer.params["amount"], refund.params["amount"]) == ("2250", "2501")
    assert transfer.idempotency_key != refund.idempotency_key
    assert set(OutboxItem.objects.filter(settlement=settlement).values_list("status", flat=True)) == {"done"}
    assert ledger_sums_to_zero()


def test_a_500_then_a_retry_moves_the_money_once(fake_stripe):
    escrow, _ = stripe_escrow()
    onboarded_seller(escrow)
    funded(escrow)
    item = OutboxItem.objects.get(settlement=settled(escrow, share_bps=10_000))
    fake_stripe.fail_next("POST", "/v1/transfers", 500, message="Something went wrong on Stripe's end.")

    first = escrow_services.outbox_perform(item_id=item.pk)
    assert (first.status, first.attempts) == ("pending", 1)
    assert "Something went wrong" in first.last_error
    assert first.next_attempt_at is not None
    second = escrow_services.outbox_perform(item_id=item.pk)

    assert second.status == "done"
    calls = fake_stripe.calls("POST", "/v1/transfers")
    assert [c.status for c in calls] == [500, 200]
    assert {c.idempotency_key for c in calls} == {item.idempotency_key}
    assert len(fake_stripe.created_at("/v1/transfers")) == 1
    assert ledger_sums_to_zero()


def test_the_librarys_own_retry_after_a_500_reuses_the_key(fake_stripe, settings):
    settings.STRIPE_MAX_NETWORK_RETRIES = 1
    escrow, _ = stripe_escrow()
    onboarded_seller(escrow)
    funded(escrow)
    item = OutboxItem.objects.get(settlement=settled(escrow, share_bps=10_000))
    fake_stripe.fail_next("POST", "/v1/transfers", 500)

    assert escrow_services.outbox_perform(item_id=item.pk).status == "done"

    calls = fake_stripe.calls("POST", "/v1/transfers")
    assert [(c.status, c.idempotency_key) for c in calls] == [(500, item.idempotency_key), (200, item.idempotency_key)]
    assert len(fake_stripe.created_at("/v1/transfers")) == 1


def test_a_repeated_call_whose_answer_was_lost_gets_the_first_transfer_back(fake_stripe):
    fake_stripe.put({"id": "acct_test_seller", "object": "account"})
    request = TransferRequest(
        amount_minor=4500,
        currency="usd",
        destination_account="acct_test_seller",
        source_transaction="ch_test_1",
        transfer_group="engagement-1",
        idempotency_key="pactum-settlement-1-payout",
    )
    gateway = get_gateway("stripe")

    first, second = gateway.transfer(request), gateway.transfer(request)

    assert first.reference == second.reference
    assert len(fake_stripe.created_at("/v1/transfers")) == 1
    assert [c.replayed for c in fake_stripe.calls("POST", "/v1/transfers")] == [False, True]


def test_the_same_key_with_other_parameters_is_refused_and_final(fake_stripe):
    gateway = get_gateway("stripe")
    gateway.refund(RefundRequest(amount_minor=100, charge_reference="ch_1", idempotency_key="k-1"))
    with pytest.raises(GatewayError) as caught:
        gateway.refund(RefundRequest(amount_minor=200, charge_reference="ch_1", idempotency_key="k-1"))
    assert not caught.value.retryable
    assert len(fake_stripe.created_at("/v1/refunds")) == 1


@pytest.mark.parametrize(
    ("status", "error_type", "retryable"),
    [
        (500, "api_error", True),
        (503, "api_error", True),
        (429, "rate_limit_error", True),
        (409, "api_error", True),
        (400, "invalid_request_error", False),
        (402, "card_error", False),
        (404, "invalid_request_error", False),
    ],
)
def test_stripe_errors_map_to_retryable_or_final(fake_stripe, status, error_type, retryable):
    fake_stripe.fail_next("POST", "/v1/refunds", status, type=error_type, message=f"said {status}")
    with pytest.raises(GatewayError) as caught:
        get_gateway("stripe").refund(RefundRequest(amount_minor=100, charge_reference="ch_1", idempotency_key="k"))
    assert caught.value.retryable is retryable
    assert f"said {status}" in caught.value.reason


def test_an_unreachable_stripe_is_retryable(fake_stripe, settings):
    from tests.conftest import free_port

    settings.STRIPE_API_BASE = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(GatewayError) as caught:
        get_gateway("stripe").refund(RefundRequest(amount_minor=100, charge_reference="ch_1", idempotency_key="k"))
    assert caught.value.retryable


def test_a_final_error_fails_the_payout_without_retrying(fake_stripe):
    escrow, _ = stripe_escrow()
    account = onboarded_seller(escrow)
    funded(escrow)
    item = OutboxItem.objects.get(settlement=settled(escrow, share_bps=10_000))
    del fake_stripe.objects[account.provider_account]  # the connected account is gone

    failed = escrow_services.outbox_perform(item_id=item.pk)

    assert failed.status == "failed"
    assert "No such destination" in failed.last_error
    assert Settlement.objects.get(pk=item.settlement_id).payout_status == "failed"
    assert escrow_services.outbox_perform(item_id=item.pk).status == "failed"
    assert len(fake_stripe.calls("POST", "/v1/transfers")) == 1


def test_a_payout_waits_until_the_seller_is_onboarded(fake_stripe):
    escrow, _ = stripe_escrow()
    funded(escrow)
    item = OutboxItem.objects.get(settlement=settled(escrow, share_bps=10_000))

    waiting = escrow_services.outbox_perform(item_id=item.pk)

    assert waiting.status == "pending"
    assert not fake_stripe.calls("POST", "/v1/transfers")


def test_the_secret_key_is_never_logged(fake_stripe, caplog):
    caplog.set_level("DEBUG")
    fake_stripe.fail_next("POST", "/v1/refunds", 400, type="invalid_request_error", message="No such charge")
    with pytest.raises(GatewayError) as caught:
        get_gateway("stripe").refund(RefundRequest(amount_minor=1, charge_reference="ch_x", idempotency_key="k"))
    assert "No such charge" in caplog.text
    assert SECRET_KEY not in caplog.text
    assert SECRET_KEY not in caught.value.reason


def test_without_a_secret_key_the_gateway_refuses_retryably(fake_stripe, settings):
    settings.STRIPE_SECRET_KEY = ""
    with pytest.raises(GatewayError) as caught:
        get_gateway("stripe")
    assert caught.value.retryable
    assert "STRIPE_SECRET_KEY" in caught.value.reason


# --- onboarding ----------------------------------------------------------------------------------------


def test_onboarding_creates_one_express_account_then_an_account_link(fake_stripe):
    seller = SellerFactory.create(email="seller@example.com")

    account, url = escrow_services.payout_onboard(seller=seller)

    (create,) = fake_stripe.calls("POST", "/v1/accounts")
    assert create.params == {
        "type": "express",
        "email": "seller@example.com",
        "capabilities[transfers][requested]": "true",
        "metadata[pactum_seller_id]": str(seller.pk),
    }
    assert create.idempotency_key == f"pactum-seller-{seller.pk}-express-account"
    (link_call,) = fake_stripe.calls("POST", "/v1/account_links")
    (created_account,) = fake_stripe.created_at("/v1/accounts")
    assert link_call.params == {
        "account": created_account["id"],
        "type": "account_onboarding",
        "refresh_url": "http://127.0.0.1:8000/seller/payouts/",
        "return_url": "http://127.0.0.1:8000/seller/payouts/",
    }
    assert url == fake_stripe.created_at("/v1/account_links")[0]["url"]
    assert (account.gateway, account.provider_account, account.payouts_enabled) == (
        "stripe",
        created_account["id"],
        False,
    )


def test_onboarding_again_reuses_the_account_and_keeps_an_enabled_one_enabled(fake_stripe, settings):
    settings.STRIPE_CONNECT_RETURN_URL = "https://pactum.example/seller/payouts/"
    seller = SellerFactory.create()
    account, _ = escrow_services.payout_onboard(seller=seller)
    fake_stripe.objects[account.provider_account]["capabilities"] = {"transfers": "active"}
    escrow_services.payout_account_update(provider_account=account.provider_account, payouts_enabled=True)

    again, url = escrow_services.payout_onboard(seller=seller)

    assert len(fake_stripe.calls("POST", "/v1/accounts")) == 1
    assert fake_stripe.calls("GET", f"/v1/accounts/{account.provider_account}")
    assert (again.provider_account, again.payouts_enabled) == (account.provider_account, True)
    last_link = fake_stripe.calls("POST", "/v1/account_links")[-1]
    assert last_link.params["return_url"] == "https://pactum.example/seller/payouts/"
    assert url == fake_stripe.created_at("/v1/account_links")[-1]["url"]


def test_onboarding_after_switching_from_the_simulator_creates_a_real_account(fake_stripe):
    seller = SellerFactory.create()
    PayoutAccount.objects.create(seller=seller, gateway="local", provider_account=f"acct_sim_{seller.pk}")

    account, _ = escrow_services.payout_onboard(seller=seller)

    assert len(fake_stripe.created_at("/v1/accounts")) == 1
    assert (account.gateway, account.provider_account) == ("stripe", fake_stripe.created_at("/v1/accounts")[0]["id"])


def test_an_unreachable_provider_is_a_503_with_a_detail_not_a_500(settings, client):
    from rest_framework.authtoken.models import Token

    from escrow.models import Escrow
    from tests.escrow.conftest import agreed_engagement

    settings.PAYMENT_GATEWAY = "stripe"
    settings.STRIPE_SECRET_KEY = "sk_test_unreachable"
    settings.STRIPE_API_BASE = "http://127.0.0.1:9"  # nothing listens on the discard port
    settings.STRIPE_MAX_NETWORK_RETRIES = 0
    engagement = agreed_engagement()
    token = Token.objects.create(user=engagement.buyer)
    response = client.post(f"/api/v1/engagements/{engagement.pk}/fund/", HTTP_AUTHORIZATION=f"Token {token.key}")
    assert response.status_code == 503
    assert response.json()["code"] == "payment_provider_unavailable"
    assert response.json()["detail"]
    assert Escrow.objects.get(engagement=engagement).status == "awaiting_funds"
