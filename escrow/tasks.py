"""Escrow tasks (queue `settlement`): ids in, one service call each, idempotent."""

from __future__ import annotations

from celery import shared_task
from django.db import DatabaseError

from escrow import services


@shared_task(name="escrow.tasks.perform_outbox_item", autoretry_for=(DatabaseError,), retry_backoff=5, max_retries=5)
def perform_outbox_item(item_id: int) -> None:
    services.outbox_perform(item_id=item_id)


@shared_task(name="escrow.tasks.fire_due_timers")
def fire_due_timers() -> int:
    return services.escrow_fire_due_timers()


@shared_task(name="escrow.tasks.sweep_outbox")
def sweep_outbox() -> int:
    return services.outbox_sweep()


@shared_task(
    name="escrow.tasks.process_webhook_event",
    autoretry_for=(DatabaseError, services.WebhookRetryLater),
    retry_backoff=5,
    retry_backoff_max=600,
    max_retries=8,
)
def process_webhook_event(event_id: str) -> None:
    """Apply one stored provider event (by its event id); a processed event is a no-op."""
    services.webhook_event_process(event_id=event_id)


@shared_task(name="escrow.tasks.sweep_webhook_events")
def sweep_webhook_events() -> int:
    return services.webhook_event_sweep()


@shared_task(name="escrow.tasks.lapse_dispute_answer_windows")
def lapse_dispute_answer_windows() -> int:
    from escrow import disputes

    return disputes.dispute_lapse_due()


@shared_task(
    name="escrow.tasks.send_dispute_notice",
    autoretry_for=(OSError, DatabaseError),
    retry_backoff=30,
    max_retries=5,
)
def send_dispute_notice(dispute_id: int, event: str) -> int:
    """E-mail the parties about a dispute event (SMTP failures are retried with backoff)."""
    from escrow import disputes

    return disputes.dispute_notify(dispute_id=dispute_id, event=event)
