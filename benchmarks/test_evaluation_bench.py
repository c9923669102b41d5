"""Evaluations through a real Celery worker on Redis with the offline panel.

Delivers N engagements through `marketplace.services.deliverable_submit` (whose
on-commit signal opens each evaluation and enqueues one `run_judge` task per
judge), then waits for a real worker (4 threads) to judge and finalize them all.
Reports evaluations per second (N / time from the first delivery stored to the
last evaluation finalized) and p50/p95 from delivery to finalize.

Run with `make bench`. It asserts that every evaluation finished correctly,
never a time. Each delivery is distinct (its `latency_ms` differs), so no
evaluation reuses another's cached verdicts: every judge really runs.
"""

from __future__ import annotations

import signal
import statistics
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from core.selectors import evidence_chain_verify
from tests.conftest import start_worker, stop_worker
from tests.trust.conftest import active_engagement, deliver
from trust.models import Evaluation, JudgeRun, JudgeVerdict

N = 40
TIMEOUT_S = 300  # setup, deliveries and judging; the worker's start has its own limit


@contextmanager
def overall_timeout(seconds: int) -> Iterator[None]:
    """Fail the benchmark (so its `finally` blocks run) if it takes longer than `seconds`."""

    def expire(signum, frame):
        pytest.fail(f"the evaluation benchmark did not finish within {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def _worker_log_tail(worker: subprocess.Popen) -> str:
    path = getattr(worker, "log_path", None)
    return Path(path).read_text(errors="replace")[-5000:] if path else ""


def _percentile(sorted_values: list[float], q: float) -> float:
    """Linear interpolation between closest ranks (numpy's default)."""
    position = q * (len(sorted_values) - 1)
    low = int(position)
    high = min(low + 1, len(sorted_values) - 1)
    return sorted_values[low] + (sorted_values[high] - sorted_values[low]) * (position - low)


def _wait_until_done(engagements: list, worker: subprocess.Popen, poll_s: float = 0.05) -> None:
    evaluations = Evaluation.objects.filter(engagement__in=engagements)
    while evaluations.filter(status=Evaluation.Status.DONE).count() < len(engagements):
        if worker.poll() is not None:
            pytest.fail(f"the celery worker died (exit {worker.returncode}):\n{_worker_log_tail(worker)}")
        time.sleep(poll_s)


@pytest.mark.django_db(transaction=True)
def test_evaluation_throughput(benchmark, django_db_setup, settings, capsys):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # setup only, not timed
    worker = start_worker()  # bounded by its own 60 s wait for a ping
    try:
        # The alarm is cancelled before the worker is stopped, so it can never interrupt the stop.
        with overall_timeout(TIMEOUT_S):
            engagements = [active_engagement() for _ in range(N)]

            def run() -> float:
                started = time.monotonic()
                for i, engagement in enumerate(engagements):
                    deliver(engagement, latency_ms=1200 + i)  # a distinct delivery hash: no shared verdict cache
                delivered = time.monotonic() - started
                _wait_until_done(engagements, worker)
                return delivered

            delivery_phase_s = benchmark.pedantic(run, rounds=1, iterations=1)
    except BaseException:
        print(f"\nworker log (tail):\n{_worker_log_tail(worker)}")
        raise
    finally:
        stop_worker(worker)

    evaluations = list(Evaluation.objects.filter(engagement__in=engagements).select_related("deliverable"))
    # Correctness: one finished round per delivery, every judge ran afresh, the good delivery passed.
    assert len(evaluations) == N
    assert {(e.round, e.status, e.outcome) for e in evaluations} == {(1, Evaluation.Status.DONE, "passed")}
    runs = JudgeRun.objects.filter(evaluation__in=evaluations)
    assert set(runs.values_list("status", flat=True)) == {JudgeRun.Status.DONE}
    verdicts = JudgeVerdict.objects.filter(evaluation__in=evaluations)
    assert not verdicts.exclude(error="").exists()
    assert not verdicts.filter(cached=True).exists()
    records, fault = evidence_chain_verify()
    assert fault is None, fault
    assert records >= 2 * N  # at least deliverable.submitted and evaluation.finalized for each

    finished = {e.pk: e.finished_at for e in evaluations if e.finished_at is not None}
    assert len(finished) == N
    first_delivery = min(e.deliverable.created_at for e in evaluations)
    last_finalize = max(finished.values())
    wall = (last_finalize - first_delivery).total_seconds()
    latencies = sorted((finished[e.pk] - e.deliverable.created_at).total_seconds() for e in evaluations)
    figures = {
        "evaluations": N,
        "judge_runs": runs.count(),
        "verdicts": verdicts.count(),
        "delivery_phase_s": round(delivery_phase_s, 3),
        "wall_s": round(wall, 3),
        "evaluations_per_s": round(N / wall, 2),
        "p50_s": round(statistics.median(latencies), 3),
        "p95_s": round(_percentile(latencies, 0.95), 3),
        "max_s": round(latencies[-1], 3),
    }
    benchmark.extra_info.update(figures)
    with capsys.disabled():  # shown by a plain `make bench`, not only with -s
        print("\nevaluation pipeline:", ", ".join(f"{key} {value}" for key, value in figures.items()))
