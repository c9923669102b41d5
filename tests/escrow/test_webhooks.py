"""`POST /webhooks/stripe/`: signed exactly as Stripe signs (built here by hand),
stored once, applied after commit by the real task (Celery in eager mode, run by
`django_capture_on_commit_callbacks(execute=True)`), re-reading from the local
Stripe double where order matters."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from config.celery import app as celery_app
from escrow import ledger
from escrow import services as escrow_services
from escrow.disputes import escrow_rule_held
from escrow.models import (
    Escrow,
    EscrowStatusChange,
    EscrowTimer,
    LedgerEntry,
    LedgerTransaction,
    OutboxItem,
    PayoutAccount,
    Settlement,
    WebhookEvent,
)
from escrow.webhooks import webhook_secrets
from tests.escrow.test_stripe import (
    FakeStripe,
    funded,
    ledger_sums_to_zero,
    onboarded_seller,
    running_fake_stripe,
    settled,
    stripe_escrow,
)
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

URL = "/webhooks/stripe/"
WHSEC = "whsec_test_current_0123456789"
OLD_WHSEC = "whsec_test_previous_9876543210"
K = ledger.K


@pytest.fixture(autouse=True)
def _webhook_settings(settings) -> None:
    settings.STRIPE_WEBHOOK_SECRET = [WHSEC]


@pytest.fixture
def fake_stripe(settings) -> Iterator[FakeStripe]:
    yield from running_fake_stripe(settings)


@pytest.fixture
def eager_tasks() -> Iterator[None]:
    """Tasks enqueued on commit run in this process, in this test's transaction."""
    saved = celery_app.conf.task_always_eager, celery_app.conf.task_eager_propagates
    celery_app.conf.task_always_eager = celery_app.conf.task_eager_propagates = True
    yield
    celery_app.conf.task_always_eager, celery_app.conf.task_eager_propagates = saved


# --- signing and delivering like Stripe ---------------------------------------------------------------------


def signature(body: bytes, *, secret: str = WHSEC, t: int | None = None) -> str:
    t = int(time.time()) if t is None else t
    digest = hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={t},v1={digest}"


def event(event_type: str, obj: dict[str, Any], *, event_id: str | None = None) -> dict[str, Any]:
    return {
        "id": event_id or f"evt_{uuid.uuid4().hex[:24]}",
        "object": "event",
        "api_version": "2026-10-28.endive",
        "created": int(time.time()),
        "livemode": False,
        "pending_webhooks": 1,
        "type": event_type,
        "data": {"object": obj},
    }


def post(client, body: bytes, header: str | None):
    extra = {"HTTP_STRIPE_SIGNATURE": header} if header is not None else {}
    return client.post(URL, data=body, content_type="application/json", **extra)


def deliver(client, capture, evt: dict[str, Any], **sign: Any):
    """Deliver one signed event and run what the view left for after commit (the processing task)."""
    body = json.dumps(evt).encode()
    with capture(execute=True):
        response = post(client, body, signature(body, **sign))
    return response


def intent(escrow: Escrow, **changes: Any) -> dict[str, Any]:
    return {
        "id": f"pi_test_{escrow.pk}",
        "object": "payment_intent",
        "amount": escrow.amount_minor,
        "amount_received": escrow.amount_minor,
        "currency": escrow.currency,
        "status": "succeeded",
        "latest_charge": f"ch_test_{escrow.pk}",
        "transfer_group": f"engagement-{escrow.engagement_id}",
        "metadata": {"pactum_escrow_id": str(escrow.pk), "pactum_engagement_id": str(escrow.engagement_id)},
        **changes,
    }


def session(escrow: Escrow) -> dict[str, Any]:
    return {
        "id": escrow.checkout_reference,
        "object": "checkout.session",
        "mode": "payment",
        "status": "complete",
        "payment_status": "paid",
        "payment_intent": f"pi_test_{escrow.pk}",
        "metadata": {"pactum_escrow_id": str(escrow.pk), "pactum_engagement_id": str(escrow.engagement_id)},
    }


def dispute(escrow: Escrow, status: str, **changes: Any) -> dict[str, Any]:
    return {
        "id": f"dp_test_{escrow.pk}",
        "object": "dispute",
        "amount": escrow.amount_minor,
        "currency": escrow.currency,
        "charge": escrow.charge_reference or f"ch_test_{escrow.pk}",
        "payment_intent": f"pi_test_{escrow.pk}",
        "reason": "fraudulent",
        "status": status,
        **changes,
    }


def funding_transactions(escrow: Escrow) -> int:
    return LedgerTransaction.objects.filter(escrow=escrow, kind="funding").count()


