"""Keeping the trust record: O(1) per finalized evaluation, settled task and ruled
dispute, and a full recomputation from the evaluation records (the nightly
refresh, and the oracle the incremental path is tested against).

What counts: per engagement, its latest finished evaluation round whose outcome
is passed or failed (inconclusive rounds wait for an admin and count for
nothing). A re-evaluation that reaches a verdict replaces the engagement's
earlier round: its contribution is taken back before the new one is added.
The job's weight decays from the round's `finished_at`.

Records exist per agent (category "") and per agent and job category. Dispute
rates count settled tasks and ruled disputes, which escrow reports through
`trust_task_settled` and `trust_dispute_ruled` (trust cannot import escrow).
"""

from __future__ import annotations

import datetime
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from marketplace.models import Engagement
from trust import policies
from trust.models import (
    ClauseResult,
    ClauseStat,
    DisputeOutcome,
    Evaluation,
    Outcome,
    SettledTask,
    TrustHistoryPoint,
    TrustRecord,
)
from trust.scoring import SECONDS_PER_DAY, Evidence, beta_interval, confidence

COUNTED = (Outcome.PASSED, Outcome.FAILED)


def half_life_seconds() -> float:
    return float(settings.TRUST_HALF_LIFE_DAYS) * SECONDS_PER_DAY


def _categories(category: str) -> list[str]:
    return [TrustRecord.ALL, category] if category else [TrustRecord.ALL]


def _locked_records(listing_id: int, categories: list[str], now: datetime.datetime) -> list[TrustRecord]:
    """The agent's records for these categories, created when missing, locked (in category order)."""
    TrustRecord.objects.bulk_create(
        [TrustRecord(listing_id=listing_id, category=c, decayed_to=now) for c in categories], ignore_conflicts=True
    )
    return list(
        TrustRecord.objects.select_for_update()
        .filter(listing_id=listing_id, category__in=categories)
        .order_by("category")
    )


def derive(record: TrustRecord) -> None:
    """Recompute the stored figures that follow from r, s and the counts."""
    interval = beta_interval(record.r, record.s)
    record.compliance_mean = interval.mean
    record.compliance_lower = interval.lower
    record.compliance_upper = interval.upper
    record.confidence = confidence(record.r, record.s, float(settings.TRUST_CONFIDENCE_K))
    record.rated = record.evidence_count >= settings.TRUST_MIN_EVIDENCE


def _evidence(record: TrustRecord, now: datetime.datetime) -> Evidence:
    return Evidence(record.r, record.s, record.decayed_to).decayed(now, half_life_seconds())


def _store(record: TrustRecord, evidence: Evidence) -> None:
    record.r, record.s, record.decayed_to = evidence.r, evidence.s, evidence.at
    derive(record)


def _previous_counted(evaluation: Evaluation) -> Evaluation | None:
    return (
        Evaluation.objects.filter(
            engagement_id=evaluation.engagement_id,
            status=Evaluation.Status.DONE,
            outcome__in=COUNTED,
            round__lt=evaluation.round,
        )
        .order_by("-round")
        .first()
    )


@transaction.atomic
def trust_record_evaluation(*, evaluation: Evaluation, now: datetime.datetime | None = None) -> bool:
    """Count one finalized evaluation in its agent's record (O(1)); False when it does not count."""
    if (
        evaluation.status != Evaluation.Status.DONE
        or evaluation.outcome not in COUNTED
        or evaluation.compliance is None
        or evaluation.finished_at is None
    ):
        return False
    now = now or timezone.now()
    listing_id, category = Engagement.objects.values_list("listing_id", "category").get(pk=evaluation.engagement_id)
    previous = _previous_counted(evaluation)
    hl = half_life_seconds()
    records = _locked_records(listing_id, _categories(category), now)
    for record in records:
        evidence = _evidence(record, now)
        if previous is not None and previous.compliance is not None and previous.finished_at is not None:
            evidence = evidence.add(previous.compliance, previous.finished_at, hl, sign=-1)
            record.evidence_count = max(record.evidence_count - 1, 0)
        evidence = evidence.add(evaluation.compliance, evaluation.finished_at, hl)
        record.evidence_count += 1
        if record.last_verified_at is None or evaluation.finished_at > record.last_verified_at:
            record.last_verified_at = evaluation.finished_at
        _store(record, evidence)
        record.save()
    _count_clauses(listing_id, evaluation.pk, +1)
    if previous is not None:
        _count_clauses(listing_id, previous.pk, -1)
    overall = records[0]  # category "" sorts first
    history_point_write(listing_id=listing_id, now=now, record=overall)
    policies.policies_apply(listing_id=listing_id, now=now, record=overall)
    return True


