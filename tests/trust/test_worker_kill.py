"""A worker killed with SIGKILL in the middle of a judge task.

In a module of its own: its workers carry an LLM judge configuration that the
shared worker of other modules does not have, so no other worker may be alive.
"""

from __future__ import annotations

import json
import signal
import threading
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from tests.conftest import start_worker, stop_worker
from tests.trust.conftest import active_engagement, deliver
from tests.trust.test_pipeline_worker import assert_exactly_once, finished, wait_for
from trust import services
from trust.models import Evaluation, JudgeRun, JudgeVerdict

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


class HangingJudgeServer:
    """An OpenAI-compatible endpoint whose first request hangs (until released);
    later requests answer at once."""

    def __init__(self) -> None:
        self.first_request = threading.Event()
        self.release = threading.Event()
        self.requests = 0
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                server.requests += 1
                if not server.first_request.is_set():
                    server.first_request.set()
                    server.release.wait(60)
                verdict = {"score": 0.8, "passed": True, "rationale": "Meets the criteria."}
                body = json.dumps({"choices": [{"message": {"content": json.dumps(verdict)}}]}).encode()
                try:
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except OSError:
                    pass  # the worker that asked is dead

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def hanging_judge(settings, monkeypatch) -> Iterator[tuple[HangingJudgeServer, dict[str, str]]]:
    server = HangingJudgeServer()
    config = [
        {
            "name": "llm-slow",
            "base_url": server.url,
            "model": "test-model",
            "api_key_env": "PACTUM_TEST_LLM_KEY",
            "timeout_s": 120,
            "max_retries": 0,
        }
    ]
    settings.LLM_JUDGES = config
    monkeypatch.setenv("PACTUM_TEST_LLM_KEY", "test-key")
    yield server, {"LLM_JUDGES": json.dumps(config), "PACTUM_TEST_LLM_KEY": "test-key"}
    server.stop()


def test_a_worker_killed_mid_judge_ends_with_one_verdict_per_judge_and_one_finalize(hanging_judge):
    server, env = hanging_judge
    first = start_worker(env_overrides=env)
    try:
        engagement = active_engagement()
        deliver(engagement)
        assert server.first_request.wait(60), "the LLM judge was never called"
        # The worker is inside the LLM judge's task, its message unacknowledged: kill it.
        stop_worker(first, sig=signal.SIGKILL)
    finally:
        stop_worker(first, sig=signal.SIGKILL)

    evaluation = Evaluation.objects.get(engagement=engagement)
    stuck = JudgeRun.objects.get(evaluation=evaluation, judge="llm-slow")
    assert (stuck.status, stuck.attempts) == ("running", 1)
    assert evaluation.status != "done"

    second = start_worker(env_overrides=env)
    try:
        # The beat sweeper finds the abandoned run and dispatches it again.
        swept = services.evaluation_sweep(stale_after=timedelta(0))
        assert swept["runs"] >= 1
        evaluation = wait_for(finished(engagement), what="the evaluation to finish after the kill")
    finally:
        stop_worker(second)

    stuck.refresh_from_db()
    assert stuck.status == "done", (stuck.error, list(JudgeVerdict.objects.filter(judge_run=stuck).values("error")))
    assert stuck.attempts == 2
    assert JudgeVerdict.objects.filter(evaluation=evaluation, judge="llm-slow").count() == 1
    assert JudgeVerdict.objects.filter(evaluation=evaluation, clause_key="quality").count() == 4
    assert_exactly_once(evaluation)
