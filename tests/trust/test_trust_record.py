"""The trust record kept incrementally, checked against a full recomputation
from the evaluation records, and the ranking it gives."""

from __future__ import annotations

import datetime

import pytest
from django.test.utils import override_settings
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.errors import ValidationFailed
from marketplace import selectors as marketplace_selectors
from marketplace import services as marketplace
from marketplace.models import AgentListing
from tests.factories import BuyerFactory, SellerFactory
from tests.trust.conftest import RESEARCH_CLAUSES, active_engagement, deliver
from tests.trust.test_pipeline import run_all
from trust import metrics, selectors, services
from trust.models import (
    ClauseResult,
    ClauseStat,
    Evaluation,
    TrustHistoryPoint,
    TrustRecord,
)
from trust.scoring import Evidence, beta_interval, confidence

pytestmark = pytest.mark.django_db

T0 = datetime.datetime(2026, 3, 1, 12, 0, tzinfo=datetime.UTC)
TERMS = {"price_minor": 5000, "currency": "usd"}


def make_listing(categories=("research", "writing")):
    seller = SellerFactory.create()
    listing = marketplace.listing_create(
        seller=seller,
        name=f"Agent {seller.username}",
        price_minor=5000,
        currency="usd",
        categories=list(categories),
    )
    version = marketplace.pact_publish(
        listing=listing, actor=seller, name="Pact", clauses=RESEARCH_CLAUSES, terms=TERMS
    )
    return listing, version.template


def delivered_job(listing, template, *, category=""):
    buyer = BuyerFactory.create()
    engagement = marketplace.engagement_create(
        buyer=buyer, listing=listing, template=template, task="Explain RE2.", category=category
    )
    marketplace.proposal_accept(engagement_id=engagement.pk, actor=listing.seller)
    engagement = marketplace.engagement_mark_active(engagement_id=engagement.pk)
    return engagement, deliver(engagement)


def judged(engagement, deliverable, *, round, outcome, compliance, at, clause_outcomes=None):
    """An evaluation record as the pipeline leaves it (finished at a chosen time)."""
    evaluation = Evaluation.objects.create(
        engagement=engagement,
        deliverable=deliverable,
        pact_version=engagement.pact_version,
        round=round,
        status=Evaluation.Status.DONE,
        outcome=outcome,
        compliance=compliance,
        hard_gates_passed=outcome != "failed",
        finished_at=at,
    )
    for key, result in (clause_outcomes or {}).items():
        ClauseResult.objects.create(
            evaluation=evaluation,
            clause_key=key,
            kind="scope",
            method="deterministic",
            severity="major",
            weight=1,
            outcome=result,
        )
    return evaluation


def record(listing, category=""):
    return TrustRecord.objects.get(listing=listing, category=category)


# --- through the real pipeline ------------------------------------------------------------------


def test_a_finalized_evaluation_updates_the_agents_record():
    engagement = active_engagement()
    evaluation = run_all(services.evaluation_start(deliverable_id=deliver(engagement).pk))
    assert evaluation.outcome == "passed"
    overall = record(engagement.listing)
    assert overall.evidence_count == 1
    assert overall.r == pytest.approx(1.0, abs=1e-6)
    assert overall.s == pytest.approx(0.0, abs=1e-6)
    assert overall.last_verified_at == evaluation.finished_at
    expected = beta_interval(overall.r, overall.s)
    assert overall.compliance_lower == pytest.approx(expected.lower)
    assert overall.confidence == pytest.approx(confidence(1.0, 0.0, 10))
    assert overall.rated is False  # one job: unrated
    stats = {s.clause_key: (s.passed, s.failed) for s in ClauseStat.objects.filter(listing=engagement.listing)}
    assert stats == {"cites": (1, 0), "fast": (1, 0), "scope": (1, 0), "quality": (1, 0)}
    assert TrustHistoryPoint.objects.filter(listing=engagement.listing).count() == 1


def test_a_failed_clause_shows_in_the_clause_stats():
    engagement = active_engagement()
    run_all(services.evaluation_start(deliverable_id=deliver(engagement, actions=["search", "payments"]).pk))
    stat = ClauseStat.objects.get(listing=engagement.listing, clause_key="scope")
    assert (stat.passed, stat.failed, stat.rate) == (0, 1, 0.0)
    assert record(engagement.listing).s > 0


def test_finalize_twice_counts_once():
    engagement = active_engagement()
    evaluation = run_all(services.evaluation_start(deliverable_id=deliver(engagement).pk))
    services.evaluation_finalize(evaluation_id=evaluation.pk)
    assert record(engagement.listing).evidence_count == 1


