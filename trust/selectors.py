"""Reads of the trust app for pages, API views and other apps."""

from __future__ import annotations

from typing import Any

from django.db.models import Count, Prefetch, Q

from trust.models import ClauseResult, Evaluation, JudgeRun, JudgeVerdict


def evaluation_latest(*, engagement_id: int) -> Evaluation | None:
    """The newest evaluation round of an engagement, with everything a report shows."""
    return (
        Evaluation.objects.filter(engagement_id=engagement_id)
        .select_related("pact_version")
        .prefetch_related(
            Prefetch("verdicts", queryset=JudgeVerdict.objects.order_by("clause_key", "judge")),
            Prefetch("clause_results", queryset=ClauseResult.objects.order_by("clause_key")),
            Prefetch("judge_runs", queryset=JudgeRun.objects.order_by("judge")),
        )
        .order_by("-round", "-id")
        .first()
    )


def evaluation_rounds(*, engagement_id: int) -> list[Evaluation]:
    return list(Evaluation.objects.filter(engagement_id=engagement_id).order_by("round", "id"))


def evaluation_summaries(*, engagement_ids: list[int]) -> dict[int, dict[str, Any]]:
    """{engagement id: {status, outcome}} of each engagement's latest round, in one query."""
    summaries: dict[int, dict[str, Any]] = {}
    rows = (
        Evaluation.objects.filter(engagement_id__in=engagement_ids)
        .order_by("engagement_id", "-round", "-id")
        .values("engagement_id", "status", "outcome", "round", "flagged_for_review")
    )
    for row in rows:
        summaries.setdefault(
            row["engagement_id"],
            {
                "status": row["status"],
                "outcome": row["outcome"] or None,
                "round": row["round"],
                "flagged_for_review": row["flagged_for_review"],
            },
        )
    return summaries


def evaluation_report(evaluation: Evaluation) -> dict[str, Any]:
    """The evaluation representation (design notes, HTTP API) from a prefetched evaluation."""
    runs = list(evaluation.judge_runs.all())
    done = sum(1 for r in runs if r.status in (JudgeRun.Status.DONE, JudgeRun.Status.ERROR))
    verdicts: dict[str, list[JudgeVerdict]] = {}
    for v in evaluation.verdicts.all():
        verdicts.setdefault(v.clause_key, []).append(v)
    results = {r.clause_key: r for r in evaluation.clause_results.all()}
    clauses = []
    for clause in evaluation.pact_version.clauses:
        result = results.get(clause["key"])
        clauses.append(
            {
                "key": clause["key"],
                "kind": clause["kind"],
                "method": clause["method"],
                "severity": clause["severity"],
                "weight": clause["weight"],
                "outcome": result.outcome if result else None,
                "score": result.score if result else None,
                "reason": result.reason if result else "",
                "verdicts": [
                    {
                        "judge": v.judge,
                        "version": v.judge_version,
                        "score": v.score,
                        "passed": v.passed,
                        "rationale": v.rationale,
                        "error": v.error or None,
                        "evidence": v.evidence,
                    }
                    for v in verdicts.get(clause["key"], [])
                ],
            }
        )
    return {
        "id": evaluation.pk,
        "round": evaluation.round,
        "status": evaluation.status,
        "outcome": evaluation.outcome or None,
        "compliance": evaluation.compliance,
        "agreement_alpha": evaluation.agreement_alpha,
        "panel_alpha": evaluation.panel_alpha,
        "hard_gates_passed": evaluation.hard_gates_passed,
        "flagged_for_review": evaluation.flagged_for_review,
        "review_reason": evaluation.review_reason,
        "progress": {"judges_done": done, "judges_total": len(runs)},
        "judges": [
            {
                "judge": r.judge,
                "version": r.judge_version,
                "status": r.status,
                "attempts": r.attempts,
                "error": r.error or None,
            }
            for r in runs
        ],
        "clauses": clauses,
        "created_at": evaluation.created_at.isoformat(),
        "finished_at": evaluation.finished_at.isoformat() if evaluation.finished_at else None,
    }


def evaluations_needing_review() -> Any:
    return Evaluation.objects.filter(Q(flagged_for_review=True) | Q(outcome="inconclusive")).annotate(
        verdict_count=Count("verdicts")
    )
