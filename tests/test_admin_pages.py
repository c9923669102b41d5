import pytest

from tests.escrow.conftest import evaluated_engagement
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

MODELS = [
    "escrow/escrow",
    "escrow/ledgertransaction",
    "escrow/ledgerentry",
    "escrow/ledgeraccount",
    "escrow/settlement",
    "escrow/escrowtimer",
    "escrow/outboxitem",
    "escrow/webhookevent",
    "escrow/payoutaccount",
    "trust/evaluation",
    "trust/judgerun",
    "trust/judgeverdict",
    "trust/verdictcache",
    "trust/clauseresult",
    "core/evidencerecord",
]


@pytest.mark.parametrize("model", MODELS)
def test_admin_lists_and_shows_records_read_only(client, model):
    evaluated_engagement(good=True)
    client.force_login(UserFactory.create(role="", is_staff=True, is_superuser=True))
    listing = client.get(f"/admin/{model}/")
    assert listing.status_code == 200
    assert client.get(f"/admin/{model}/add/").status_code == 403