def balance(kind: str, **owner: Any) -> int:
    return ledger.balance(ledger.account(kind, "usd", **owner))


@pytest.fixture
def awaiting(fake_stripe: FakeStripe) -> Escrow:
    """A Stripe escrow whose buyer has a checkout session open; Stripe knows the succeeded intent."""
    escrow, _ = stripe_escrow(price_minor=5000, fee_bps=1000)
    escrow.refresh_from_db()
    fake_stripe.put(intent(escrow))
    return escrow


# --- funding -----------------------------------------------------------------------------------------------


def test_a_signed_checkout_completion_funds_the_escrow_with_the_charge_read_from_stripe(
    client, django_capture_on_commit_callbacks, eager_tasks, awaiting, fake_stripe
):
    response = deliver(
        client, django_capture_on_commit_callbacks, event("checkout.session.completed", session(awaiting))
    )

    assert response.status_code == 200
    assert response.json() == {"received": True, "duplicate": False}
    awaiting.refresh_from_db()
    assert (awaiting.status, awaiting.charge_reference) == ("funded", f"ch_test_{awaiting.pk}")
    assert fake_stripe.calls("GET", f"/v1/payment_intents/pi_test_{awaiting.pk}")
    assert funding_transactions(awaiting) == 1
    stored = WebhookEvent.objects.get()
    assert stored.processed_at is not None
    assert (stored.type, stored.error) == ("checkout.session.completed", "")
    assert "funded" in stored.result
    assert ledger_sums_to_zero()


def test_the_event_is_stored_at_once_and_processed_only_after_commit(
    client, django_capture_on_commit_callbacks, awaiting
):
    body = json.dumps(event("payment_intent.succeeded", intent(awaiting))).encode()
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = post(client, body, signature(body))

    assert response.status_code == 200
    assert len(callbacks) == 1
    stored = WebhookEvent.objects.get()
    assert stored.processed_at is None
    awaiting.refresh_from_db()
    assert awaiting.status == "awaiting_funds"
    # What the task does, by hand (and a second time, as a redelivered task would).
    escrow_services.webhook_event_process(event_id=stored.event_id)
    escrow_services.webhook_event_process(event_id=stored.event_id)
    awaiting.refresh_from_db()
    assert awaiting.status == "funded"
    assert funding_transactions(awaiting) == 1


def test_a_duplicate_delivered_ten_times_takes_effect_once(
    client, django_capture_on_commit_callbacks, eager_tasks, awaiting
):
    evt = event("payment_intent.succeeded", intent(awaiting))

    answers = [deliver(client, django_capture_on_commit_callbacks, evt).json() for _ in range(10)]

    assert answers == [{"received": True, "duplicate": False}] + [{"received": True, "duplicate": True}] * 9
    assert WebhookEvent.objects.count() == 1
    assert funding_transactions(awaiting) == 1
    assert EscrowStatusChange.objects.filter(escrow=awaiting, to_status="funded").count() == 1
    assert ledger_sums_to_zero()


@pytest.mark.parametrize(
    "order",
    [
        ("checkout.session.completed", "payment_intent.succeeded"),
        ("payment_intent.succeeded", "checkout.session.completed"),
    ],
)
def test_two_events_telling_the_same_payment_book_it_once_in_either_order(
    client, django_capture_on_commit_callbacks, eager_tasks, awaiting, order
):
    objects = {"checkout.session.completed": session(awaiting), "payment_intent.succeeded": intent(awaiting)}
    for event_type in order:
        assert (
            deliver(client, django_capture_on_commit_callbacks, event(event_type, objects[event_type])).status_code
            == 200
        )

    awaiting.refresh_from_db()
    assert awaiting.status == "funded"
    assert funding_transactions(awaiting) == 1
    assert all(e.processed_at and not e.error for e in WebhookEvent.objects.all())
    assert "already funded" in WebhookEvent.objects.get(type=order[1]).result


def test_a_payment_intent_event_without_its_charge_is_re_read(
    client, django_capture_on_commit_callbacks, eager_tasks, awaiting, fake_stripe
):
    deliver(
        client,
        django_capture_on_commit_callbacks,
        event("payment_intent.succeeded", intent(awaiting, latest_charge=None)),
    )

    awaiting.refresh_from_db()
    assert (awaiting.status, awaiting.charge_reference) == ("funded", f"ch_test_{awaiting.pk}")
    assert len(fake_stripe.calls("GET", f"/v1/payment_intents/pi_test_{awaiting.pk}")) == 1


