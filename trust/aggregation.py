"""From verdicts to clause results to an evaluation outcome. Pure functions.

Rules (the design notes, section Trust):

- A deterministic clause is a gate: its authoritative judge's verdict decides;
  if that judge erred, the clause is inconclusive.
- Heuristic and jury clauses take a strict majority on `passed` among the
  judges that answered, and the median score. Fewer answers than the quorum
  (1 for heuristic clauses, the jury quorum for rubric clauses), or no strict
  majority, make the clause inconclusive.
- Outcome: a failed critical clause fails the job outright (it refunds in full
  whatever else happened); otherwise any inconclusive clause makes the job
  inconclusive (a human decides before money moves); otherwise the job passed
  when every clause passed and failed when any did not.
- Compliance of one job: the weighted share of clauses that passed.
- `hard_gates_passed`: every deterministic critical clause passed.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Vote:
    judge: str
    score: float | None
    passed: bool | None
    error: str = ""

    @property
    def answered(self) -> bool:
        return not self.error and self.passed is not None


@dataclass(frozen=True)
class ClauseOutcome:
    key: str
    kind: str
    method: str
    severity: str
    weight: int
    outcome: str
    score: float | None
    votes_for: int
    votes_against: int
    errors: int
    reason: str


def aggregate_clause(clause: dict[str, Any], votes: list[Vote], *, authority: str | None, quorum: int) -> ClauseOutcome:
    answered = [v for v in votes if v.answered]
    votes_for = sum(1 for v in answered if v.passed)
    votes_against = len(answered) - votes_for
    errors = len(votes) - len(answered)
    scores = [v.score for v in answered if v.score is not None]
    median = statistics.median(scores) if scores else None

    def result(outcome: str, reason: str, score: float | None = median) -> ClauseOutcome:
        return ClauseOutcome(
            key=clause["key"],
            kind=clause["kind"],
            method=clause["method"],
            severity=clause["severity"],
            weight=clause["weight"],
            outcome=outcome,
            score=score,
            votes_for=votes_for,
            votes_against=votes_against,
            errors=errors,
            reason=reason,
        )

    if clause["method"] == "deterministic":
        gate = next((v for v in votes if v.judge == authority), None)
        if gate is None or not gate.answered:
            why = gate.error if gate is not None else "no verdict"
            return result("inconclusive", f"The gate judge could not decide: {why}", None)
        return result(
            "passed" if gate.passed else "failed", "Gate passed." if gate.passed else "Gate failed.", gate.score
        )

    if len(answered) < quorum:
        return result("inconclusive", f"Lost quorum: {len(answered)} of {len(votes)} judges answered, {quorum} needed.")
    if votes_for * 2 > len(answered):
        return result("passed", f"{votes_for} of {len(answered)} judges passed it.")
    if votes_against * 2 > len(answered):
        return result("failed", f"{votes_against} of {len(answered)} judges failed it.")
    return result("inconclusive", f"No majority: {votes_for} for, {votes_against} against.")


@dataclass(frozen=True)
class EvaluationOutcome:
    outcome: str
    compliance: float
    hard_gates_passed: bool


def aggregate_evaluation(results: list[ClauseOutcome]) -> EvaluationOutcome:
    total_weight = sum(r.weight for r in results)
    passed_weight = sum(r.weight for r in results if r.outcome == "passed")
    compliance = passed_weight / total_weight if total_weight else 0.0
    gates = [r for r in results if r.method == "deterministic" and r.severity == "critical"]
    hard_gates_passed = all(r.outcome == "passed" for r in gates)
    if any(r.severity == "critical" and r.outcome == "failed" for r in results):
        outcome = "failed"
    elif any(r.outcome == "inconclusive" for r in results):
        outcome = "inconclusive"
    elif all(r.outcome == "passed" for r in results):
        outcome = "passed"
    else:
        outcome = "failed"
    return EvaluationOutcome(outcome=outcome, compliance=round(compliance, 6), hard_gates_passed=hard_gates_passed)


def jury_reliability(votes_by_clause: dict[str, list[Vote]]) -> list[list[int | None]]:
    """Reliability data for Krippendorff's alpha: rows = judges, columns = clauses,
    value = 1 (passed) / 0 (failed) / None (no answer)."""
    judges = sorted({v.judge for votes in votes_by_clause.values() for v in votes})
    keys = sorted(votes_by_clause)
    rows: list[list[int | None]] = []
    for judge in judges:
        row: list[int | None] = []
        for key in keys:
            vote = next((v for v in votes_by_clause[key] if v.judge == judge), None)
            row.append(None if vote is None or not vote.answered else int(bool(vote.passed)))
        rows.append(row)
    return rows
