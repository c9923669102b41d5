"""Timings for the core paths (run with `make bench`; never part of `make test`)."""

import pytest

from core.money import allocate, split_bps
from core.selectors import evidence_chain_verify
from core.services import evidence_append

PAYLOAD = {"engagement": 42, "verdicts": [{"judge": f"j{i}", "score": i / 10, "passed": i % 2 == 0} for i in range(8)]}


@pytest.mark.django_db
def test_evidence_append(benchmark):
    benchmark(evidence_append, kind="bench", subject="engagement:42", payload=PAYLOAD)


@pytest.mark.django_db
def test_evidence_verify_2000_records(benchmark):
    for i in range(2000):
        evidence_append(kind="bench", subject=f"engagement:{i}", payload=PAYLOAD)
    count, fault = benchmark(evidence_chain_verify)
    assert count == 2000
    assert fault is None


def test_split_and_allocate(benchmark):
    def work() -> None:
        for total in range(1, 2001):
            split_bps(total * 97, 1234)
            allocate(total * 97, [3, 2, 5, 1])

    benchmark(work)
