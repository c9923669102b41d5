"""Reads of the trust app for pages, API views and other apps."""

from __future__ import annotations

import datetime
from typing import Any

from django.conf import settings
from django.db.models import Count, F, FilteredRelation, Prefetch, Q, QuerySet, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from marketplace.models import AgentListing
from trust.models import (
    ClauseResult,
    ClauseStat,
    EscalationEvent,
    Evaluation,
    JudgeRun,
    JudgeVerdict,
    TrustHistoryPoint,
    TrustPolicy,
    TrustRecord,
)
from trust.policies import Consequences, applies, consequences_for, crossed, metric_value, overrides_among
from trust.scoring import benchmark_fit, beta_interval, wilson_interval


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


# --- the trust record ------------------------------------------------------------------------------

MEASURED = (
    "Pact compliance: the weighted share of pact clauses kept per judged job, as a Beta posterior "
    "(mean and 95% credible interval); ranked by the interval's lower bound."
)
HISTORY_DAYS = 180


def window_text() -> str:
    return (
        f"All judged jobs, each weighing half as much every {settings.TRUST_HALF_LIFE_DAYS:g} days; "
        f"agents with fewer than {settings.TRUST_MIN_EVIDENCE} judged jobs are unrated."
    )


def listing_consequences(*, listing_id: int) -> Consequences:
    """What open escalations make the platform do for this agent (escrow reads it)."""
    events = list(
        EscalationEvent.objects.filter(listing_id=listing_id, status=EscalationEvent.Status.OPEN).select_related(
            "policy"
        )
    )
    return consequences_for(events)


def listings_ranked(qs: QuerySet[AgentListing], *, category: str = "") -> QuerySet[AgentListing]:
    """Order listings by trust: rated agents first, then the compliance lower bound
    (of the category when one is chosen), ties by evidence count."""
    return (
        qs.annotate(trust_record=FilteredRelation("trust_records", condition=Q(trust_records__category=category or "")))
        .annotate(
            trust_rated=Coalesce(F("trust_record__rated"), Value(False)),
            trust_lower=Coalesce(F("trust_record__compliance_lower"), Value(0.0)),
            trust_evidence=Coalesce(F("trust_record__evidence_count"), Value(0)),
        )
        .order_by("-trust_rated", "-trust_lower", "-trust_evidence", "-created_at", "-id")
    )


def _freshness(last: datetime.datetime | None, now: datetime.datetime) -> int | None:
    return None if last is None else max(int((now - last).total_seconds()), 0)


def _disputes(record: TrustRecord | None) -> dict[str, Any]:
    n = record.settled_tasks if record else 0
    upheld = record.disputes_upheld if record else 0
    rejected = record.disputes_rejected if record else 0
    low, high = wilson_interval(upheld + rejected, n)
    return {
        "rate": round(100.0 * (upheld + rejected) / n, 2) if n else 0.0,
        "lower": round(100.0 * low, 2),
        "upper": round(100.0 * high, 2),
        "upheld": upheld,
        "rejected": rejected,
        "settled_tasks": n,
    }


def _compliance(record: TrustRecord | None) -> dict[str, float]:
    if record is None:
        prior = beta_interval(0.0, 0.0)
        return {"mean": round(prior.mean, 4), "lower": round(prior.lower, 4), "upper": round(prior.upper, 4)}
    return {
        "mean": round(record.compliance_mean, 4),
        "lower": round(record.compliance_lower, 4),
        "upper": round(record.compliance_upper, 4),
    }


def _escalation(event: EscalationEvent) -> dict[str, Any]:
    return {
        "id": event.pk,
        "policy": event.policy.name,
        "metric": event.metric,
        "comparator": event.comparator,
        "threshold": event.threshold,
        "value": round(event.metric_value, 4),
        "action": event.action,
        "action_label": event.action_label,
        "status": event.status,
        "created_at": event.created_at.isoformat(),
        "resolved_at": event.resolved_at.isoformat() if event.resolved_at else None,
    }


def summary_from(record: TrustRecord | None, events: list[EscalationEvent], now: datetime.datetime) -> dict[str, Any]:
    consequences = consequences_for(events)
    return {
        "compliance": _compliance(record),
        "confidence": round(record.confidence, 4) if record else 0.0,
        "evidence_count": record.evidence_count if record else 0,
        "rated": bool(record and record.rated),
        "last_verified_at": record.last_verified_at.isoformat() if record and record.last_verified_at else None,
        "freshness_seconds": _freshness(record.last_verified_at if record else None, now),
        "disputes_per_100": _disputes(record),
        "flagged": consequences.flagged,
        "consequences": [_escalation(e) for e in events],
    }


def trust_summaries(
    *, listing_ids: list[int], category: str = "", now: datetime.datetime | None = None
) -> dict[int, dict[str, Any]]:
    """The trust summary of many agents in two queries (listing cards, the API list, the leaderboard)."""
    now = now or timezone.now()
    records = {r.listing_id: r for r in TrustRecord.objects.filter(listing_id__in=listing_ids, category=category or "")}
    events: dict[int, list[EscalationEvent]] = {}
    for event in EscalationEvent.objects.filter(
        listing_id__in=listing_ids, status=EscalationEvent.Status.OPEN
    ).select_related("policy"):
        events.setdefault(event.listing_id, []).append(event)
    return {pk: summary_from(records.get(pk), events.get(pk, []), now) for pk in listing_ids}


