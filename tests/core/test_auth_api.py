import pytest
from rest_framework.authtoken.models import Token

from core.models import User
from tests.factories import TEST_PASSWORD, SellerFactory

pytestmark = pytest.mark.django_db

REGISTER = "/api/v1/auth/register"
TOKEN = "/api/v1/auth/token"
GOOD = {"username": "newbuyer", "password": "Str0ng-enough-passphrase", "email": "nb@example.com", "role": "buyer"}


def test_register_returns_the_account_and_a_working_token(api_client):
    response = api_client.post(REGISTER, GOOD, format="json")
    assert response.status_code == 201, response.content
    body = response.json()
    user = User.objects.get(username="newbuyer")
    assert body == {"id": user.pk, "username": "newbuyer", "role": "buyer", "token": Token.objects.get(user=user).key}
    assert user.check_password(GOOD["password"])
    assert not user.is_staff


def test_register_seller(api_client):
    response = api_client.post(REGISTER, {**GOOD, "role": "seller"}, format="json")
    assert response.status_code == 201
    assert User.objects.get(username="newbuyer").role == "seller"


def test_duplicate_username_is_400(api_client):
    SellerFactory(username="NewBuyer")
    response = api_client.post(REGISTER, GOOD, format="json")
    assert response.status_code == 400
    assert response.json()["code"] == "username_taken"
    assert "taken" in response.json()["detail"]
    assert User.objects.filter(username__iexact="newbuyer").count() == 1


@pytest.mark.parametrize("password", ["short", "password123", "12345678901", "newbuyer-x"])
def test_weak_password_is_400(api_client, password):
    response = api_client.post(REGISTER, {**GOOD, "password": password}, format="json")
    assert response.status_code == 400
    body = response.json()
    assert "password" in body["errors"]
    assert body["detail"].startswith("Invalid input.")
    assert not User.objects.filter(username="newbuyer").exists()


@pytest.mark.parametrize("role", ["admin", "staff", "", None, 3])
def test_unknown_role_is_400(api_client, role):
    response = api_client.post(REGISTER, {**GOOD, "role": role}, format="json")
    assert response.status_code == 400
    assert "role" in response.json()["errors"]
    assert not User.objects.exists()


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"username": "x"},
        {**GOOD, "email": "not-an-email"},
        {**GOOD, "username": ["a", "list"]},
        {**GOOD, "username": "has space"},
        {**GOOD, "username": "u" * 151},
        {**GOOD, "password": {"nested": "dict"}},
        [1, 2, 3],
        "just a string",
        None,
    ],
)
def test_bad_bodies_get_400_with_details_and_create_nothing(api_client, body):
    response = api_client.post(REGISTER, body, format="json")
    assert response.status_code == 400, response.content
    payload = response.json()
    assert payload["detail"]
    assert payload["code"]
    assert not User.objects.exists()


def test_malformed_json_is_400(api_client):
    response = api_client.generic("POST", REGISTER, '{"username": "x",', content_type="application/json")
    assert response.status_code == 400
    assert response.json()["code"] == "parse_error"
    assert "JSON" in response.json()["detail"]


def test_wrong_content_type_is_415(api_client):
    response = api_client.generic("POST", REGISTER, "username=x", content_type="application/x-www-form-urlencoded")
    assert response.status_code == 415
    assert response.json()["code"] == "unsupported_media_type"


def test_token_for_valid_credentials(api_client):
    user = SellerFactory.create()
    response = api_client.post(TOKEN, {"username": user.username, "password": TEST_PASSWORD}, format="json")
    assert response.status_code == 200
    token = response.json()["token"]
    assert Token.objects.get(user=user).key == token
    # The same token is returned on a second call.
    again = api_client.post(TOKEN, {"username": user.username, "password": TEST_PASSWORD}, format="json")
    assert again.json()["token"] == token


@pytest.mark.parametrize("body", [{"username": "ghost", "password": "whatever-123"}, {"username": "u"}, {}])
def test_token_refuses_bad_credentials(api_client, body):
    SellerFactory(username="u")
    response = api_client.post(TOKEN, body, format="json")
    assert response.status_code == 400
    assert response.json()["detail"]
    assert not Token.objects.exists()


def test_token_authenticates_api_requests(api_client):
    response = api_client.post(REGISTER, GOOD, format="json")
    api_client.credentials(HTTP_AUTHORIZATION=f"Token {response.json()['token']}")
    # The schema endpoint is public; an unknown API path is a JSON 404 for an authenticated client.
    assert api_client.get("/api/v1/nothing-here/").status_code == 404


def test_get_on_register_is_405_json(api_client):
    response = api_client.get(REGISTER)
    assert response.status_code == 405
    assert response.json() == {"detail": 'Method "GET" not allowed.', "code": "method_not_allowed"}


def test_register_is_throttled(api_client):
    from core.api.views import AuthThrottle

    original = AuthThrottle.THROTTLE_RATES
    AuthThrottle.THROTTLE_RATES = {"auth": "3/min"}
    try:
        codes = [
            api_client.post(TOKEN, {"username": "x", "password": "y"}, format="json").status_code for _ in range(4)
        ]
    finally:
        AuthThrottle.THROTTLE_RATES = original
    assert codes == [400, 400, 400, 429]


@pytest.mark.parametrize("depth", [70, 2000])
def test_deeply_nested_json_is_a_400_not_a_500(api_client, depth):
    body = '{"username": ' + "[" * depth + "]" * depth + "}"
    response = api_client.generic("POST", REGISTER, body, content_type="application/json")
    assert response.status_code == 400
    assert "nested" in response.json()["detail"]
    assert not User.objects.exists()
