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