def _count_clauses(listing_id: int, evaluation_id: int, sign: int) -> None:
    results = list(
        ClauseResult.objects.filter(evaluation_id=evaluation_id).values_list("clause_key", "kind", "outcome")
    )
    ClauseStat.objects.bulk_create(
        [ClauseStat(listing_id=listing_id, clause_key=key, kind=kind) for key, kind, _ in results],
        ignore_conflicts=True,
    )
    for key, kind, outcome in results:
        column = {"passed": "passed", "failed": "failed"}.get(outcome, "inconclusive")
        ClauseStat.objects.filter(listing_id=listing_id, clause_key=key).update(kind=kind, **{column: F(column) + sign})


def _count_fact(
    fact: type[SettledTask] | type[DisputeOutcome],
    *,
    engagement_id: int,
    at: datetime.datetime,
    column: str,
    **fields: Any,
) -> tuple[int, TrustRecord] | None:
    """Store a fact about an engagement once and add one to `column` of its agent's records;
    None when the fact was already counted. Returns the agent and its agent-wide record."""
    listing_id, category = Engagement.objects.values_list("listing_id", "category").get(pk=engagement_id)
    _, created = fact.objects.get_or_create(
        engagement_id=engagement_id, defaults={"listing_id": listing_id, "category": category, **fields}
    )
    if not created:
        return None
    records = _locked_records(listing_id, _categories(category), at)
    for record in records:
        setattr(record, column, getattr(record, column) + 1)
        record.save(update_fields=[column, "updated_at"])
    return listing_id, records[0]


@transaction.atomic
def trust_task_settled(*, engagement_id: int, at: datetime.datetime | None = None) -> bool:
    """Escrow settled this engagement's money: one more task in the dispute-rate denominator (once)."""
    at = at or timezone.now()
    counted = _count_fact(SettledTask, engagement_id=engagement_id, at=at, column="settled_tasks", settled_at=at)
    if counted is None:
        return False
    listing_id, overall = counted
    policies.policies_apply(listing_id=listing_id, now=at, record=overall)
    return True


@transaction.atomic
def trust_dispute_ruled(*, engagement_id: int, upheld: bool, at: datetime.datetime | None = None) -> bool:
    """An admin ruled a dispute on this engagement: count it as upheld or rejected (once)."""
    at = at or timezone.now()
    column = "disputes_upheld" if upheld else "disputes_rejected"
    counted = _count_fact(
        DisputeOutcome, engagement_id=engagement_id, at=at, column=column, upheld=bool(upheld), ruled_at=at
    )
    if counted is None:
        return False
    listing_id, overall = counted
    history_point_write(listing_id=listing_id, now=at, record=overall)
    policies.policies_apply(listing_id=listing_id, now=at, record=overall)
    return True


# --- full recomputation ------------------------------------------------------------------------------


@dataclass
class Recomputed:
    evidence: Evidence
    evidence_count: int = 0
    last_verified_at: datetime.datetime | None = None
    settled_tasks: int = 0
    disputes_upheld: int = 0
    disputes_rejected: int = 0
    clauses: dict[str, dict[str, Any]] = field(default_factory=dict)


def trust_recompute(*, listing_id: int, now: datetime.datetime) -> dict[str, Recomputed]:
    """The agent's record per category, recomputed from the evaluation records alone."""
    hl = half_life_seconds()
    rows = (
        Evaluation.objects.filter(
            engagement__listing_id=listing_id,
            status=Evaluation.Status.DONE,
            outcome__in=COUNTED,
            finished_at__lte=now,  # the record as of `now` knows only the jobs finished by then
        )
        .order_by("engagement_id", "-round")
        .values_list("pk", "engagement_id", "engagement__category", "compliance", "finished_at")
    )
    out: dict[str, Recomputed] = defaultdict(lambda: Recomputed(Evidence(0.0, 0.0, now)))
    out[TrustRecord.ALL] = Recomputed(Evidence(0.0, 0.0, now))  # every agent has its agent-wide record
    counted: list[int] = []
    seen: set[int] = set()
    for pk, engagement_id, category, compliance, finished_at in rows:
        if engagement_id in seen or compliance is None or finished_at is None:
            continue  # an earlier round, replaced by the latest one (done rounds always carry both)
        seen.add(engagement_id)
        counted.append(pk)
        for c in _categories(category):
            rec = out[c]
            rec.evidence = rec.evidence.add(compliance, finished_at, hl)
            rec.evidence_count += 1
            if rec.last_verified_at is None or finished_at > rec.last_verified_at:
                rec.last_verified_at = finished_at
    settled = SettledTask.objects.filter(listing_id=listing_id, settled_at__lte=now)
    for category in settled.values_list("category", flat=True):
        for c in _categories(category):
            out[c].settled_tasks += 1
    ruled = DisputeOutcome.objects.filter(listing_id=listing_id, ruled_at__lte=now)
    for category, upheld in ruled.values_list("category", "upheld"):
        for c in _categories(category):
            if upheld:
                out[c].disputes_upheld += 1
            else:
                out[c].disputes_rejected += 1
    clauses = out[TrustRecord.ALL].clauses
    for key, kind, outcome in ClauseResult.objects.filter(evaluation_id__in=counted).values_list(
        "clause_key", "kind", "outcome"
    ):
        stat = clauses.setdefault(key, {"kind": kind, "passed": 0, "failed": 0, "inconclusive": 0})
        stat["kind"] = kind
        stat[{"passed": "passed", "failed": "failed"}.get(outcome, "inconclusive")] += 1
    return dict(out)


