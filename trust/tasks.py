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


@shared_task(name="trust.tasks.refresh_trust_records")
def refresh_trust_records() -> int:
    """Nightly: recompute every agent's record from its evaluations (decay to now,
    a history point per agent per day, policies checked)."""
    return services.trust_refresh_all()


@shared_task(name="trust.tasks.remind_policy_reviews")
def remind_policy_reviews() -> int:
    from trust.policies import policy_review_reminders

    return policy_review_reminders()
