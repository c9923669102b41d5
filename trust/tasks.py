"""Trust tasks (queue `judges`): ids in, one service call each, idempotent."""

from __future__ import annotations

from celery import shared_task
from django.db import DatabaseError

from trust import services


@shared_task(
    name="trust.tasks.run_judge",
    autoretry_for=(DatabaseError,),
    retry_backoff=5,
    retry_backoff_max=60,
    retry_jitter=True,
    max_retries=3,
)
def run_judge(judge_run_id: int) -> None:
    services.judge_run_execute(judge_run_id=judge_run_id)


@shared_task(
    name="trust.tasks.finalize_evaluation",
    autoretry_for=(DatabaseError,),
    retry_backoff=5,
    retry_backoff_max=60,
    retry_jitter=True,
    max_retries=5,
)
def finalize_evaluation(evaluation_id: int) -> None:
    services.evaluation_finalize(evaluation_id=evaluation_id)


@shared_task(name="trust.tasks.sweep_evaluations")
def sweep_evaluations() -> dict[str, int]:
    return services.evaluation_sweep()
