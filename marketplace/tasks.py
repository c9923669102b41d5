"""Marketplace tasks: ids in, one service call each. They run on the `default`
queue (config/celery.py routes only trust and escrow elsewhere)."""

from __future__ import annotations

import logging

from celery import Task, shared_task

from marketplace import services

logger = logging.getLogger(__name__)

# Attempts at calling an agent endpoint, the first included, and the pause
# before each retry. Short: the buyer is waiting, and a delivery deadline of
# hours stays the backstop when an endpoint is down for longer.
MAX_ENDPOINT_ATTEMPTS = 3
ENDPOINT_RETRY_COUNTDOWNS_S = (10, 30)


@shared_task(bind=True, name="marketplace.tasks.call_agent_endpoint", max_retries=MAX_ENDPOINT_ATTEMPTS - 1)
def call_agent_endpoint(self: Task, engagement_id: int) -> None:
    """Call the engagement's agent endpoint; retry a failed attempt with backoff.

    The cap counts the engagement's DeliveryAttempt rows (the service refuses
    to call again once there are MAX_ENDPOINT_ATTEMPTS) rather than trusting
    Celery's retry counter alone, so a redelivered or re-enqueued message
    cannot call the agent more often. Each failure's reason stays in its
    DeliveryAttempt row.
    """
    attempt = services.engagement_call_agent(engagement_id=engagement_id, max_attempts=MAX_ENDPOINT_ATTEMPTS)
    if attempt is None or attempt.ok:
        return
    if attempt.number >= MAX_ENDPOINT_ATTEMPTS:
        logger.warning(
            "engagement %s: agent endpoint failed %s times, giving up: %s",
            engagement_id,
            attempt.number,
            attempt.error,
        )
        return
    countdown = ENDPOINT_RETRY_COUNTDOWNS_S[min(attempt.number, len(ENDPOINT_RETRY_COUNTDOWNS_S)) - 1]
    raise self.retry(countdown=countdown)
