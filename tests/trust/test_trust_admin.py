"""The Django admin of the trust record and its policies."""

from __future__ import annotations

import pytest

from tests.factories import UserFactory
from tests.trust.test_policies import policy
from tests.trust.test_trust_api import rated_listing
from trust.models import TrustPolicy

pytestmark = pytest.mark.django_db

READ_ONLY = [
    "trust/trustrecord",
    "trust/clausestat",
    "trust/trusthistorypoint",
    "trust/settledtask",
    "trust/disputeoutcome",
    "trust/escalationevent",
]


@pytest.fixture
def admin_client(client):
    staff = UserFactory.create(role="", is_staff=True, is_superuser=True)
    client.force_login(staff)
    client.staff = staff
    return client


@pytest.mark.parametrize("model", READ_ONLY)
def test_derived_trust_data_is_listed_read_only(admin_client, model):
    policy(admin_client.staff, action="flag_listing")
    rated_listing([1.0] * 5 + [0.0])
    response = admin_client.get(f"/admin/{model}/")
    assert response.status_code == 200
    assert admin_client.get(f"/admin/{model}/add/").status_code == 403


def _form(staff, **overrides):
    data = {
        "name": "Weak agents need manual release",
        "description": "",
        "metric": "compliance_lower",
        "comparator": "lt",
        "threshold": "0.5",
        "action": "require_manual_release",
        "extra_review_hours": "0",
        "min_evidence": "5",
        "owner": str(staff.pk),
        "review_every_days": "90",
        "next_review_at_0": "2026-12-01",
        "next_review_at_1": "00:00:00",
        "active": "on",
    }
    data.update(overrides)
    return data


def test_staff_create_a_policy_in_the_admin_but_never_one_without_an_action(admin_client):
    response = admin_client.post("/admin/trust/trustpolicy/add/", _form(admin_client.staff, action=""))
    assert response.status_code == 200
    assert "This field is required" in response.content.decode()
    assert not TrustPolicy.objects.exists()
    response = admin_client.post("/admin/trust/trustpolicy/add/", _form(admin_client.staff))
    assert response.status_code == 302
    assert TrustPolicy.objects.get().action == "require_manual_release"
    assert admin_client.get("/admin/trust/trustpolicy/").status_code == 200