@transaction.atomic
def trust_refresh(*, listing_id: int, now: datetime.datetime | None = None) -> None:
    """Replace the agent's records with a full recomputation as of `now` (the nightly refresh)."""
    now = now or timezone.now()
    computed = trust_recompute(listing_id=listing_id, now=now)
    records = {r.category: r for r in _locked_records(listing_id, sorted(computed), now)}
    for category, values in computed.items():
        _fill(records[category], values)
        records[category].save()
    TrustRecord.objects.filter(listing_id=listing_id).exclude(category__in=list(computed)).delete()
    ClauseStat.objects.filter(listing_id=listing_id).delete()
    ClauseStat.objects.bulk_create(
        ClauseStat(
            listing_id=listing_id,
            clause_key=key,
            kind=stat["kind"],
            passed=stat["passed"],
            failed=stat["failed"],
            inconclusive=stat["inconclusive"],
        )
        for key, stat in computed[TrustRecord.ALL].clauses.items()
    )
    overall = records[TrustRecord.ALL]
    history_point_write(listing_id=listing_id, now=now, record=overall)
    policies.policies_apply(listing_id=listing_id, now=now, record=overall)


def _fill(record: TrustRecord, values: Recomputed) -> None:
    """Set a record to a recomputation's figures (and what follows from them)."""
    record.evidence_count = values.evidence_count
    record.last_verified_at = values.last_verified_at
    record.settled_tasks = values.settled_tasks
    record.disputes_upheld = values.disputes_upheld
    record.disputes_rejected = values.disputes_rejected
    _store(record, values.evidence)


def trust_refresh_all(*, now: datetime.datetime | None = None) -> int:
    """The nightly refresh: every agent with evidence, one transaction each."""
    now = now or timezone.now()
    with_evidence = set(
        Evaluation.objects.filter(status=Evaluation.Status.DONE).values_list("engagement__listing_id", flat=True)
    )
    with_records = set(TrustRecord.objects.values_list("listing_id", flat=True))
    listing_ids = sorted(with_evidence | with_records)
    for listing_id in listing_ids:
        trust_refresh(listing_id=listing_id, now=now)
    return len(listing_ids)


def _history_defaults(record: TrustRecord) -> dict[str, Any]:
    return {
        "compliance_mean": record.compliance_mean,
        "compliance_lower": record.compliance_lower,
        "compliance_upper": record.compliance_upper,
        "confidence": record.confidence,
        "evidence_count": record.evidence_count,
        "disputes_per_100": (100.0 * record.disputes / record.settled_tasks) if record.settled_tasks else 0.0,
    }


def history_point_write(*, listing_id: int, now: datetime.datetime, record: TrustRecord | None = None) -> None:
    """Today's point of the agent's history (the latest figures of the day win), from the
    agent-wide record given or read."""
    if record is None:
        record = TrustRecord.objects.filter(listing_id=listing_id, category=TrustRecord.ALL).first()
    if record is None:
        return
    TrustHistoryPoint.objects.update_or_create(
        listing_id=listing_id, day=timezone.localdate(now), defaults=_history_defaults(record)
    )


def trust_history_backfill(*, listing_id: int, days: int, now: datetime.datetime | None = None) -> int:
    """Write the agent's daily history points for the past `days` days from the
    evaluation records (records that predate the history, imported jobs)."""
    now = now or timezone.now()
    written = 0
    for back in range(days, 0, -1):
        moment = now - datetime.timedelta(days=back)
        values = trust_recompute(listing_id=listing_id, now=moment)[TrustRecord.ALL]
        if not values.evidence_count:
            continue
        record = TrustRecord()
        _fill(record, values)
        TrustHistoryPoint.objects.update_or_create(
            listing_id=listing_id, day=timezone.localdate(moment), defaults=_history_defaults(record)
        )
        written += 1
    return written
