"""`make run` from a clean clone: installs into its own .venv, migrates, seeds,
starts web + worker + beat, answers /healthz, and stops everything on Ctrl-C;
a second run on the same clone works too."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import ROOT, free_port

pytestmark = pytest.mark.slow

# Variables that would point the clone at the test services instead of its embedded default.
_SCRUB = {"DATABASE_URL", "CELERY_BROKER_URL", "CELERY_RESULT_BACKEND", "REDIS_URL", "PACTUM_DATA_DIR", "DEBUG", "PORT"}


def _healthz(port: int) -> tuple[int, dict] | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return None


def _start(clone: Path, port: int, log: Path) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if k not in _SCRUB and not k.startswith("PYTEST")}
    env["PORT"] = str(port)
    return subprocess.Popen(
        ["make", "run"],
        cwd=clone,
        env=env,
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )


def _wait_healthy(proc: subprocess.Popen, port: int, log: Path, timeout: float) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"make run exited with {proc.returncode}:\n{log.read_text()[-4000:]}")
        answer = _healthz(port)
        if answer and answer[0] == 200:
            return answer[1]
        time.sleep(1)
    pytest.fail(f"/healthz did not answer 200 within {timeout:.0f} s:\n{log.read_text()[-4000:]}")


def _ctrl_c(proc: subprocess.Popen, port: int) -> None:
    if proc.poll() is not None:
        return  # it already exited; the caller reports why
    os.killpg(proc.pid, signal.SIGINT)
    try:
        proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        pytest.fail("make run did not stop within 60 s of Ctrl-C")
    # Every process of the group is gone: nothing answers on the port any more.
    deadline = time.monotonic() + 20
    while _healthz(port) is not None and time.monotonic() < deadline:
        time.sleep(0.5)
    assert _healthz(port) is None
    try:
        os.killpg(proc.pid, 0)
    except ProcessLookupError:
        pass
    else:
        pytest.fail("processes of make run are still alive after Ctrl-C")


def test_make_run_from_a_clean_clone_answers_healthz_and_stops_on_ctrl_c(tmp_path):
    if not (ROOT / ".git").exists():
        pytest.fail("this test clones the repository; run it from a git checkout")
    clone = tmp_path / "pactum"
    subprocess.run(["git", "clone", "--quiet", str(ROOT), str(clone)], check=True)
    port = free_port()
    log = tmp_path / "make-run.log"

    first = _start(clone, port, log)
    try:
        body = _wait_healthy(first, port, log, timeout=420)
        assert body["database"]["ok"] is True
        assert body["broker"]["ok"] is True
    finally:
        _ctrl_c(first, port)
    output = log.read_text()
    assert "Demo data ready" in output
    assert f"http://127.0.0.1:{port}/" in output
    assert "admin" in output
    assert (clone / ".venv" / "bin" / "python").exists()
    assert (clone / "var" / "pactum.sqlite3").exists()

    second = _start(clone, port, log)
    try:
        _wait_healthy(second, port, log, timeout=120)
    finally:
        _ctrl_c(second, port)
