"""The evaluation pipeline run step by step in this process (the worker tests
run the same steps through Celery)."""

import pytest

from core.models import EvidenceRecord
from core.selectors import evidence_chain_verify
from marketplace.models import Engagement
from tests.trust.conftest import active_engagement, deliver
from trust import services
from trust.models import ClauseResult, Evaluation, JudgeRun, JudgeVerdict, VerdictCache
from trust.signals import evaluation_finalized

pytestmark = pytest.mark.django_db


def run_all(evaluation: Evaluation) -> Evaluation:
    for run in evaluation.judge_runs.all():
        services.judge_run_execute(judge_run_id=run.pk)
    return services.evaluation_finalize(evaluation_id=evaluation.pk)


def test_a_good_delivery_passes_every_clause(engagement):
    deliverable = deliver(engagement)
    evaluation = services.evaluation_start(deliverable_id=deliverable.pk)
    assert sorted(evaluation.judge_runs.values_list("judge", flat=True)) == [
        "citation-coverage",
        "criteria-coverage",
        "latency",
        "scope",
        "specificity",
        "task-relevance",
    ]
    received = []
    evaluation_finalized.connect(lambda **kw: received.append(kw), dispatch_uid="t", weak=False)
    try:
        done = run_all(evaluation)
    finally:
        evaluation_finalized.disconnect(dispatch_uid="t")
    assert done.status == "done"
    assert done.outcome == "passed", list(done.clause_results.values("clause_key", "outcome", "reason"))
    assert done.compliance == 1.0
    assert done.hard_gates_passed is True
    assert ClauseResult.objects.filter(evaluation=done).count() == 4
    assert JudgeVerdict.objects.filter(evaluation=done).count() == 6  # 3 gates/heuristics + 3 jurors
    assert Engagement.objects.get(pk=engagement.pk).status == "evaluated"
    record = EvidenceRecord.objects.get(kind="evaluation.finalized")
    assert record.payload["pact_hash"] == engagement.pact_version.content_hash
    assert record.payload["deliverable_hash"] == deliverable.content_hash
    assert {v["judge"] for v in record.payload["verdicts"]} >= {"scope", "latency", "criteria-coverage"}
    assert evidence_chain_verify()[1] is None
    assert received == []  # sent on commit only; this test's transaction never commits


def test_a_forbidden_action_fails_the_job_on_the_critical_gate(engagement):
    deliverable = deliver(engagement, actions=["search", "payments"])
    done = run_all(services.evaluation_start(deliverable_id=deliverable.pk))
    assert done.outcome == "failed"
    assert done.hard_gates_passed is False
    assert done.clause_results.get(clause_key="scope").outcome == "failed"
    assert done.compliance == pytest.approx(6 / 8)


def test_a_judge_error_makes_its_clause_inconclusive(engagement):
    deliverable = deliver(engagement)
    evaluation = services.evaluation_start(deliverable_id=deliverable.pk)
    # The judge for the jury is gone (say, an LLM judge removed from the configuration).
    JudgeRun.objects.filter(evaluation=evaluation, judge="specificity").update(judge="retired-judge")
    done = run_all(evaluation)
    verdict = JudgeVerdict.objects.get(evaluation=done, judge="retired-judge")
    assert verdict.error == "no judge named 'retired-judge' is installed"
    assert JudgeRun.objects.get(evaluation=done, judge="retired-judge").status == "error"
    result = done.clause_results.get(clause_key="quality")
    assert result.outcome == "inconclusive"
    assert "Lost quorum: 2 of 3" in result.reason
    assert done.outcome == "inconclusive"
    assert done.flagged_for_review
    assert "quality" in done.review_reason


def test_every_step_is_idempotent(engagement):
    deliverable = deliver(engagement)
    evaluation = services.evaluation_start(deliverable_id=deliverable.pk)
    assert services.evaluation_start(deliverable_id=deliverable.pk).pk == evaluation.pk
    runs = list(evaluation.judge_runs.all())
    for run in runs + runs:
        services.judge_run_execute(judge_run_id=run.pk)
    services.evaluation_finalize(evaluation_id=evaluation.pk)
    services.evaluation_finalize(evaluation_id=evaluation.pk)
    assert JudgeVerdict.objects.filter(evaluation=evaluation).count() == 6
    assert ClauseResult.objects.filter(evaluation=evaluation).count() == 4
    assert EvidenceRecord.objects.filter(kind="evaluation.finalized").count() == 1
    assert all(r.attempts == 1 for r in JudgeRun.objects.filter(evaluation=evaluation))


def test_the_last_run_marks_finalize_enqueued_once(engagement):
    deliverable = deliver(engagement)
    evaluation = services.evaluation_start(deliverable_id=deliverable.pk)
    runs = list(evaluation.judge_runs.all())
    for run in runs[:-1]:
        services.judge_run_execute(judge_run_id=run.pk)
        assert not Evaluation.objects.get(pk=evaluation.pk).finalize_enqueued
    services.judge_run_execute(judge_run_id=runs[-1].pk)
    assert Evaluation.objects.get(pk=evaluation.pk).finalize_enqueued


def test_a_judge_that_keeps_failing_is_recorded_as_an_error(engagement):
    deliverable = deliver(engagement)
    evaluation = services.evaluation_start(deliverable_id=deliverable.pk)
    run = evaluation.judge_runs.get(judge="latency")
    # Three claims that never finished (a worker died each time).
    JudgeRun.objects.filter(pk=run.pk).update(attempts=services.MAX_JUDGE_ATTEMPTS, status="running")
    services.judge_run_execute(judge_run_id=run.pk)
    run.refresh_from_db()
    assert run.status == "error"
    verdict = JudgeVerdict.objects.get(judge_run=run)
    assert "did not finish after 3 attempts" in verdict.error


