import uuid

import pytest
from django.db import connection

from config.celery import app
from core.tasks import ping


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_task_round_trips_through_redis_and_a_real_worker(celery_worker_process):
    token = uuid.uuid4().hex
    result = ping.delay(token)
    assert result.get(timeout=30) == {"pong": token, "database": connection.settings_dict["NAME"]}
    assert app.conf.broker_url.startswith("redis://")


def test_celery_is_configured_for_at_least_once_delivery():
    assert app.conf.task_acks_late is True
    assert app.conf.task_reject_on_worker_lost is True
    assert app.conf.task_serializer == "json"
    assert app.conf.accept_content == ["json"]
    assert {q.name for q in app.conf.task_queues} == {"default", "judges", "settlement"}
