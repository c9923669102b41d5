"""The Celery app shared by the web process, workers and beat.

Reliability choices: a task is acknowledged only after it ran (`acks_late`) and
is redelivered if its worker dies, so every task must be idempotent; payloads
are JSON (ids in, never pickled objects); three queues keep slow outbound
judging away from money movements.
"""

import os

from celery import Celery
from kombu import Queue

from config.beat_schedule import BEAT_SCHEDULE

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("pactum")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.conf.update(
    task_acks_late=True,
    task_reject_on_worker_lost=True,
    task_serializer="json",
    result_serializer="json",
    accept_content=["json"],
    task_ignore_result=True,
    task_default_queue="default",
    task_queues=(Queue("default"), Queue("judges"), Queue("settlement")),
    task_routes={
        "trust.tasks.refresh_trust_records": {"queue": "default"},
        "trust.tasks.remind_policy_reviews": {"queue": "default"},
        "trust.tasks.*": {"queue": "judges"},
        "escrow.tasks.*": {"queue": "settlement"},
    },
    worker_prefetch_multiplier=1,
    broker_connection_retry_on_startup=True,
    timezone="UTC",
    beat_schedule=BEAT_SCHEDULE,
)

app.autodiscover_tasks()