def policies_in_force() -> list[dict[str, Any]]:
    return [
        {
            "id": p.pk,
            "name": p.name,
            "metric": p.metric,
            "comparator": p.comparator,
            "threshold": p.threshold,
            "action": p.action,
            "min_evidence": p.min_evidence,
            "text": p.describe(),
        }
        for p in TrustPolicy.objects.filter(active=True).order_by("name")
    ]


def trust_report(*, listing: AgentListing, category: str = "", now: datetime.datetime | None = None) -> dict[str, Any]:
    """Everything on an agent's trust page and `GET /agents/{id}/trust/`; a constant number of queries."""
    now = now or timezone.now()
    category = category or ""
    records = {r.category: r for r in TrustRecord.objects.filter(listing=listing)}
    record = records.get(category)
    events = list(EscalationEvent.objects.filter(listing=listing).select_related("policy").order_by("-created_at"))
    open_events = [e for e in events if e.status == EscalationEvent.Status.OPEN]
    report = {"agent": listing.pk, "category": category, **summary_from(record, open_events, now)}
    report["as_of"] = record.decayed_to.isoformat() if record else None
    report["settings"] = {
        "half_life_days": settings.TRUST_HALF_LIFE_DAYS,
        "confidence_k": settings.TRUST_CONFIDENCE_K,
        "min_evidence": settings.TRUST_MIN_EVIDENCE,
    }
    report["measured"] = MEASURED
    report["window"] = window_text()
    report["by_category"] = [
        {"category": c, **summary_from(r, [], now)} for c, r in sorted(records.items()) if c != TrustRecord.ALL
    ]
    today = timezone.localdate(now)
    report["benchmark_fit"] = []
    for claim in listing.benchmark_claims.all():
        fit = benchmark_fit(
            claim.categories or [],
            claim.measured_on,
            category,
            listing_categories=listing.categories or [],
            today=today,
            half_life_days=settings.BENCHMARK_FIT_HALF_LIFE_DAYS,
        )
        report["benchmark_fit"].append(
            {
                "claim": claim.pk,
                "benchmark": claim.benchmark,
                "score": claim.score,
                "measured_on": claim.measured_on.isoformat(),
                "categories": claim.categories,
                "source_url": claim.source_url,
                "fit": round(fit.value, 3),
                "level": fit.level,
                "relevance": fit.relevance,
                "age_factor": round(fit.age_factor, 3),
                "reason": fit.reason,
            }
        )
    since = today - datetime.timedelta(days=HISTORY_DAYS)
    report["history"] = [
        {
            "day": p.day.isoformat(),
            "mean": round(p.compliance_mean, 4),
            "lower": round(p.compliance_lower, 4),
            "upper": round(p.compliance_upper, 4),
            "confidence": round(p.confidence, 4),
            "evidence_count": p.evidence_count,
            "disputes_per_100": round(p.disputes_per_100, 2),
        }
        for p in TrustHistoryPoint.objects.filter(listing=listing, day__gte=since).order_by("day")
    ]
    report["clauses"] = [
        {
            "key": c.clause_key,
            "kind": c.kind,
            "passed": c.passed,
            "failed": c.failed,
            "inconclusive": c.inconclusive,
            "rate": round(c.rate, 4) if c.rate is not None else None,
        }
        for c in sorted(
            ClauseStat.objects.filter(listing=listing),
            key=lambda c: (c.rate if c.rate is not None else 2.0, c.clause_key),
        )
    ]
    report["escalations"] = [_escalation(e) for e in events]
    overall = records.get(TrustRecord.ALL)
    report["policies"] = []
    overridden = overrides_among(events, overall) if overall else set()
    for policy in TrustPolicy.objects.filter(active=True).order_by("name"):
        value = metric_value(policy.metric, overall, now) if overall else None
        is_open = any(e.policy_id == policy.pk for e in open_events)
        is_crossed = overall is not None and crossed(policy, overall, now) is not None
        if is_open:
            state = "triggered"
        elif is_crossed:
            state = "overridden" if policy.pk in overridden else "crossed"
        else:
            state = "clear" if overall is not None and applies(policy, overall) else "not_applicable"
        report["policies"].append(
            {
                "name": policy.name,
                "text": policy.describe(),
                "metric": policy.metric,
                "comparator": policy.comparator,
                "threshold": policy.threshold,
                "action": policy.action,
                "applies": bool(overall and applies(policy, overall)),
                "value": round(value, 4) if value is not None else None,
                "open": is_open,
                # triggered (an open escalation), overridden (crossed, but staff resolved it and
                # it waits for new evidence), crossed (fires at the next update), clear, not_applicable
                "state": state,
            }
        )
    return report


def escalations_open() -> QuerySet[EscalationEvent]:
    """The staff queue's escalations, oldest first."""
    return (
        EscalationEvent.objects.filter(status=EscalationEvent.Status.OPEN)
        .select_related("listing", "listing__seller", "policy")
        .order_by("created_at", "id")
    )
