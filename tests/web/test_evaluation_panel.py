import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tests.factories import BuyerFactory
from tests.trust.conftest import RESEARCH_CLAUSES, active_engagement, deliver
from tests.trust.test_pipeline import run_all
from trust import services as trust_services

pytestmark = pytest.mark.django_db


def logged_in(client, user):
    client.force_login(user)
    return client


def test_no_panel_before_delivery(client):
    engagement = active_engagement()
    page = logged_in(client, engagement.buyer).get(f"/engagements/{engagement.pk}/")
    assert page.status_code == 200
    assert 'id="evaluation"' not in page.content.decode()


def test_a_running_evaluation_polls_and_shows_progress(client):
    engagement = active_engagement()
    evaluation = trust_services.evaluation_start(deliverable_id=deliver(engagement).pk)
    fragment = logged_in(client, engagement.buyer).get(f"/engagements/{engagement.pk}/evaluation/").content.decode()
    assert 'hx-trigger="every 2s"' in fragment
    assert "<strong>0 / 6</strong>" in fragment
    trust_services.judge_run_execute(judge_run_id=evaluation.judge_runs.first().pk)
    fragment = client.get(f"/engagements/{engagement.pk}/evaluation/").content.decode()
    assert "<strong>1 / 6</strong>" in fragment


def test_a_finished_evaluation_shows_the_verdicts_and_stops_polling(client):
    engagement = active_engagement()
    run_all(trust_services.evaluation_start(deliverable_id=deliver(engagement).pk))
    page = logged_in(client, engagement.listing.seller).get(f"/engagements/{engagement.pk}/").content.decode()
    assert 'id="evaluation"' in page
    assert "hx-trigger" not in page.split('id="evaluation"')[1].split("</section>")[0]
    assert "passed" in page
    assert "100% of the clause weight passed" in page
    for judge in ("criteria-coverage", "task-relevance", "specificity", "citation-coverage", "scope", "latency"):
        assert judge in page
    assert "claim sentences carry a citation" in page  # a rationale
    # The poll that sees the finished evaluation reloads the whole page once.
    polled = client.get(f"/engagements/{engagement.pk}/evaluation/", HTTP_HX_REQUEST="true")
    assert polled["HX-Refresh"] == "true"
    assert not client.get(f"/engagements/{engagement.pk}/evaluation/").has_header("HX-Refresh")


def test_a_flagged_evaluation_shows_why():
    from django.test import Client

    engagement = active_engagement(task="Explain photosynthesis in plants for a child.")
    done = run_all(trust_services.evaluation_start(deliverable_id=deliver(engagement).pk))
    assert done.flagged_for_review
    fragment = logged_in(Client(), engagement.buyer).get(f"/engagements/{engagement.pk}/evaluation/").content.decode()
    assert "Flagged for review" in fragment
    assert "disagree" in fragment


def test_only_the_parties_see_the_panel(client):
    engagement = active_engagement()
    deliver(engagement)
    url = f"/engagements/{engagement.pk}/evaluation/"
    assert client.get(url).status_code == 302  # to the login page
    assert logged_in(client, BuyerFactory.create()).get(url).status_code == 404


def test_the_panel_runs_a_constant_number_of_queries(client, django_assert_num_queries):
    small = active_engagement(clauses=RESEARCH_CLAUSES[:2])
    run_all(trust_services.evaluation_start(deliverable_id=deliver(small).pk))
    logged_in(client, small.buyer)
    with CaptureQueriesContext(connection) as ctx:
        client.get(f"/engagements/{small.pk}/evaluation/")
    # Read the count now: every request start clears the connection's query log.
    expected = len(ctx)
    big = active_engagement(
        clauses=[
            *RESEARCH_CLAUSES,
            {"key": "q2", "kind": "rubric", "params": {"criteria": ["clear"], "min_score": 0.5}},
        ]
    )
    run_all(trust_services.evaluation_start(deliverable_id=deliver(big).pk))
    logged_in(client, big.buyer)
    client.get(f"/engagements/{big.pk}/evaluation/")  # same session state as the measured request
    with django_assert_num_queries(expected):
        client.get(f"/engagements/{big.pk}/evaluation/")
