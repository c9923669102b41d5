"""GET /agents/<slug>/hire/ goes to the agent's page, where the hire form is."""

from __future__ import annotations

import pytest

from marketplace.models import Engagement
from tests.web.conftest import client_for

pytestmark = pytest.mark.django_db


def test_get_on_the_hire_url_redirects_to_the_agent_page(listing, pact, buyer):
    for client in (client_for(), client_for(buyer)):
        response = client.get(f"/agents/{listing.slug}/hire/")
        assert response.status_code == 302
        assert response["Location"] == f"/agents/{listing.slug}/#hire"
    assert client_for(buyer).get(f"/agents/{listing.slug}/hire/", follow=True).status_code == 200
    assert not Engagement.objects.exists()


def test_posting_still_needs_a_login_and_other_methods_are_refused(listing, pact):
    response = client_for().post(f"/agents/{listing.slug}/hire/", {})
    assert response.status_code == 302
    assert response["Location"].startswith("/login/")
    assert client_for().put(f"/agents/{listing.slug}/hire/").status_code == 405
