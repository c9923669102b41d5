"""Shared fixtures. The services (PostgreSQL, Redis, Chromium) are started by
`make test` (scripts/test.sh) and reach the tests through the environment."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.core.cache import cache
from rest_framework.test import APIClient

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def _fresh_cache() -> Iterator[None]:
    # Throttle counters live in the cache; each test starts with none.
    cache.clear()
    yield
    cache.clear()


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings) -> None:
    # PBKDF2 at production strength costs ~0.3 s per user; tests create hundreds.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def api_client() -> APIClient:
    return APIClient()


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def database_url_for(settings_dict: dict) -> str:
    """The URL of the database the tests use (pytest-django's test database)."""
    user = settings_dict.get("USER") or ""
    password = settings_dict.get("PASSWORD") or ""
    auth = f"{user}:{password}@" if password else (f"{user}@" if user else "")
    host = settings_dict.get("HOST") or "127.0.0.1"
    port = settings_dict.get("PORT") or 5432
    return f"postgres://{auth}{host}:{port}/{settings_dict['NAME']}"


def start_worker(*, env_overrides: dict[str, str] | None = None, hostname: str | None = None) -> subprocess.Popen:
    """Start a real `celery worker` process on every queue, writing to the test
    database, and wait until it answers a ping. Stop it with `stop_worker`."""
    from django.db import connection

    from config.celery import app

    if not os.environ.get("CELERY_BROKER_URL", "").startswith("redis://"):
        pytest.fail("CELERY_BROKER_URL must point at the test Redis; run the tests with `make test`.")
    env = {**os.environ, "DATABASE_URL": database_url_for(connection.settings_dict), **(env_overrides or {})}
    hostname = hostname or f"pactum-test-{os.getpid()}-{time.monotonic_ns()}@localhost"
    # A file, not a pipe: nobody reads a pipe while the worker runs, and a full one would block it.
    log = tempfile.NamedTemporaryFile(prefix="pactum-worker-", suffix=".log", delete=False)  # noqa: SIM115
    proc = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "celery"),
            "-A",
            "config",
            "worker",
            "--loglevel",
            "INFO",
            "--queues",
            "default,judges,settlement",
            "--pool",
            "threads",
            "--concurrency",
            "4",
            "--hostname",
            hostname,
            "--without-gossip",
            "--without-mingle",
        ],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    proc.log_path = log.name  # type: ignore[attr-defined]
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"celery worker exited early:\n{Path(log.name).read_text()[-5000:]}")
        if app.control.ping(destination=[hostname], timeout=1.0):
            return proc
    os.killpg(proc.pid, signal.SIGKILL)
    pytest.fail("celery worker did not answer a ping within 60 s")


def stop_worker(proc: subprocess.Popen, *, sig: int = signal.SIGTERM) -> None:
    try:
        os.killpg(proc.pid, sig)
    except ProcessLookupError:
        pass
    else:
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    log_path = getattr(proc, "log_path", None)
    if log_path:
        Path(log_path).unlink(missing_ok=True)


@pytest.fixture(scope="module")
def celery_worker_process(django_db_setup, django_db_blocker) -> Iterator[subprocess.Popen]:
    """A real worker for the tests of one module (module scope, so a module that
    starts workers of its own never competes with this one). Tests that use it
    need committed data (`@pytest.mark.django_db(transaction=True)`)."""
    proc = start_worker()
    yield proc
    stop_worker(proc)


class RedisServer:
    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        binary = shutil.which("redis-server")
        if binary is None:
            pytest.fail("redis-server is not installed; run the tests with `make test`.")
        self.proc = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--dir", str(workdir)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        import redis

        client = redis.Redis(port=self.port)
        for _ in range(100):
            try:
                client.ping()
                return
            except redis.ConnectionError:
                time.sleep(0.05)
        pytest.fail("a throwaway redis-server did not start")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    """A Redis of the test's own, which the test may stop."""
    server = RedisServer(tmp_path)
    yield server
    server.stop()