def test_a_payment_for_another_amount_does_not_fund_and_is_flagged(
    client, django_capture_on_commit_callbacks, eager_tasks, awaiting
):
    deliver(
        client,
        django_capture_on_commit_callbacks,
        event("payment_intent.succeeded", intent(awaiting, amount=10, amount_received=10)),
    )

    awaiting.refresh_from_db()
    assert awaiting.status == "awaiting_funds"
    stored = WebhookEvent.objects.get()
    assert stored.processed_at is not None
    assert "took 10 usd" in stored.error


def test_a_second_payment_for_a_funded_escrow_is_flagged_not_swallowed(
    client, django_capture_on_commit_callbacks, eager_tasks, awaiting
):
    funded(awaiting, "ch_first")
    deliver(
        client,
        django_capture_on_commit_callbacks,
        event("payment_intent.succeeded", intent(awaiting, latest_charge="ch_second")),
    )

    stored = WebhookEvent.objects.get()
    assert "second payment" in stored.error
    assert funding_transactions(awaiting) == 1


def test_a_failed_payment_is_recorded_and_leaves_the_escrow_waiting(
    client, django_capture_on_commit_callbacks, eager_tasks, awaiting
):
    failed = intent(
        awaiting,
        status="requires_payment_method",
        latest_charge="ch_declined",
        last_payment_error={"code": "card_declined", "message": "Your card was declined."},
    )
    deliver(client, django_capture_on_commit_callbacks, event("payment_intent.payment_failed", failed))

    awaiting.refresh_from_db()
    assert awaiting.status == "awaiting_funds"
    assert EscrowStatusChange.objects.filter(escrow=awaiting, reason="payment failed: Your card was declined.").exists()


def test_a_failure_arriving_after_the_success_changes_nothing(
    client, django_capture_on_commit_callbacks, eager_tasks, awaiting
):
    deliver(client, django_capture_on_commit_callbacks, event("payment_intent.succeeded", intent(awaiting)))
    deliver(
        client,
        django_capture_on_commit_callbacks,
        event("payment_intent.payment_failed", intent(awaiting, status="requires_payment_method")),
    )

    awaiting.refresh_from_db()
    assert awaiting.status == "funded"
    assert not EscrowStatusChange.objects.filter(escrow=awaiting, reason__startswith="payment failed").exists()


def test_stripe_unreachable_while_re_reading_defers_the_event(
    awaiting, fake_stripe, django_capture_on_commit_callbacks
):
    stored, _ = escrow_services.webhook_event_record(
        event_id="evt_deferred",
        event_type="checkout.session.completed",
        payload=event("checkout.session.completed", session(awaiting)),
    )
    fake_stripe.fail_next("GET", f"/v1/payment_intents/pi_test_{awaiting.pk}", 503)

    with pytest.raises(escrow_services.WebhookRetryLater):
        escrow_services.webhook_event_process(event_id="evt_deferred")
    stored.refresh_from_db()
    assert (stored.processed_at, stored.attempts) == (None, 1)
    assert "stripe payment intent lookup failed" in stored.error

    assert escrow_services.webhook_event_process(event_id="evt_deferred").processed_at is not None
    awaiting.refresh_from_db()
    assert awaiting.status == "funded"


def test_the_sweeper_re_enqueues_events_left_unprocessed(awaiting, django_capture_on_commit_callbacks):
    from datetime import timedelta

    escrow_services.webhook_event_record(
        event_id="evt_lost",
        event_type="payment_intent.succeeded",
        payload=event("payment_intent.succeeded", intent(awaiting)),
    )
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        assert escrow_services.webhook_event_sweep(stale_after=timedelta(0)) == 1
    assert len(callbacks) == 1


# --- the signature ---------------------------------------------------------------------------------------


@pytest.fixture
def signed_body(awaiting) -> bytes:
    return json.dumps(event("payment_intent.succeeded", intent(awaiting))).encode()


def assert_refused(response, code: str, awaiting: Escrow) -> None:
    assert response.status_code == 400
    assert response.json()["code"] == code
    assert response.json()["detail"]
    assert not WebhookEvent.objects.exists()
    awaiting.refresh_from_db()
    assert awaiting.status == "awaiting_funds"


def test_a_forged_signature_is_refused_and_stores_nothing(client, signed_body, awaiting):
    assert_refused(
        post(client, signed_body, signature(signed_body, secret="whsec_forged")), "invalid_signature", awaiting
    )


def test_a_body_changed_after_signing_is_refused(client, signed_body, awaiting):
    header = signature(signed_body)
    tampered = signed_body.replace(b'"amount": 5000', b'"amount": 5001')
    assert tampered != signed_body
    assert_refused(post(client, tampered, header), "invalid_signature", awaiting)


