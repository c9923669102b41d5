import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from tests.escrow.conftest import evaluated_engagement
from web.escrow_views import escrow_panel_context

@pytest.mark.django_db
def test_q():
    engagement, _, _ = evaluated_engagement(good=True)
    assert engagement.listing
    with CaptureQueriesContext(connection) as before:
        escrow_panel_context(engagement, engagement.buyer)
    for q in before.captured_queries:
        print(q["sql"][:300])
    assert 0
