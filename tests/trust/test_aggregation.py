"""Aggregation tables: majority, ties, lost quorum, critical gate failure."""

import pytest

from trust.aggregation import ClauseOutcome, Vote, aggregate_clause, aggregate_evaluation, jury_reliability


def clause(method="jury", severity="major", weight=1, key="c", kind="rubric"):
    return {"key": key, "kind": kind, "method": method, "severity": severity, "weight": weight, "params": {}}


def votes(*spec):
    """'p' passed, 'f' failed, 'e' error; scores 0.9 / 0.2."""
    out = []
    for i, s in enumerate(spec):
        if s == "e":
            out.append(Vote(judge=f"j{i}", score=None, passed=None, error="timed out"))
        else:
            out.append(Vote(judge=f"j{i}", score=0.9 if s == "p" else 0.2, passed=s == "p"))
    return out


@pytest.mark.parametrize(
    ("spec", "quorum", "outcome", "reason"),
    [
        ("ppp", 3, "passed", "3 of 3"),
        ("ppf", 3, "passed", "2 of 3"),
        ("pff", 3, "failed", "2 of 3"),
        ("fff", 3, "failed", "3 of 3"),
        ("ppfe", 3, "passed", "2 of 3"),
        ("pfe", 3, "inconclusive", "Lost quorum: 2 of 3"),
        ("pp", 3, "inconclusive", "Lost quorum"),
        ("eee", 3, "inconclusive", "Lost quorum: 0 of 3"),
        ("ppff", 3, "inconclusive", "No majority: 2 for, 2 against"),
        ("pfpf", 4, "inconclusive", "No majority"),
        ("pppf", 4, "passed", "3 of 4"),
    ],
)
def test_jury_majority_table(spec, quorum, outcome, reason):
    result = aggregate_clause(clause(), votes(*spec), authority=None, quorum=quorum)
    assert result.outcome == outcome
    assert reason in result.reason


def test_median_score_over_answers():
    result = aggregate_clause(
        clause(),
        [Vote("a", 0.1, False), Vote("b", 0.7, True), Vote("c", 0.8, True), Vote("d", None, None, "boom")],
        authority=None,
        quorum=3,
    )
    assert result.score == 0.7
    assert (result.votes_for, result.votes_against, result.errors) == (2, 1, 1)


@pytest.mark.parametrize(("spec", "outcome"), [("p", "passed"), ("f", "failed"), ("e", "inconclusive")])
def test_a_gate_follows_its_authoritative_judge(spec, outcome):
    gate = clause(method="deterministic", kind="regex_forbidden")
    result = aggregate_clause(gate, votes(spec), authority="j0", quorum=1)
    assert result.outcome == outcome


def test_a_gate_ignores_advisory_judges():
    gate = clause(method="deterministic", kind="regex_forbidden")
    result = aggregate_clause(
        gate, [Vote("gate", 1.0, True), Vote("x", 0.0, False), Vote("y", 0.0, False)], authority="gate", quorum=1
    )
    assert result.outcome == "passed"


def test_heuristic_clauses_need_one_answer():
    heuristic = clause(method="heuristic", kind="citation_rate")
    assert aggregate_clause(heuristic, votes("f"), authority=None, quorum=1).outcome == "failed"
    assert aggregate_clause(heuristic, votes("e"), authority=None, quorum=1).outcome == "inconclusive"


def result(outcome, *, method="jury", severity="major", weight=1, key="c"):
    return ClauseOutcome(key, "k", method, severity, weight, outcome, None, 0, 0, 0, "")


@pytest.mark.parametrize(
    ("results", "outcome", "compliance", "gates"),
    [
        ([result("passed", weight=2), result("passed", key="d")], "passed", 1.0, True),
        ([result("passed", weight=3), result("failed", weight=1, key="d")], "failed", 0.75, True),
        ([result("passed", weight=3), result("inconclusive", key="d")], "inconclusive", 0.75, True),
        # A failed critical gate fails the job even when another clause is inconclusive.
        (
            [result("failed", method="deterministic", severity="critical"), result("inconclusive", key="d")],
            "failed",
            0.0,
            False,
        ),
        # A failed critical jury clause fails the job too, but hard gates are only deterministic ones.
        ([result("failed", severity="critical"), result("passed", key="d", weight=4)], "failed", 0.8, True),
        (
            [
                result("passed", method="deterministic", severity="critical"),
                result("failed", key="d", severity="minor"),
            ],
            "failed",
            0.5,
            True,
        ),
    ],
)
def test_evaluation_outcome_table(results, outcome, compliance, gates):
    summary = aggregate_evaluation(results)
    assert summary.outcome == outcome
    assert summary.compliance == pytest.approx(compliance)
    assert summary.hard_gates_passed is gates


def test_jury_reliability_matrix():
    data = jury_reliability(
        {"a": [Vote("x", 0.9, True), Vote("y", 0.1, False)], "b": [Vote("x", 0.9, True), Vote("y", None, None, "err")]}
    )
    assert data == [[1, 1], [0, None]]