@pytest.mark.parametrize(("offset", "code"), [(-301, "stale_timestamp"), (301, "future_timestamp")])
def test_timestamps_beyond_five_minutes_either_way_are_refused(client, signed_body, awaiting, offset, code):
    header = signature(signed_body, t=int(time.time()) + offset)
    assert_refused(post(client, signed_body, header), code, awaiting)


@pytest.mark.parametrize("offset", [-290, 290])
def test_timestamps_within_five_minutes_either_way_are_accepted(client, signed_body, offset):
    assert post(client, signed_body, signature(signed_body, t=int(time.time()) + offset)).status_code == 200


@pytest.mark.parametrize(
    ("header", "code"),
    [
        (None, "missing_signature"),
        ("", "missing_signature"),
        ("garbage", "malformed_signature"),
        ("t=notanumber,v1=abc", "malformed_signature"),
        ("v1=abc", "malformed_signature"),
        ("t=1,t=2,v1=abc", "malformed_signature"),
        (f"t={int(time.time())}", "malformed_signature"),
        (f"t={int(time.time())},v0=abc", "malformed_signature"),
    ],
)
def test_a_missing_or_malformed_header_is_refused(client, signed_body, awaiting, header, code):
    assert_refused(post(client, signed_body, header), code, awaiting)


def test_during_a_rotation_either_secret_verifies(client, settings, awaiting):
    settings.STRIPE_WEBHOOK_SECRET = [OLD_WHSEC, WHSEC]
    for secret in (WHSEC, OLD_WHSEC):
        body = json.dumps(event("payment_intent.succeeded", intent(awaiting))).encode()
        assert post(client, body, signature(body, secret=secret)).status_code == 200
    settings.STRIPE_WEBHOOK_SECRET = [OLD_WHSEC]
    body = json.dumps(event("payment_intent.succeeded", intent(awaiting))).encode()
    assert post(client, body, signature(body, secret=WHSEC)).json()["code"] == "invalid_signature"


def test_a_header_with_several_v1_signatures_verifies_if_any_matches(client, signed_body):
    good = signature(signed_body)
    t, v1 = good.split(",")
    header = f"{t},v1={'0' * 64},{v1},v0=ignored"
    assert post(client, signed_body, header).status_code == 200


def test_secrets_configured_as_a_comma_separated_string_are_split(settings):
    settings.STRIPE_WEBHOOK_SECRET = f" {OLD_WHSEC} , {WHSEC},"
    assert webhook_secrets() == [OLD_WHSEC, WHSEC]


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (b'{"id": "evt_1", "type": "payment_intent.succeeded", "data": {"object": ', "invalid_json"),
        (b"\xff\xfe not json", "invalid_json"),
        (b'{"id": "evt_1", "type": "x", "data": {"object": {"amount": NaN}}}', "invalid_json"),
        (b'{"id": "evt_1", "type": "x", "data": {"object": {"note": "\\u0000"}}}', "invalid_json"),
        (b'{"id": "evt_1", "type": "x", "data": {"object": {"note": "\\ud800"}}}', "invalid_json"),
        (b"[1, 2]", "invalid_json"),
        (b'{"id": "evt_1", "type": "payment_intent.succeeded"}', "invalid_event"),
        (b'{"id": 7, "type": "x", "data": {"object": {}}}', "invalid_event"),
        (b'{"id": "evt_1", "type": "x", "data": {"object": []}}', "invalid_event"),
    ],
)
def test_a_signed_but_broken_body_is_refused_and_changes_nothing(client, awaiting, body, code):
    assert_refused(post(client, body, signature(body)), code, awaiting)


def test_only_post_is_allowed(client):
    response = client.get(URL)
    assert response.status_code == 405
    assert response.json()["code"] == "method_not_allowed"


def test_without_a_configured_secret_nothing_is_accepted(client, settings, signed_body):
    settings.STRIPE_WEBHOOK_SECRET = []
    response = post(client, signed_body, signature(signed_body))
    assert (response.status_code, response.json()["code"]) == (503, "not_configured")
    assert not WebhookEvent.objects.exists()


def test_an_unhandled_event_type_is_stored_and_marked_ignored(client, django_capture_on_commit_callbacks, eager_tasks):
    deliver(
        client, django_capture_on_commit_callbacks, event("customer.created", {"id": "cus_1", "object": "customer"})
    )
    stored = WebhookEvent.objects.get()
    assert stored.processed_at is not None
    assert stored.result.startswith("ignored")


# --- chargebacks -----------------------------------------------------------------------------------------


@pytest.fixture
def funded_escrow(awaiting) -> Escrow:
    return funded(awaiting, f"ch_test_{awaiting.pk}")


