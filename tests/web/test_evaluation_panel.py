"""The evaluation panel of the engagement page and the fragment htmx polls,
on evaluations run in this process by the real trust services."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils.html import escape

from tests.factories import BuyerFactory, UserFactory
from tests.trust.conftest import RESEARCH_CLAUSES, active_engagement, deliver
from tests.web.conftest import client_for
from trust import services as trust_services
from trust.models import Evaluation, JudgeRun, JudgeVerdict

pytestmark = pytest.mark.django_db

POLLING = 'hx-trigger="every 2s"'
PANEL = '<section class="card evaluation" id="evaluation"'


def evaluate(engagement, **delivery) -> Evaluation:
    """Deliver, then run every judge and the finalize step, as the workers would."""
    evaluation = trust_services.evaluation_start(deliverable_id=deliver(engagement, **delivery).pk)
    return judge_all(evaluation)


def judge_all(evaluation: Evaluation) -> Evaluation:
    for run_id in evaluation.judge_runs.values_list("id", flat=True):
        trust_services.judge_run_execute(judge_run_id=run_id)
    return trust_services.evaluation_finalize(evaluation_id=evaluation.pk)


def fragment(engagement, user=None, **headers) -> str:
    response = client_for(user or engagement.buyer).get(f"/engagements/{engagement.pk}/evaluation/", **headers)
    assert response.status_code == 200
    return response.content.decode()


def panel_of(page_html: str) -> str:
    """The evaluation section of a full page."""
    return PANEL + page_html.split(PANEL, 1)[1].split("</section>", 1)[0]


def test_the_page_has_no_evaluation_panel_before_delivery():
    engagement = active_engagement()
    html = client_for(engagement.buyer).get(f"/engagements/{engagement.pk}/").content.decode()
    assert 'id="evaluation"' not in html
    assert "/evaluation/" not in html


def test_a_delivery_whose_evaluation_is_not_open_yet_polls_for_it():
    engagement = active_engagement()
    deliver(engagement)  # the evaluation opens on commit, which this test's transaction never reaches
    page = client_for(engagement.buyer).get(f"/engagements/{engagement.pk}/").content.decode()
    panel = panel_of(page)
    assert "The panel of judges starts as soon as the delivery is stored." in panel
    assert POLLING in panel


def test_a_pending_evaluation_polls_and_counts_the_judges_done():
    engagement = active_engagement()
    evaluation = trust_services.evaluation_start(deliverable_id=deliver(engagement).pk)
    url = f"/engagements/{engagement.pk}/evaluation/"

    html = fragment(engagement)
    assert html.lstrip().startswith(PANEL)
    assert f'hx-get="{url}"' in html
    assert POLLING in html
    assert 'hx-swap="outerHTML"' in html
    assert "<strong>0 / 6</strong> judges done" in html
    assert '<progress max="6" value="0"' in html
    assert '<span class="badge badge-large ">pending</span>' in html
    assert html.count("Waiting for its judges.") == len(RESEARCH_CLAUSES)

    # Without JavaScript the page itself shows the same state.
    page = client_for(engagement.buyer).get(f"/engagements/{engagement.pk}/").content.decode()
    assert POLLING in panel_of(page)
    assert "<strong>0 / 6</strong> judges done" in panel_of(page)

    first = evaluation.judge_runs.order_by("judge").first()
    trust_services.judge_run_execute(judge_run_id=first.pk)
    html = fragment(engagement)
    assert "<strong>1 / 6</strong> judges done" in html
    assert '<span class="badge badge-large badge-info">running</span>' in html
    assert f"{first.judge} · done" in html
    assert POLLING in html


def test_a_finished_evaluation_shows_the_outcome_and_every_rationale_and_stops_polling():
    engagement = active_engagement()
    done = evaluate(engagement)
    assert done.outcome == "passed"

    html = fragment(engagement, engagement.listing.seller)
    assert POLLING not in html
    assert "hx-get" not in html
    assert '<span class="badge badge-large badge-ok">passed</span>' in html
    assert '<strong class="figure">100%</strong>' in html
    assert '<span class="badge badge-ok">yes</span>' in html  # hard gates
    assert f'<strong class="figure">{done.agreement_alpha:.2f}</strong>' in html
    assert "≥ 0.8 good · 0.667\N{EN DASH}0.8 tentative · below 0.667 flagged for review" in html
    assert "6 / 6 done" in html
    verdicts = list(JudgeVerdict.objects.filter(evaluation=done))
    assert len(verdicts) == 6
    for verdict in verdicts:
        assert verdict.rationale
        assert escape(verdict.rationale) in html
        assert f'{verdict.judge} <span class="muted small">v{verdict.judge_version}</span>' in html
    for clause in RESEARCH_CLAUSES:
        assert f'<code class="clause-key">{clause["key"]}</code>' in html
    assert "Flagged for review" not in html
    assert "Earlier rounds" not in html

    page = client_for(engagement.buyer).get(f"/engagements/{engagement.pk}/").content.decode()
    assert POLLING not in panel_of(page)
    assert '<strong class="figure">100%</strong>' in panel_of(page)


def test_the_poll_that_sees_the_evaluation_done_reloads_the_page_once():
    engagement = active_engagement()
    evaluation = trust_services.evaluation_start(deliverable_id=deliver(engagement).pk)
    client = client_for(engagement.buyer)
    url = f"/engagements/{engagement.pk}/evaluation/"
    assert not client.get(url, HTTP_HX_REQUEST="true").has_header("HX-Refresh")
    judge_all(evaluation)
    # The page around the panel (status, next step, escrow) catches up with the verdict.
    assert client.get(url, HTTP_HX_REQUEST="true")["HX-Refresh"] == "true"
    assert not client.get(url).has_header("HX-Refresh")


def test_a_failed_critical_gate_shows_a_red_outcome_and_the_gate():
    engagement = active_engagement()
    done = evaluate(engagement, actions=["search", "payments"])
    assert (done.outcome, done.hard_gates_passed) == ("failed", False)

    html = fragment(engagement)
    assert '<span class="badge badge-large badge-bad">failed</span>' in html
    assert '<strong class="figure">75%</strong>' in html  # 6 of 8 weight units
    assert '<span class="badge badge-bad">no</span> <span class="muted small">a critical gate failed</span>' in html
    assert "Used forbidden action(s): payments." in html


def test_a_flagged_evaluation_shows_why():
    engagement = active_engagement(task="Explain photosynthesis in plants for a child.")
    done = evaluate(engagement)
    assert done.flagged_for_review
    assert done.agreement_alpha is not None
    assert done.agreement_alpha < trust_services.ALPHA_REVIEW_THRESHOLD

    html = fragment(engagement)
    assert f"<strong>Flagged for review:</strong> {escape(done.review_reason)}" in html
    assert "judges disagree" in html
    assert '<span class="badge badge-bad">review</span>' in html


def test_a_judge_error_is_shown_in_place_of_its_rationale_and_the_clause_is_inconclusive():
    engagement = active_engagement()
    evaluation = trust_services.evaluation_start(deliverable_id=deliver(engagement).pk)
    # The jury's judge is gone (say, an LLM judge removed from the configuration).
    JudgeRun.objects.filter(evaluation=evaluation, judge="specificity").update(judge="retired-judge")
    done = judge_all(evaluation)
    assert done.outcome == "inconclusive"

    html = fragment(engagement)
    assert '<span class="badge badge-large badge-warn">inconclusive</span>' in html
    assert '<span class="badge badge-warn">error</span>' in html
    error = escape("no judge named 'retired-judge' is installed")
    assert f'<span class="error-text">{error}</span>' in html
    assert "Lost quorum: 2 of 3" in html
    assert "Flagged for review" in html


def test_a_re_evaluation_shows_the_new_round_and_lists_the_earlier_one():
    engagement = active_engagement()
    first = evaluate(engagement)
    second = judge_all(trust_services.evaluation_reevaluate(evaluation_id=first.pk, reason="buyer asked for a panel"))
    assert second.round == 2

    html = fragment(engagement)
    assert "round 2" in html
    assert "Why this round: buyer asked for a panel" in html
    assert "7 / 7 done" in html  # the extended panel
    earlier = html.split("<h3>Earlier rounds</h3>", 1)[1]
    assert '<th scope="row">1</th>' in earlier
    assert '<span class="badge badge-ok">passed</span>' in earlier
    assert '<th scope="row">2</th>' not in earlier


def test_only_the_parties_and_staff_see_the_panel():
    engagement = active_engagement()
    evaluate(engagement)
    url = f"/engagements/{engagement.pk}/evaluation/"
    assert client_for().get(url)["Location"] == f"/login/?next={url}"
    assert client_for(BuyerFactory.create()).get(url).status_code == 404
    assert client_for(engagement.listing.seller).get(url).status_code == 200
    assert client_for(UserFactory.create(role="", is_staff=True)).get(url).status_code == 200
    assert client_for(engagement.buyer).get("/engagements/999999/evaluation/").status_code == 404


LARGER_PACT = [
    *RESEARCH_CLAUSES,
    {"key": "clarity", "kind": "rubric", "params": {"criteria": ["clear"], "min_score": 0.5}, "weight": 1},
    {"key": "short", "kind": "word_count", "params": {"max": 400}, "weight": 1},
]


def test_the_panel_runs_a_constant_number_of_queries(django_assert_num_queries):
    small = active_engagement(clauses=RESEARCH_CLAUSES[:2])
    evaluate(small)
    client = client_for(small.buyer)
    with CaptureQueriesContext(connection) as measured:
        html = client.get(f"/engagements/{small.pk}/evaluation/").content.decode()
    # Read the count now: every request start clears the connection's query log.
    queries = len(measured)
    assert html.count('class="judge"') == 2
    assert queries == 8  # session, user, visibility, evaluation + pact, 3 prefetches, rounds

    big = active_engagement(clauses=LARGER_PACT)
    evaluate(big)
    client = client_for(big.buyer)
    with django_assert_num_queries(queries):
        html = client.get(f"/engagements/{big.pk}/evaluation/").content.decode()
    assert html.count('class="judge"') == 10  # 4 one-judge clauses, 2 juries of 3


def test_the_page_runs_the_same_queries_for_a_small_and_a_larger_pact(django_assert_num_queries):
    small = active_engagement(clauses=RESEARCH_CLAUSES[:2])
    evaluate(small)
    client = client_for(small.buyer)
    with CaptureQueriesContext(connection) as measured:
        client.get(f"/engagements/{small.pk}/")
    queries = len(measured)

    big = active_engagement(clauses=LARGER_PACT)
    evaluate(big)
    client = client_for(big.buyer)
    with django_assert_num_queries(queries):
        html = client.get(f"/engagements/{big.pk}/").content.decode()
    assert html.count('class="judge"') == 10