def test_verdicts_are_cached_and_reused_by_a_re_evaluation(engagement):
    deliverable = deliver(engagement)
    first = run_all(services.evaluation_start(deliverable_id=deliverable.pk))
    cached = VerdictCache.objects.count()
    assert cached == 6
    second = services.evaluation_reevaluate(evaluation_id=first.pk, reason="buyer disputed")
    assert second.round == 2
    assert "structure" in set(second.judge_runs.values_list("judge", flat=True))
    done = run_all(second)
    assert done.status == "done"
    assert JudgeVerdict.objects.filter(evaluation=done, cached=True).count() == 6
    assert JudgeVerdict.objects.filter(evaluation=done, cached=False).count() == 1  # the new juror
    assert VerdictCache.objects.count() == 7
    # Both rounds stay as evidence.
    assert Evaluation.objects.filter(deliverable=deliverable).count() == 2
    assert EvidenceRecord.objects.filter(kind="evaluation.finalized").count() == 2


def test_agreement_is_measured_over_jury_clauses():
    engagement = active_engagement()
    deliverable = deliver(engagement)
    done = run_all(services.evaluation_start(deliverable_id=deliverable.pk))
    # One jury clause, three judges who all passed it: perfect agreement.
    assert done.agreement_alpha == 1.0
    assert not done.flagged_for_review


def test_judges_that_disagree_flag_the_evaluation_for_review():
    engagement = active_engagement(task="Explain photosynthesis in plants for a child.")
    # Relevant to the criteria but not to the task: the jurors split.
    deliverable = deliver(engagement)
    done = run_all(services.evaluation_start(deliverable_id=deliverable.pk))
    votes = list(JudgeVerdict.objects.filter(evaluation=done, clause_key="quality").values_list("passed", flat=True))
    if len(set(votes)) > 1:
        assert done.agreement_alpha is not None
        assert done.agreement_alpha < 0.667
        assert done.flagged_for_review
        assert "disagree" in done.review_reason
    else:  # pragma: no cover - the jurors happen to agree on this text
        pytest.fail(f"expected a split jury, got {votes}")


@pytest.mark.parametrize(
    "output",
    [
        pytest.param('{"broken": json', id="wrong-json"),
        pytest.param("\x01\x02\x7f\xff\ufffd" * 5000, id="binary-junk"),
        pytest.param("x" * 199_000, id="long-text"),
        pytest.param({"nested": {"deep": ["json", 1, None]}}, id="json-object"),
    ],
)
def test_unparseable_deliveries_are_evaluated_with_a_reason(output):
    engagement = active_engagement()
    deliverable = deliver(engagement, output=output)
    done = run_all(services.evaluation_start(deliverable_id=deliverable.pk))
    assert done.status == "done"
    assert done.outcome in ("failed", "inconclusive")
    assert all(r.reason for r in done.clause_results.all())
    assert not JudgeRun.objects.filter(evaluation=done, status__in=["pending", "running"]).exists()


def test_sweeper_redispatches_stale_runs_and_finalizes_ready_evaluations(
    engagement, django_capture_on_commit_callbacks
):
    from datetime import timedelta

    deliverable = deliver(engagement)
    evaluation = services.evaluation_start(deliverable_id=deliverable.pk)
    for run in evaluation.judge_runs.all():
        services.judge_run_execute(judge_run_id=run.pk)
    Evaluation.objects.filter(pk=evaluation.pk).update(finalize_enqueued=False)
    JudgeRun.objects.filter(evaluation=evaluation, judge="latency").update(status="running", attempts=1)
    swept = services.evaluation_sweep(stale_after=timedelta(0))
    assert swept == {"runs": 1, "finalize": 0, "started": 0}
    JudgeRun.objects.filter(evaluation=evaluation, judge="latency").update(status="done")
    assert services.evaluation_sweep(stale_after=timedelta(0)) == {"runs": 0, "finalize": 1, "started": 0}


def test_the_jurys_rolling_agreement_is_recorded_at_each_finalize():
    first = run_all(services.evaluation_start(deliverable_id=deliver(active_engagement()).pk))
    assert first.panel_alpha == 1.0  # one unit so far, all jurors agree
    split = run_all(
        services.evaluation_start(
            deliverable_id=deliver(active_engagement(task="Explain photosynthesis in plants for a child.")).pk
        )
    )
    votes = list(JudgeVerdict.objects.filter(evaluation=split, clause_key="quality").values_list("judge", "passed"))
    assert split.panel_alpha is not None
    assert split.panel_alpha < 1.0, votes
    assert services.panel_agreement() == split.panel_alpha


def test_the_same_text_answering_another_task_is_judged_again():
    """The verdict cache keys on the task too: relevance depends on it."""
    run_all(services.evaluation_start(deliverable_id=deliver(active_engagement()).pk))
    other = run_all(
        services.evaluation_start(
            deliverable_id=deliver(active_engagement(task="Explain photosynthesis in plants for a child.")).pk
        )
    )
    assert not JudgeVerdict.objects.filter(evaluation=other, judge="task-relevance", cached=True).exists()
    assert JudgeVerdict.objects.filter(evaluation=other, judge="scope", cached=True).count() == 0


def test_the_sweeper_starts_a_delivery_whose_evaluation_never_started(engagement):
    from datetime import timedelta

    deliverable = deliver(engagement)  # in this test transaction the on-commit start never runs
    assert not Evaluation.objects.filter(deliverable=deliverable).exists()
    swept = services.evaluation_sweep(stale_after=timedelta(0))
    assert swept["started"] == 1
    assert Evaluation.objects.filter(deliverable=deliverable).count() == 1
    assert services.evaluation_sweep(stale_after=timedelta(0))["started"] == 0
