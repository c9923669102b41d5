"""The console queue names escalations in words (policy, metric, comparator, action) and keeps
its filters in one form row."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from marketplace import services as marketplace
from tests.factories import SellerFactory, UserFactory
from tests.web.conftest import client_for
from trust.models import EscalationEvent, TrustPolicy

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_user():
    return UserFactory.create(role="", is_staff=True, is_superuser=True)


def escalate(admin_user, *, name="Unreliable agents need manual release", value=0.177):
    seller = SellerFactory.create()
    listing = marketplace.listing_create(seller=seller, name=f"Agent {seller.pk}", price_minor=5000, currency="usd")
    policy, _ = TrustPolicy.objects.get_or_create(
        name=name,
        defaults={
            "metric": TrustPolicy.Metric.COMPLIANCE_LOWER,
            "comparator": TrustPolicy.Comparator.LT,
            "threshold": 0.25,
            "action": TrustPolicy.Action.REQUIRE_MANUAL_RELEASE,
            "owner": admin_user,
            "next_review_at": timezone.now(),
        },
    )
    return EscalationEvent.objects.create(
        policy=policy,
        listing=listing,
        metric=policy.metric,
        comparator=policy.comparator,
        threshold=policy.threshold,
        metric_value=value,
        action=policy.action,
    )


def test_escalation_rows_use_the_policy_name_and_human_labels(admin_user):
    escalate(admin_user)

    page = client_for(admin_user).get("/console/?kind=escalations").content.decode()

    assert "Policy “Unreliable agents need manual release”" in page
    assert (
        "Pact compliance, lower bound (0..1) is 0.177 (triggers at &lt; 0.25) → "
        "Require manual release (no auto-release)" in page
    )
    assert "compliance_lower" not in page
    assert "(lt 0.25)" not in page


def test_the_filters_are_one_row_of_label_and_select_pairs(admin_user):
    page = client_for(admin_user).get("/console/").content.decode()
    form = page[page.index('<form method="get" class="console-filters">') :]
    form = form[: form.index("</form>")]
    assert form.count('<span class="console-filter">') == 2
    assert 'class="filters' not in form


def test_escalation_rows_read_a_constant_number_of_queries(admin_user):
    escalate(admin_user)
    client = client_for(admin_user)

    def count() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert client.get("/console/?kind=escalations").status_code == 200
        return len(captured.captured_queries)

    one = count()
    for i in range(3):
        escalate(admin_user, name=f"Policy {i}")
    assert count() == one
