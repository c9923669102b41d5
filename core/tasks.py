from celery import shared_task
from django.db import connection


@shared_task(name="core.tasks.ping")
def ping(token: str) -> dict[str, str]:
    """Round-trip check for the broker and a worker: echoes the token and says
    which database the worker is connected to."""
    return {"pong": token, "database": connection.settings_dict["NAME"].__str__()}
