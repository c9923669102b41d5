"""Evaluations through a real Celery worker on Redis with the offline panel.

Reports evaluations per second and p50/p95 from delivery to finalize. Run with
`make bench`; it asserts only that every evaluation finished, never a time.
"""

from __future__ import annotations

import statistics
import time

import pytest

from tests.conftest import start_worker, stop_worker
from tests.trust.conftest import active_engagement, deliver
from trust.models import Evaluation

N = 40
TIMEOUT_S = 300


@pytest.mark.django_db(transaction=True)
def test_evaluation_throughput(benchmark, django_db_setup):
    engagements = [active_engagement() for _ in range(N)]
    worker = start_worker()
    try:

        def run() -> dict[str, float]:
            started = time.monotonic()
            for engagement in engagements:
                deliver(engagement)
            deadline = started + TIMEOUT_S
            while Evaluation.objects.filter(engagement__in=engagements, status="done").count() < N:
                if time.monotonic() > deadline:
                    pytest.fail(f"evaluations did not finish within {TIMEOUT_S} s")
                time.sleep(0.1)
            wall = time.monotonic() - started
            latencies = sorted(
                (e.finished_at - e.deliverable.created_at).total_seconds()
                for e in Evaluation.objects.filter(engagement__in=engagements).select_related("deliverable")
                if e.finished_at is not None
            )
            return {
                "evaluations": N,
                "wall_s": round(wall, 3),
                "evaluations_per_s": round(N / wall, 2),
                "p50_s": round(statistics.median(latencies), 3),
                "p95_s": round(latencies[int(0.95 * (len(latencies) - 1))], 3),
            }

        figures = benchmark.pedantic(run, rounds=1, iterations=1)
    finally:
        stop_worker(worker)
    benchmark.extra_info.update(figures)
    print("\nevaluation pipeline:", figures)
    assert Evaluation.objects.filter(engagement__in=engagements, status="done").count() == N
