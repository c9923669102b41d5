"""Who may call what: every marketplace endpoint x anonymous, the buyer, another
buyer, the seller, another seller and staff. Each cell runs on fresh data."""

import datetime

import pytest
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from marketplace import services
from tests.factories import BuyerFactory, SellerFactory, UserFactory
from tests.marketplace.conftest import clauses, terms

pytestmark = pytest.mark.django_db

ACTORS = ["anonymous", "buyer", "other_buyer", "seller", "other_seller", "staff"]


@pytest.fixture
def world():
    seller, buyer = SellerFactory.create(), BuyerFactory.create()
    people = {
        "anonymous": None,
        "buyer": buyer,
        "other_buyer": BuyerFactory.create(),
        "seller": seller,
        "other_seller": SellerFactory.create(),
        "staff": UserFactory.create(role="", is_staff=True, is_superuser=True),
    }
    listing = services.listing_create(seller=seller, name="Beacon", price_minor=5000, currency="usd")
    draft = services.listing_create(seller=seller, name="Draft", price_minor=5000, currency="usd", status="draft")
    pact = services.pact_publish(listing=listing, actor=seller, name="Pact", clauses=clauses(), terms=terms())
    negotiating = services.engagement_create(buyer=buyer, listing=listing, template=pact.template, task="a")
    active = services.engagement_create(buyer=buyer, listing=listing, template=pact.template, task="b")
    services.proposal_accept(engagement_id=active.pk, actor=seller)
    services.engagement_mark_active(engagement_id=active.pk)
    token, _ = services.agent_token_create(listing=listing, actor=seller, name="t")
    return {
        "people": people,
        "listing": listing,
        "draft": draft,
        "pact": pact,
        "negotiating": negotiating,
        "active": active,
        "token": token,
    }


def call(world, actor, method, path, body=None):
    client = APIClient()
    user = world["people"][actor]
    if user is not None:
        key, _ = Token.objects.get_or_create(user=user)
        client.credentials(HTTP_AUTHORIZATION=f"Token {key.key}")
    path = path.format(
        listing=world["listing"].pk,
        draft=world["draft"].pk,
        negotiating=world["negotiating"].pk,
        active=world["active"].pk,
        token=world["token"].pk,
    )
    return getattr(client, method)(path, body(world) if callable(body) else body, format="json")


LISTING = {"name": "New", "price_minor": 100, "currency": "usd"}
PACT = {"name": "New pact", "clauses": clauses(), "terms": terms()}
CLAIM = {"benchmark": "GAIA", "score": 0.7, "measured_on": str(datetime.date(2026, 1, 1))}
COUNTER = {"clauses": clauses(), "terms": terms(price_minor=4321)}
DELIVERY = {"output": "done", "latency_ms": 10}


def engagement_body(world):
    return {"agent": world["listing"].pk, "pact": world["pact"].template_id, "task": "do it"}


#            anonymous, buyer, other_buyer, seller, other_seller, staff
MATRIX = [
    ("get", "/api/v1/agents/", None, [200, 200, 200, 200, 200, 200]),
    ("post", "/api/v1/agents/", LISTING, [401, 403, 403, 201, 201, 403]),
    ("get", "/api/v1/agents/{listing}/", None, [200, 200, 200, 200, 200, 200]),
    ("get", "/api/v1/agents/{draft}/", None, [404, 404, 404, 200, 404, 200]),
    ("patch", "/api/v1/agents/{listing}/", {"price_minor": 42}, [401, 403, 403, 200, 403, 403]),
    ("get", "/api/v1/agents/{listing}/pacts/", None, [200, 200, 200, 200, 200, 200]),
    ("post", "/api/v1/agents/{listing}/pacts/", PACT, [401, 403, 403, 201, 403, 403]),
    ("get", "/api/v1/agents/{listing}/benchmarks/", None, [200, 200, 200, 200, 200, 200]),
    ("post", "/api/v1/agents/{listing}/benchmarks/", CLAIM, [401, 403, 403, 201, 403, 403]),
    ("get", "/api/v1/agents/{listing}/tokens/", None, [401, 404, 404, 200, 404, 404]),
    ("post", "/api/v1/agents/{listing}/tokens/", {"name": "x"}, [401, 404, 404, 201, 404, 404]),
    ("delete", "/api/v1/agents/{listing}/tokens/{token}/", None, [401, 404, 404, 200, 404, 404]),
    ("get", "/api/v1/engagements/", None, [401, 200, 200, 200, 200, 200]),
    ("post", "/api/v1/engagements/", engagement_body, [401, 201, 201, 403, 403, 403]),
    ("get", "/api/v1/engagements/{negotiating}/", None, [401, 200, 404, 200, 404, 200]),
    ("post", "/api/v1/engagements/{negotiating}/proposals/", COUNTER, [401, 201, 404, 201, 404, 403]),
    ("post", "/api/v1/engagements/{negotiating}/accept/", {}, [401, 409, 404, 200, 404, 403]),
    ("post", "/api/v1/engagements/{negotiating}/cancel/", {}, [401, 200, 404, 200, 404, 403]),
    ("post", "/api/v1/engagements/{active}/deliver/", DELIVERY, [401, 403, 404, 201, 404, 403]),
]


@pytest.mark.parametrize(("method", "path", "body", "expected"), MATRIX, ids=[f"{m} {p}" for m, p, _, _ in MATRIX])
@pytest.mark.parametrize("actor", ACTORS)
def test_permission_matrix(world, actor, method, path, body, expected):
    response = call(world, actor, method, path, body)
    want = expected[ACTORS.index(actor)]
    assert response.status_code == want, response.content
    if want >= 400:
        assert response.json()["detail"]


def test_each_party_lists_only_their_own_engagements(world):
    counts = {}
    for actor in ACTORS[1:]:
        counts[actor] = call(world, actor, "get", "/api/v1/engagements/").json()["count"]
    assert counts == {"buyer": 2, "other_buyer": 0, "seller": 2, "other_seller": 0, "staff": 2}
