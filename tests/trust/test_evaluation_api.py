import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from tests.factories import BuyerFactory, SellerFactory, UserFactory
from tests.trust.conftest import RESEARCH_CLAUSES, active_engagement, deliver
from tests.trust.test_pipeline import run_all
from trust import services

pytestmark = pytest.mark.django_db


def client_for(user) -> APIClient:
    client = APIClient()
    if user is not None:
        client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.get_or_create(user=user)[0].key}")
    return client


def evaluated(clauses=None):
    engagement = active_engagement(clauses=clauses)
    deliverable = deliver(engagement)
    run_all(services.evaluation_start(deliverable_id=deliverable.pk))
    return engagement


def test_the_parties_read_the_evaluation_in_the_contract_shape():
    engagement = evaluated()
    body = client_for(engagement.buyer).get(f"/api/v1/engagements/{engagement.pk}/evaluation/").json()
    assert body["status"] == "done"
    assert body["outcome"] == "passed"
    assert body["compliance"] == 1.0
    assert body["agreement_alpha"] == 1.0
    assert body["progress"] == {"judges_done": 6, "judges_total": 6}
    assert [c["key"] for c in body["clauses"]] == [
        c["key"] for c in sorted(RESEARCH_CLAUSES, key=lambda c: str(c["key"]))
    ]
    quality = next(c for c in body["clauses"] if c["key"] == "quality")
    assert {v["judge"] for v in quality["verdicts"]} == {"criteria-coverage", "task-relevance", "specificity"}
    assert set(quality["verdicts"][0]) >= {"judge", "version", "score", "passed", "rationale"}
    assert body["rounds"] == [{"id": body["id"], "round": 1, "status": "done", "outcome": "passed", "reason": ""}]
    detail = client_for(engagement.listing.seller).get(f"/api/v1/engagements/{engagement.pk}/").json()
    assert detail["evaluation"]["status"] == "done"
    assert detail["evaluation"]["outcome"] == "passed"
    assert detail["status"] == "evaluated"


def test_who_may_read_an_evaluation():
    engagement = evaluated()
    url = f"/api/v1/engagements/{engagement.pk}/evaluation/"
    assert client_for(None).get(url).status_code == 401
    assert client_for(BuyerFactory.create()).get(url).status_code == 404
    assert client_for(SellerFactory.create()).get(url).status_code == 404
    assert client_for(UserFactory.create(role="", is_staff=True)).get(url).status_code == 200
    assert client_for(engagement.listing.seller).get(url).status_code == 200


def test_no_evaluation_before_delivery_is_a_404_with_a_detail():
    engagement = active_engagement()
    response = client_for(engagement.buyer).get(f"/api/v1/engagements/{engagement.pk}/evaluation/")
    assert response.status_code == 404
    assert "not been delivered" in response.json()["detail"]


def test_a_running_evaluation_shows_its_progress():
    engagement = active_engagement()
    evaluation = services.evaluation_start(deliverable_id=deliver(engagement).pk)
    first = evaluation.judge_runs.first()
    services.judge_run_execute(judge_run_id=first.pk)
    body = client_for(engagement.buyer).get(f"/api/v1/engagements/{engagement.pk}/evaluation/").json()
    assert body["status"] == "running"
    assert body["outcome"] is None
    assert body["progress"] == {"judges_done": 1, "judges_total": 6}


def test_the_evaluation_endpoint_runs_a_constant_number_of_queries(django_assert_num_queries):
    small = evaluated(clauses=RESEARCH_CLAUSES[:2])
    client = client_for(small.buyer)
    with CaptureQueriesContext(connection) as ctx:
        assert client.get(f"/api/v1/engagements/{small.pk}/evaluation/").status_code == 200
    expected = len(ctx)  # now: every request start clears the connection's query log
    big_clauses = [
        *RESEARCH_CLAUSES,
        {"key": "q2", "kind": "rubric", "params": {"criteria": ["clear"], "min_score": 0.5}},
        {"key": "short", "kind": "word_count", "params": {"max": 500}},
    ]
    big = evaluated(clauses=big_clauses)
    client = client_for(big.buyer)
    with django_assert_num_queries(expected):
        assert client.get(f"/api/v1/engagements/{big.pk}/evaluation/").status_code == 200
