"""Liveness of the two things every request and task depends on."""

from __future__ import annotations

from django.db import connections

from config.celery import app as celery_app

BROKER_TIMEOUT_SECONDS = 2


def check_database() -> tuple[bool, str]:
    try:
        with connections["default"].cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as exc:  # any driver error means "not answering"
        return False, f"{type(exc).__name__}: {exc}"[:200]
    return True, "ok"


def check_broker() -> tuple[bool, str]:
    try:
        with celery_app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=BROKER_TIMEOUT_SECONDS)
            # Open a channel too: some transports connect lazily.
            conn.default_channel  # noqa: B018
    except Exception as exc:  # any transport error means "not answering"
        return False, f"{type(exc).__name__}: {exc}"[:200]
    return True, "ok"
