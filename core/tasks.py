from celery import shared_task
from django.db import connection

from core import idempotency


@shared_task(name="core.tasks.ping", ignore_result=False)
def ping(token: str) -> dict[str, str]:
    """Round-trip check for the broker and a worker: echoes the token and says
    which database the worker is connected to."""
    return {"pong": token, "database": str(connection.settings_dict["NAME"])}


@shared_task(name="core.tasks.idempotency_purge")
def idempotency_purge() -> int:
    return idempotency.idempotency_purge()