def test_a_chargeback_on_an_unsettled_escrow_holds_it_and_a_win_releases_it(
    client, django_capture_on_commit_callbacks, eager_tasks, funded_escrow, fake_stripe
):
    before = LedgerTransaction.objects.count()
    fake_stripe.put(dispute(funded_escrow, "needs_response"))
    deliver(
        client,
        django_capture_on_commit_callbacks,
        event("charge.dispute.created", dispute(funded_escrow, "needs_response")),
    )

    funded_escrow.refresh_from_db()
    assert (funded_escrow.status, funded_escrow.hold_reason) == ("held", "card chargeback")
    assert LedgerTransaction.objects.count() == before  # a hold moves no money in the ledger

    fake_stripe.put(dispute(funded_escrow, "won"))
    deliver(client, django_capture_on_commit_callbacks, event("charge.dispute.closed", dispute(funded_escrow, "won")))

    funded_escrow.refresh_from_db()
    assert (funded_escrow.status, funded_escrow.hold_reason) == ("funded", "")
    assert LedgerTransaction.objects.count() == before
    assert ledger_sums_to_zero()


def test_timers_that_came_due_during_the_hold_apply_once_it_is_released(
    client, django_capture_on_commit_callbacks, eager_tasks, funded_escrow, fake_stripe
):
    from datetime import timedelta

    from django.utils import timezone

    fake_stripe.put(dispute(funded_escrow, "needs_response"))
    deliver(
        client,
        django_capture_on_commit_callbacks,
        event("charge.dispute.created", dispute(funded_escrow, "needs_response")),
    )
    timer = EscrowTimer.objects.get(escrow=funded_escrow, action="expire")
    later = timezone.now() + timedelta(days=30)
    assert escrow_services.escrow_timer_fire(timer_id=timer.pk, now=later) == "nothing to do"  # frozen

    fake_stripe.put(dispute(funded_escrow, "won"))
    deliver(client, django_capture_on_commit_callbacks, event("charge.dispute.closed", dispute(funded_escrow, "won")))

    timer.refresh_from_db()
    assert timer.status == "pending"
    assert escrow_services.escrow_timer_fire(timer_id=timer.pk, now=later) == "expired: refunded"


def test_a_chargeback_lost_before_settling_gives_the_held_money_back_once(
    client, django_capture_on_commit_callbacks, eager_tasks, funded_escrow, fake_stripe
):
    fake_stripe.put(dispute(funded_escrow, "needs_response"))
    deliver(
        client,
        django_capture_on_commit_callbacks,
        event("charge.dispute.created", dispute(funded_escrow, "needs_response")),
    )
    fake_stripe.put(dispute(funded_escrow, "lost"))
    for _ in range(2):  # the closing event, then a later update telling the same
        deliver(
            client, django_capture_on_commit_callbacks, event("charge.dispute.closed", dispute(funded_escrow, "lost"))
        )

    funded_escrow.refresh_from_db()
    assert funded_escrow.status == "settled"
    assert not Settlement.objects.filter(escrow=funded_escrow).exists()  # no refund may go out on top
    (returned,) = LedgerTransaction.objects.filter(escrow=funded_escrow, kind="chargeback")
    assert returned.idempotency_key == f"dispute:dp_test_{funded_escrow.pk}:returned"
    assert ledger.escrow_holding_balance(funded_escrow) == 0
    assert balance(K.GATEWAY_CLEARING) == 0  # 5000 came in, 5000 went back through the network
    assert ledger_sums_to_zero()


def test_a_chargeback_lost_for_part_of_the_payment_stays_held_for_an_admin(
    client, django_capture_on_commit_callbacks, eager_tasks, funded_escrow, fake_stripe
):
    fake_stripe.put(dispute(funded_escrow, "lost", amount=2000))
    deliver(client, django_capture_on_commit_callbacks, event("charge.dispute.closed", dispute(funded_escrow, "lost")))

    funded_escrow.refresh_from_db()
    assert funded_escrow.status == "held"
    assert funded_escrow.chargeback_open is False
    assert "an admin settles the 3000 left" in funded_escrow.hold_reason
    assert WebhookEvent.objects.get().result.startswith("needs an admin")
    # The part the card network returned is booked; only the rest is left to settle.
    returned = LedgerTransaction.objects.get(kind="chargeback")
    assert sorted(e.amount_minor for e in returned.entries.all()) == [-2000, 2000]
    assert ledger.escrow_holding_balance(funded_escrow) == 3000
    staff = UserFactory.create(is_staff=True)
    settlement = escrow_rule_held(
        escrow_id=funded_escrow.pk, actor=staff, outcome="refund", seller_share_bps=None, rationale="Card lost in part."
    )
    assert (settlement.buyer_refund_minor, settlement.seller_gross_minor) == (3000, 0)
    assert ledger.escrow_holding_balance(funded_escrow) == 0


