import json
from datetime import timedelta

import pytest
from django.utils import timezone

from core.idempotency import _fingerprint, _scope, idempotency_purge
from core.models import IdempotencyRecord, User

pytestmark = pytest.mark.django_db

REGISTER = "/api/v1/auth/register"
BODY = {"username": "retrying", "password": "Str0ng-enough-passphrase", "email": "r@example.com", "role": "buyer"}


def test_a_replayed_request_returns_the_first_response_and_does_the_work_once(api_client):
    first = api_client.post(REGISTER, BODY, format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    second = api_client.post(REGISTER, BODY, format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    assert first.status_code == second.status_code == 201
    assert second.json() == first.json()
    assert second["Idempotent-Replayed"] == "true"
    assert User.objects.filter(username="retrying").count() == 1


def test_without_a_key_a_second_request_runs_again(api_client):
    api_client.post(REGISTER, BODY, format="json")
    again = api_client.post(REGISTER, BODY, format="json")
    assert again.status_code == 400
    assert again.json()["code"] == "username_taken"


def test_the_same_key_with_another_body_is_422_and_changes_nothing(api_client):
    api_client.post(REGISTER, BODY, format="json", HTTP_IDEMPOTENCY_KEY="k-2")
    other = api_client.post(REGISTER, {**BODY, "username": "someone-else"}, format="json", HTTP_IDEMPOTENCY_KEY="k-2")
    assert other.status_code == 422
    assert other.json()["code"] == "idempotency_key_reused"
    assert other.json()["detail"]
    assert not User.objects.filter(username="someone-else").exists()


def test_a_retry_while_the_first_request_runs_is_409(api_client, rf):
    body = json.dumps(BODY).encode()
    in_flight = rf.generic("POST", REGISTER, body, content_type="application/json")
    IdempotencyRecord.objects.create(scope=_scope(in_flight), key="k-3", fingerprint=_fingerprint(in_flight))

    response = api_client.generic("POST", REGISTER, body, content_type="application/json", HTTP_IDEMPOTENCY_KEY="k-3")

    assert response.status_code == 409
    assert response.json()["code"] == "idempotency_in_progress"
    assert not User.objects.exists()


def test_keys_are_scoped_to_the_caller(api_client):
    api_client.post(REGISTER, BODY, format="json", HTTP_IDEMPOTENCY_KEY="shared")
    other_client_body = {**BODY, "username": "another"}
    response = api_client.post(
        REGISTER, other_client_body, format="json", HTTP_IDEMPOTENCY_KEY="shared", HTTP_AUTHORIZATION="Token abc"
    )
    # Another caller's key space: the request runs instead of clashing with the first caller's key.
    assert response.status_code == 201
    assert User.objects.filter(username="another").exists()


@pytest.mark.parametrize("key", ["", "   ", "x" * 256])
def test_invalid_keys_are_400(api_client, key):
    response = api_client.post(REGISTER, BODY, format="json", HTTP_IDEMPOTENCY_KEY=key)
    assert response.status_code == 400
    assert response.json()["code"] == "invalid_idempotency_key"
    assert not User.objects.exists()


def test_old_records_are_purged():
    fresh = IdempotencyRecord.objects.create(scope="s", key="fresh", fingerprint="f", status_code=201)
    old = IdempotencyRecord.objects.create(scope="s", key="old", fingerprint="f", status_code=201)
    IdempotencyRecord.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(hours=25))
    assert idempotency_purge() == 1
    assert list(IdempotencyRecord.objects.values_list("pk", flat=True)) == [fresh.pk]
