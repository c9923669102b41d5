"""Periodic tasks run by `celery beat`.

Timers (review windows, delivery deadlines, dispute answer windows) are rows with
a due time; the tasks listed here scan them. Later apps add their entries.
"""

from typing import Any

from celery.schedules import crontab

BEAT_SCHEDULE: dict[str, dict[str, Any]] = {
    "purge-idempotency-records": {"task": "core.tasks.idempotency_purge", "schedule": 3600.0},
    # Re-dispatch judge runs a dead worker left behind; finalize what is ready.
    "sweep-evaluations": {"task": "trust.tasks.sweep_evaluations", "schedule": 60.0},
    # Review windows and delivery deadlines that came due; payouts and refunds to retry.
    "fire-escrow-timers": {"task": "escrow.tasks.fire_due_timers", "schedule": 30.0},
    "sweep-outbox": {"task": "escrow.tasks.sweep_outbox", "schedule": 60.0},
    "sweep-webhook-events": {"task": "escrow.tasks.sweep_webhook_events", "schedule": 60.0},
    # Dispute answer windows that lapsed: recorded, and the case goes to review.
    "lapse-dispute-answer-windows": {"task": "escrow.tasks.lapse_dispute_answer_windows", "schedule": 60.0},
    # Trust records recomputed and decayed to today, a history point per agent.
    "refresh-trust-records": {"task": "trust.tasks.refresh_trust_records", "schedule": crontab(hour=3, minute=15)},
    # Owners of trust policies due for review get one reminder.
    "remind-policy-reviews": {"task": "trust.tasks.remind_policy_reviews", "schedule": crontab(hour=8, minute=0)},
}