def paid_out(escrow: Escrow, share_bps: int) -> Settlement:
    settlement = settled(escrow, share_bps=share_bps)
    for item in OutboxItem.objects.filter(settlement=settlement):
        assert escrow_services.outbox_perform(item_id=item.pk).status == "done"
    return settlement


def test_a_chargeback_after_release_books_the_loss_and_a_receivable_from_the_seller_and_a_win_reverses_it(
    client, django_capture_on_commit_callbacks, eager_tasks, funded_escrow, fake_stripe
):
    onboarded_seller(funded_escrow)
    paid_out(funded_escrow, 10_000)  # seller net 4500, platform fee 500
    seller_id = funded_escrow.engagement.listing.seller_id

    fake_stripe.put(dispute(funded_escrow, "needs_response"))
    deliver(
        client,
        django_capture_on_commit_callbacks,
        event("charge.dispute.created", dispute(funded_escrow, "needs_response")),
    )

    loss = LedgerTransaction.objects.get(idempotency_key=f"dispute:dp_test_{funded_escrow.pk}:loss")
    legs = {(e.account.kind, e.amount_minor) for e in loss.entries.select_related("account")}
    assert legs == {(K.GATEWAY_CLEARING, 5000), (K.SELLER_PAYABLE, -4500), (K.CHARGEBACK_LOSSES, -500)}
    assert balance(K.SELLER_PAYABLE, user_id=seller_id) == -4500  # the seller owes it back
    assert balance(K.CHARGEBACK_LOSSES) == -500  # the platform's fee is lost
    assert balance(K.PLATFORM_FEES) == 500
    assert balance(K.GATEWAY_CLEARING) == 4500  # in 5000; out 4500 to the seller and 5000 to the network
    funded_escrow.refresh_from_db()
    assert funded_escrow.status == "settled"
    assert ledger_sums_to_zero()

    fake_stripe.put(dispute(funded_escrow, "won"))
    deliver(client, django_capture_on_commit_callbacks, event("charge.dispute.closed", dispute(funded_escrow, "won")))
    deliver(
        client,
        django_capture_on_commit_callbacks,
        event("charge.dispute.funds_reinstated", dispute(funded_escrow, "won")),
    )

    assert LedgerTransaction.objects.filter(idempotency_key__startswith="dispute:").count() == 2
    assert balance(K.SELLER_PAYABLE, user_id=seller_id) == 0
    assert balance(K.CHARGEBACK_LOSSES) == 0
    assert balance(K.GATEWAY_CLEARING) == -500
    assert ledger_sums_to_zero()


def test_a_chargeback_after_a_refund_is_all_platform_loss(
    client, django_capture_on_commit_callbacks, eager_tasks, funded_escrow, fake_stripe
):
    paid_out(funded_escrow, 0)  # the buyer was refunded 5000 already
    fake_stripe.put(dispute(funded_escrow, "lost"))
    deliver(client, django_capture_on_commit_callbacks, event("charge.dispute.closed", dispute(funded_escrow, "lost")))

    assert balance(K.CHARGEBACK_LOSSES) == -5000
    assert ledger_sums_to_zero()


@pytest.mark.parametrize("settle_first", [False, True])
def test_a_dispute_closed_before_it_was_created_converges(
    client, django_capture_on_commit_callbacks, eager_tasks, funded_escrow, fake_stripe, settle_first
):
    if settle_first:
        onboarded_seller(funded_escrow)
        paid_out(funded_escrow, 10_000)
    fake_stripe.put(dispute(funded_escrow, "lost"))

    deliver(client, django_capture_on_commit_callbacks, event("charge.dispute.closed", dispute(funded_escrow, "lost")))
    after_closed = sorted(LedgerEntry.objects.values_list("transaction__idempotency_key", "amount_minor"))
    deliver(
        client,
        django_capture_on_commit_callbacks,
        event("charge.dispute.created", dispute(funded_escrow, "needs_response")),
    )

    assert sorted(LedgerEntry.objects.values_list("transaction__idempotency_key", "amount_minor")) == after_closed
    assert LedgerTransaction.objects.filter(kind="chargeback").count() == 1
    funded_escrow.refresh_from_db()
    assert funded_escrow.status == "settled"
    assert ledger_sums_to_zero()


