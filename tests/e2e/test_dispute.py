"""A buyer disputes a judged delivery in a real browser and an admin rules it in the
staff console; a real Celery worker judges the delivery and e-mails both parties."""

from __future__ import annotations

import email
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from escrow import services as escrow_services
from escrow.models import Dispute, Settlement
from marketplace import services as marketplace
from marketplace.models import Engagement
from tests.conftest import start_worker, stop_worker
from tests.e2e.test_journey import log_in
from tests.escrow.conftest import agreed_engagement
from tests.factories import UserFactory
from tests.trust.conftest import GOOD_OUTPUT

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


@pytest.fixture(scope="module")
def mail_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("mail")


@pytest.fixture(scope="module")
def mailing_worker(django_db_setup, django_db_blocker, mail_dir) -> Iterator[None]:
    """A worker whose e-mail goes to files, so the test can read what the parties received."""
    proc = start_worker(
        env_overrides={
            "EMAIL_BACKEND": "django.core.mail.backends.filebased.EmailBackend",
            "EMAIL_FILE_PATH": str(mail_dir),
        }
    )
    yield
    stop_worker(proc)


def wait_for(predicate, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.25)
    raise AssertionError("timed out")


def sent_mail(mail_dir: Path) -> list[email.message.Message]:
    messages = []
    for path in sorted(mail_dir.glob("*.log")):
        for chunk in path.read_text().split("-" * 79):
            if chunk.strip():
                messages.append(email.message_from_string(chunk.strip()))
    return messages


def test_buyer_disputes_and_staff_rule_in_the_console(page: Page, live_server, browser, mailing_worker, mail_dir):
    engagement = agreed_engagement(price_minor=5000)
    escrow_services.escrow_fund(engagement_id=engagement.pk, actor=engagement.buyer)
    marketplace.deliverable_submit(
        engagement_id=engagement.pk,
        actor=engagement.listing.seller,
        output=GOOD_OUTPUT,
        citations=["https://arxiv.org/abs/1"],
        actions=["search", "read"],
        latency_ms=1200,
    )
    # The worker judges the delivery; its finalize schedules the release.
    wait_for(lambda: Engagement.objects.get(pk=engagement.pk).status == Engagement.Status.EVALUATED)
    wait_for(lambda: engagement.escrow.timers.filter(action="release", status="pending").exists())

    # The buyer disputes from the engagement page.
    log_in(page, live_server.url, engagement.buyer.username)
    page.goto(f"{live_server.url}/engagements/{engagement.pk}/")
    page.get_by_text("Dispute this outcome").click()
    page.get_by_label("Reason").fill("Two of the claims cite nothing.")
    page.get_by_label("Evidence").fill("The second and fourth sentences carry no source.")
    page.get_by_role("button", name="Open dispute").click()
    expect(page.get_by_role("status").first).to_contain_text("is open: the money is held")
    expect(page.locator("#dispute")).to_contain_text("Two of the claims cite nothing.")
    expect(page.locator("#escrow")).to_contain_text("Held")
    dispute = Dispute.objects.get(engagement=engagement)

    # An admin works the queue and rules from the case page.
    staff = UserFactory.create(username="root", role="", is_staff=True, is_superuser=True)
    admin = browser.new_page()
    admin.set_default_timeout(15_000)
    log_in(admin, live_server.url, staff.username)
    admin.get_by_role("link", name="Console").click()
    admin.get_by_role("link", name=f"Dispute #{dispute.pk}").first.click()
    expect(admin.locator("#statements")).to_contain_text("Two of the claims cite nothing.")
    expect(admin.locator("#pact")).to_contain_text(engagement.pact_version.content_hash)
    expect(admin.locator("#evaluation-1")).to_contain_text("passed")
    admin.get_by_label("Split: the seller gets the share below").check()
    admin.get_by_label("Seller's share (basis points)").fill("6000")
    admin.get_by_label("Rationale").fill("Two of five claims lack sources; the seller earns the rest.")
    admin.get_by_role("button", name="Rule and settle").click()
    expect(admin.get_by_role("status").first).to_contain_text("ruled: split, 6000 bps to the seller")
    admin.close()

    settlement = Settlement.objects.get(escrow__engagement=engagement)
    assert (settlement.seller_gross_minor, settlement.platform_fee_minor, settlement.buyer_refund_minor) == (
        3000,
        300,
        2000,
    )
    assert settlement.reason == "dispute_ruling"

    # The buyer sees the ruling, and both parties got the notices (opened, ruled).
    page.reload()
    expect(page.locator("#dispute")).to_contain_text("Two of five claims lack sources")
    expect(page.locator("#escrow")).to_contain_text("Settled")
    wait_for(lambda: len(sent_mail(mail_dir)) >= 4)
    messages = sent_mail(mail_dir)
    subjects = sorted((m["To"], m["Subject"]) for m in messages)
    for address in (engagement.buyer.email, engagement.listing.seller.email):
        assert (address, f"[Pactum] Dispute #{dispute.pk} opened on engagement #{engagement.pk}") in subjects
        assert (address, f"[Pactum] Dispute #{dispute.pk} on engagement #{engagement.pk} was ruled") in subjects