def test_a_reevaluation_replaces_the_earlier_round():
    engagement = active_engagement()
    first = run_all(services.evaluation_start(deliverable_id=deliver(engagement, actions=["search", "payments"]).pk))
    assert first.outcome == "failed"
    second = run_all(services.evaluation_reevaluate(evaluation_id=first.pk))
    assert second.round == 2
    overall = record(engagement.listing)
    assert overall.evidence_count == 1  # the same job, judged again
    now = overall.decayed_to
    computed = metrics.trust_recompute(listing_id=engagement.listing_id, now=now)[""]
    assert overall.r == pytest.approx(computed.evidence.r, abs=1e-9)
    assert overall.s == pytest.approx(computed.evidence.s, abs=1e-9)
    assert ClauseStat.objects.get(listing=engagement.listing, clause_key="scope").failed == 1


def test_inconclusive_rounds_count_for_nothing():
    listing, template = make_listing()
    engagement, deliverable = delivered_job(listing, template)
    evaluation = judged(engagement, deliverable, round=1, outcome="inconclusive", compliance=0.5, at=T0)
    assert metrics.trust_record_evaluation(evaluation=evaluation, now=T0) is False
    assert not TrustRecord.objects.filter(listing=listing).exists()


# --- incremental equals recomputation -----------------------------------------------------------

job_events = st.lists(
    st.tuples(
        st.integers(0, 3),  # which job
        st.sampled_from(["passed", "failed", "inconclusive"]),
        st.floats(0.0, 1.0, allow_nan=False),
        st.integers(0, 400),  # hours since the previous event
        st.sampled_from(["", "research", "writing"]),  # the job's category (used when the job is opened)
    ),
    min_size=1,
    max_size=10,
)


@override_settings(TRUST_HALF_LIFE_DAYS=10)
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(events=job_events, settled=st.integers(0, 3), disputes=st.lists(st.booleans(), max_size=3))
def test_incremental_updates_equal_a_full_recomputation(events, settled, disputes):
    listing, template = make_listing()
    jobs: dict[int, tuple] = {}
    rounds: dict[int, int] = {}
    at = T0
    for job, outcome, compliance, hours, category in events:
        at = at + datetime.timedelta(hours=hours)
        if job not in jobs:
            jobs[job] = delivered_job(listing, template, category=category)
        engagement, deliverable = jobs[job]
        rounds[job] = rounds.get(job, 0) + 1
        evaluation = judged(
            engagement,
            deliverable,
            round=rounds[job],
            outcome=outcome,
            compliance=compliance,
            at=at,
            clause_outcomes={"cites": "passed" if compliance > 0.5 else "failed", "scope": outcome},
        )
        metrics.trust_record_evaluation(evaluation=evaluation, now=at)
    engagements = [engagement for engagement, _ in jobs.values()]
    for engagement in engagements[:settled]:
        services.trust_task_settled(engagement_id=engagement.pk, at=at)
    for engagement, upheld in zip(engagements[:settled], disputes, strict=False):
        services.trust_dispute_ruled(engagement_id=engagement.pk, upheld=upheld, at=at)

    now = at + datetime.timedelta(days=3)
    computed = metrics.trust_recompute(listing_id=listing.pk, now=now)
    stored = {r.category: r for r in TrustRecord.objects.filter(listing=listing)}
    assert set(stored) <= set(computed)
    for category, expected in computed.items():
        if category not in stored:
            # A category whose jobs were never counted has no record; the recomputation has nothing in it.
            assert expected.evidence_count == 0
            assert expected.settled_tasks == 0
            continue
        rec = stored[category]
        half_life = metrics.half_life_seconds()
        decayed = Evidence(rec.r, rec.s, rec.decayed_to).decayed(now, half_life)
        assert decayed.r == pytest.approx(expected.evidence.r, rel=1e-9, abs=1e-9)
        assert decayed.s == pytest.approx(expected.evidence.s, rel=1e-9, abs=1e-9)
        assert rec.evidence_count == expected.evidence_count
        assert rec.last_verified_at == expected.last_verified_at
        assert rec.settled_tasks == expected.settled_tasks
        assert (rec.disputes_upheld, rec.disputes_rejected) == (expected.disputes_upheld, expected.disputes_rejected)
    stats = {
        s.clause_key: {"kind": s.kind, "passed": s.passed, "failed": s.failed, "inconclusive": s.inconclusive}
        for s in ClauseStat.objects.filter(listing=listing)
        if s.total
    }
    assert stats == computed[""].clauses

    # The nightly refresh writes exactly the recomputation.
    metrics.trust_refresh(listing_id=listing.pk, now=now)
    for category, expected in computed.items():
        rec = record(listing, category)
        assert rec.r == pytest.approx(expected.evidence.r, rel=1e-12, abs=1e-12)
        assert rec.evidence_count == expected.evidence_count


# --- decay and ranking with a frozen clock ------------------------------------------------------