def test_a_dispute_won_before_it_was_created_leaves_nothing_behind(
    client, django_capture_on_commit_callbacks, eager_tasks, funded_escrow, fake_stripe
):
    fake_stripe.put(dispute(funded_escrow, "won"))
    deliver(client, django_capture_on_commit_callbacks, event("charge.dispute.closed", dispute(funded_escrow, "won")))
    deliver(
        client,
        django_capture_on_commit_callbacks,
        event("charge.dispute.created", dispute(funded_escrow, "needs_response")),
    )

    funded_escrow.refresh_from_db()
    assert (funded_escrow.status, funded_escrow.hold_reason) == ("funded", "")
    assert not LedgerTransaction.objects.filter(kind__startswith="chargeback").exists()


def test_a_chargeback_on_an_escrow_held_for_an_admin_keeps_the_admins_hold(
    client, django_capture_on_commit_callbacks, eager_tasks, funded_escrow, fake_stripe
):
    escrow_services.escrow_decide(engagement_id=funded_escrow.engagement_id, outcome="inconclusive")
    fake_stripe.put(dispute(funded_escrow, "needs_response"))
    deliver(
        client,
        django_capture_on_commit_callbacks,
        event("charge.dispute.created", dispute(funded_escrow, "needs_response")),
    )
    fake_stripe.put(dispute(funded_escrow, "won"))
    deliver(client, django_capture_on_commit_callbacks, event("charge.dispute.closed", dispute(funded_escrow, "won")))

    funded_escrow.refresh_from_db()
    assert funded_escrow.status == "held"
    assert "inconclusive" in funded_escrow.hold_reason


def test_a_dispute_on_a_payment_whose_funding_event_has_not_arrived_funds_it_first(
    client, django_capture_on_commit_callbacks, eager_tasks, awaiting, fake_stripe
):
    fake_stripe.put(dispute(awaiting, "needs_response", charge=f"ch_test_{awaiting.pk}"))
    deliver(
        client, django_capture_on_commit_callbacks, event("charge.dispute.created", dispute(awaiting, "needs_response"))
    )

    awaiting.refresh_from_db()
    assert (awaiting.status, awaiting.hold_reason) == ("held", "card chargeback")
    assert funding_transactions(awaiting) == 1


def test_a_dispute_on_someone_elses_charge_is_ignored(
    client, django_capture_on_commit_callbacks, eager_tasks, fake_stripe
):
    fake_stripe.put(
        {
            "id": "dp_other",
            "object": "dispute",
            "charge": "ch_other",
            "amount": 100,
            "currency": "usd",
            "status": "needs_response",
        }
    )
    obj = {"id": "dp_other", "object": "dispute", "charge": "ch_other"}
    deliver(client, django_capture_on_commit_callbacks, event("charge.dispute.created", obj))
    assert WebhookEvent.objects.get().result.startswith("ignored")


# --- refunds, transfers, accounts ------------------------------------------------------------------------------


def test_a_refund_that_fails_later_books_the_money_back_once_and_flags_the_settlement(
    client, django_capture_on_commit_callbacks, eager_tasks, funded_escrow, fake_stripe
):
    settlement = paid_out(funded_escrow, 0)
    item = OutboxItem.objects.get(settlement=settlement)
    refund = dict(
        fake_stripe.objects[item.provider_reference], status="failed", failure_reason="expired_or_canceled_card"
    )

    deliver(client, django_capture_on_commit_callbacks, event("refund.updated", refund))
    deliver(client, django_capture_on_commit_callbacks, event("refund.failed", refund))
    deliver(
        client, django_capture_on_commit_callbacks, event("refund.updated", dict(refund, status="succeeded"))
    )  # stale

    assert Settlement.objects.get(pk=settlement.pk).refund_status == "failed"
    item.refresh_from_db()
    assert item.status == "failed"
    assert "expired_or_canceled_card" in item.last_error
    buyer_id = funded_escrow.engagement.buyer_id
    assert balance(K.BUYER_REFUND, user_id=buyer_id) == 5000  # owed to the buyer again
    assert LedgerTransaction.objects.filter(kind="refund_returned").count() == 1
    assert ledger_sums_to_zero()


def test_a_refund_whose_answer_was_lost_is_completed_by_its_webhook(
    client, django_capture_on_commit_callbacks, eager_tasks, funded_escrow, fake_stripe
):
    settlement = settled(funded_escrow, share_bps=0)
    item = OutboxItem.objects.get(settlement=settlement)
    refund = {
        "id": "re_test_lost",
        "object": "refund",
        "amount": 5000,
        "charge": funded_escrow.charge_reference,
        "status": "succeeded",
        "metadata": {"pactum_idempotency_key": item.idempotency_key},
    }
    deliver(client, django_capture_on_commit_callbacks, event("refund.created", refund))
    deliver(
        client,
        django_capture_on_commit_callbacks,
        event(
            "charge.refunded",
            {"id": funded_escrow.charge_reference, "object": "charge", "refunds": {"object": "list", "data": [refund]}},
        ),
    )

    item.refresh_from_db()
    assert (item.status, item.provider_reference) == ("done", "re_test_lost")
    assert escrow_services.outbox_perform(item_id=item.pk).status == "done"
    assert not fake_stripe.calls("POST", "/v1/refunds")  # nothing sent twice
    assert LedgerTransaction.objects.filter(kind="refund").count() == 1
    assert ledger_sums_to_zero()


