"""The evaluation pipeline through real Celery workers on the test Redis."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

import pytest
from django.db.models import Count

from core.models import EvidenceRecord
from marketplace.models import Engagement
from tests.trust.conftest import active_engagement, deliver
from trust.models import ClauseResult, Evaluation, JudgeRun, JudgeVerdict
from trust.tasks import finalize_evaluation, run_judge

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

T = TypeVar("T")


def wait_for(probe: Callable[[], T | None], *, timeout: float = 90, what: str = "") -> T:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = probe()
        if found:
            return found
        time.sleep(0.2)
    pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}")


def finished(engagement: Engagement) -> Callable[[], Evaluation | None]:
    return lambda: Evaluation.objects.filter(engagement=engagement, status="done").first()


def assert_exactly_once(evaluation: Evaluation) -> None:
    clause_count = len(evaluation.pact_version.clauses)
    duplicates = (
        JudgeVerdict.objects.filter(evaluation=evaluation)
        .values("clause_key", "judge")
        .annotate(n=Count("id"))
        .filter(n__gt=1)
    )
    assert list(duplicates) == []
    assert ClauseResult.objects.filter(evaluation=evaluation).count() == clause_count
    finalized = EvidenceRecord.objects.filter(kind="evaluation.finalized", payload__evaluation=evaluation.pk)
    assert finalized.count() == 1


def test_a_delivery_becomes_a_finished_evaluation(celery_worker_process):
    engagement = active_engagement()
    deliver(engagement)
    evaluation = wait_for(finished(engagement), what="the evaluation to finish")
    assert evaluation.outcome == "passed"
    assert JudgeRun.objects.filter(evaluation=evaluation, status="done").count() == 6
    assert Engagement.objects.get(pk=engagement.pk).status == "evaluated"
    assert_exactly_once(evaluation)


def test_duplicate_task_messages_do_not_duplicate_verdicts(celery_worker_process):
    engagement = active_engagement()
    deliver(engagement)
    evaluation = Evaluation.objects.get(engagement=engagement)
    # The same messages again, while the first ones may still be running...
    for run_id in evaluation.judge_runs.values_list("id", flat=True):
        run_judge.delay(run_id)
        run_judge.delay(run_id)
    evaluation = wait_for(finished(engagement), what="the evaluation to finish")
    # ... and once more after everything finished, waiting for each to be processed.
    results = [
        run_judge.apply_async(args=(run_id,), ignore_result=False)
        for run_id in evaluation.judge_runs.values_list("id", flat=True)
    ]
    results.append(finalize_evaluation.apply_async(args=(evaluation.pk,), ignore_result=False))
    for result in results:
        result.get(timeout=60)
    assert_exactly_once(evaluation)
    assert all(run.attempts == 1 for run in JudgeRun.objects.filter(evaluation=evaluation))