def history(listing, template, outcomes, *, start, step_days):
    at = start
    for compliance in outcomes:
        engagement, deliverable = delivered_job(listing, template)
        evaluation = judged(
            engagement,
            deliverable,
            round=1,
            outcome="passed" if compliance == 1.0 else "failed",
            compliance=compliance,
            at=at,
        )
        metrics.trust_record_evaluation(evaluation=evaluation, now=at)
        at += datetime.timedelta(days=step_days)


def test_an_agent_whose_failures_are_recent_ranks_below_one_whose_failures_are_old():
    recovering, recovering_pact = make_listing()
    slipping, slipping_pact = make_listing()
    # The same twelve jobs, four failures each: early for one agent, late for the other.
    history(recovering, recovering_pact, [0.0] * 4 + [1.0] * 8, start=T0, step_days=10)
    history(slipping, slipping_pact, [1.0] * 8 + [0.0] * 4, start=T0, step_days=10)
    now = T0 + datetime.timedelta(days=120)
    metrics.trust_refresh_all(now=now)
    a, b = record(recovering), record(slipping)
    assert a.evidence_count == b.evidence_count == 12
    assert a.compliance_lower > b.compliance_lower
    assert a.compliance_mean > b.compliance_mean
    ranked = list(
        selectors.listings_ranked(marketplace_selectors.listing_list(category="research"), category="research")
    )
    assert ranked.index(AgentListing.objects.get(pk=recovering.pk)) < ranked.index(
        AgentListing.objects.get(pk=slipping.pk)
    )
    # Undecayed, the two would tie: the ordering comes from the age of the failures.
    with override_settings(TRUST_HALF_LIFE_DAYS=1e9):
        metrics.trust_refresh_all(now=now)
        assert record(recovering).compliance_lower == pytest.approx(record(slipping).compliance_lower, abs=1e-6)


def test_unrated_agents_never_rank_above_rated_ones():
    lucky, lucky_pact = make_listing()
    steady, steady_pact = make_listing()
    history(lucky, lucky_pact, [1.0] * 2, start=T0, step_days=1)  # perfect, but only two jobs
    history(steady, steady_pact, [1.0] * 6 + [0.0] * 2, start=T0, step_days=1)
    assert record(lucky).rated is False
    assert record(steady).rated is True
    ranked = [listing.pk for listing in selectors.listings_ranked(marketplace_selectors.listing_list())]
    assert ranked.index(steady.pk) < ranked.index(lucky.pk)


def test_per_category_records_keep_the_jobs_apart():
    listing, template = make_listing()
    at = T0
    for category, compliance in [("research", 1.0), ("research", 1.0), ("writing", 0.0)]:
        engagement, deliverable = delivered_job(listing, template, category=category)
        evaluation = judged(
            engagement,
            deliverable,
            round=1,
            outcome="passed" if compliance else "failed",
            compliance=compliance,
            at=at,
        )
        metrics.trust_record_evaluation(evaluation=evaluation, now=at)
    assert record(listing).evidence_count == 3
    assert record(listing, "research").evidence_count == 2
    assert record(listing, "writing").evidence_count == 1
    assert record(listing, "research").compliance_mean > record(listing, "writing").compliance_mean


def test_an_engagement_category_must_be_one_of_the_agents():
    listing, template = make_listing()
    with pytest.raises(ValidationFailed):
        marketplace.engagement_create(
            buyer=BuyerFactory.create(), listing=listing, template=template, task="x", category="cooking"
        )
    engagement = marketplace.engagement_create(
        buyer=BuyerFactory.create(), listing=listing, template=template, task="x"
    )
    assert engagement.category == "research"  # the listing's first category


# --- disputes ---------------------------------------------------------------------------------------


def test_dispute_outcomes_and_settled_tasks_give_the_dispute_rate():
    listing, template = make_listing()
    engagements = [delivered_job(listing, template)[0] for _ in range(4)]
    for engagement in engagements:
        assert services.trust_task_settled(engagement_id=engagement.pk) is True
        assert services.trust_task_settled(engagement_id=engagement.pk) is False  # once per engagement
    assert services.trust_dispute_ruled(engagement_id=engagements[0].pk, upheld=True) is True
    assert services.trust_dispute_ruled(engagement_id=engagements[0].pk, upheld=False) is False
    services.trust_dispute_ruled(engagement_id=engagements[1].pk, upheld=False)
    rec = record(listing)
    assert (rec.settled_tasks, rec.disputes_upheld, rec.disputes_rejected) == (4, 1, 1)
    summary = selectors.trust_summaries(listing_ids=[listing.pk])[listing.pk]
    disputes = summary["disputes_per_100"]
    assert disputes["rate"] == 50.0
    assert (disputes["upheld"], disputes["rejected"], disputes["settled_tasks"]) == (1, 1, 4)
    # Wilson 95% for 2 of 4: (0.1500, 0.8500).
    assert disputes["lower"] == pytest.approx(15.0, abs=0.01)
    assert disputes["upper"] == pytest.approx(85.0, abs=0.01)