def test_a_reversed_transfer_books_back_what_came_back_however_the_events_arrive(
    client, django_capture_on_commit_callbacks, eager_tasks, funded_escrow, fake_stripe
):
    onboarded_seller(funded_escrow)
    settlement = paid_out(funded_escrow, 10_000)
    item = OutboxItem.objects.get(settlement=settlement)
    transfer = fake_stripe.objects[item.provider_reference]
    seller_id = funded_escrow.engagement.listing.seller_id

    for reversed_so_far in (1000, 4500, 1000, 4500):  # a partial reversal, the rest, then both again late
        deliver(
            client,
            django_capture_on_commit_callbacks,
            event("transfer.reversed", dict(transfer, amount_reversed=reversed_so_far)),
        )

    assert balance(K.SELLER_PAYABLE, user_id=seller_id) == 4500  # owed to the seller again
    assert LedgerTransaction.objects.filter(kind="payout_returned").count() == 2
    assert Settlement.objects.get(pk=settlement.pk).payout_status == "failed"
    assert ledger_sums_to_zero()


def test_a_transfer_event_for_a_pending_payout_completes_it_without_sending_another(
    client, django_capture_on_commit_callbacks, eager_tasks, funded_escrow, fake_stripe
):
    onboarded_seller(funded_escrow)
    item = OutboxItem.objects.get(settlement=settled(funded_escrow, share_bps=10_000))
    transfer = {
        "id": "tr_test_lost",
        "object": "transfer",
        "amount": 4500,
        "amount_reversed": 0,
        "metadata": {"pactum_idempotency_key": item.idempotency_key},
    }

    deliver(client, django_capture_on_commit_callbacks, event("transfer.created", transfer))

    item.refresh_from_db()
    assert (item.status, item.provider_reference) == ("done", "tr_test_lost")
    assert escrow_services.outbox_perform(item_id=item.pk).status == "done"
    assert not fake_stripe.calls("POST", "/v1/transfers")
    assert Settlement.objects.get(pk=item.settlement_id).payout_status == "paid"


def test_account_updates_follow_stripes_current_state_whatever_the_order(
    client, django_capture_on_commit_callbacks, eager_tasks, fake_stripe
):
    from tests.factories import SellerFactory

    account, _ = escrow_services.payout_onboard(seller=SellerFactory.create())
    stripe_account = fake_stripe.objects[account.provider_account]
    older = dict(stripe_account, capabilities={"transfers": "inactive"})
    fake_stripe.objects[account.provider_account] = dict(
        stripe_account, payouts_enabled=True, capabilities={"transfers": "active"}
    )
    newer = fake_stripe.objects[account.provider_account]

    deliver(client, django_capture_on_commit_callbacks, event("account.updated", newer))
    deliver(client, django_capture_on_commit_callbacks, event("account.updated", older))  # arrives late

    assert PayoutAccount.objects.get(pk=account.pk).payouts_enabled is True
    assert len(fake_stripe.calls("GET", f"/v1/accounts/{account.provider_account}")) == 2


def test_while_a_chargeback_is_open_no_settlement_or_decision_moves_the_money(
    client, django_capture_on_commit_callbacks, eager_tasks, funded_escrow, fake_stripe
):
    from core.errors import Conflict
    from escrow import services as escrow_services

    fake_stripe.put(dispute(funded_escrow, "needs_response"))
    deliver(
        client,
        django_capture_on_commit_callbacks,
        event("charge.dispute.created", dispute(funded_escrow, "needs_response")),
    )
    before = LedgerTransaction.objects.count()
    with pytest.raises(Conflict, match="chargeback"):
        escrow_services.escrow_settle_share(
            escrow_id=funded_escrow.pk, seller_share_bps=10_000, reason="admin", actor=None
        )
    escrow_services.escrow_decide(engagement_id=funded_escrow.engagement_id, outcome="passed")
    funded_escrow.refresh_from_db()
    assert (funded_escrow.status, funded_escrow.hold_reason) == ("held", "card chargeback")
    assert LedgerTransaction.objects.count() == before
