"""The evaluation pipeline: every write of the trust app.

deliverable stored -> `evaluation_start` (Evaluation + one JudgeRun per judge,
tasks enqueued on commit) -> `judge_run_execute` per judge (claim, judge with
no transaction open, record) -> the last run to finish enqueues
`evaluation_finalize` (aggregate, agreement, evidence, signal on commit).

Every step is idempotent: a redelivered or duplicated task message finds the
work done and stops; verdicts are unique per (evaluation, clause, judge); the
finalize step runs once under a row lock. `evaluation_sweep` (beat) re-enqueues
what a dead worker left behind and gives up on a judge after
`MAX_JUDGE_ATTEMPTS`, recording it as an error.
"""

from __future__ import annotations

import hashlib
import logging
from collections import defaultdict
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from core.evidence import canonical_json
from core.services import evidence_append
from marketplace import lock_objects as marketplace_lock_objects
from marketplace import services as marketplace_services
from marketplace.models import Deliverable, Engagement
from trust import judges, metrics, signals
from trust.aggregation import Vote, aggregate_clause, aggregate_evaluation, jury_reliability
from trust.agreement import alpha_or_none

# The trust record's writers other apps call (escrow reports settlements and rulings).
from trust.metrics import trust_dispute_ruled, trust_refresh, trust_refresh_all, trust_task_settled
from trust.models import ClauseResult, Evaluation, JudgeRun, JudgeVerdict, VerdictCache
from trust.policies import escalation_resolve, policy_mark_reviewed

__all__ = [
    "escalation_resolve",
    "policy_mark_reviewed",
    "trust_dispute_ruled",
    "trust_refresh",
    "trust_refresh_all",
    "trust_task_settled",
]

logger = logging.getLogger(__name__)

MAX_JUDGE_ATTEMPTS = 3
ALPHA_REVIEW_THRESHOLD = 0.667
PANEL_WINDOW = 200  # evaluations in the rolling per-panel agreement


def jury_quorum() -> int:
    return int(getattr(settings, "JURY_QUORUM", 3))


def clause_hash(clause: dict[str, Any]) -> str:
    return hashlib.sha256(canonical_json(clause).encode()).hexdigest()


def delivery_hash(deliverable: Deliverable, engagement: Engagement) -> str:
    """What a verdict depends on besides the clause: the delivery *and* the task it
    answers (the same text can answer one task well and another badly)."""
    return hashlib.sha256(f"{deliverable.content_hash}:{canonical_json(engagement.task)}".encode()).hexdigest()


def _delivery(deliverable: Deliverable, engagement: Engagement) -> judges.Delivery:
    return judges.Delivery(
        output=deliverable.output,
        citations=list(deliverable.citations or []),
        actions=list(deliverable.actions or []),
        latency_ms=deliverable.latency_ms,
        task=engagement.task,
        content_hash=delivery_hash(deliverable, engagement),
    )


# --- start --------------------------------------------------------------------------------


@transaction.atomic
def evaluation_start(*, deliverable_id: int, round: int = 1, extended: bool = False, reason: str = "") -> Evaluation:
    """Open round `round` of a deliverable's evaluation and dispatch its judges (idempotent)."""
    deliverable = Deliverable.objects.select_related("engagement__pact_version").get(pk=deliverable_id)
    engagement = deliverable.engagement
    pact = engagement.pact_version
    if pact is None:  # pragma: no cover - delivery requires an active engagement, hence a locked pact
        raise ValueError("an engagement without a locked pact cannot be evaluated")
    evaluation, created = Evaluation.objects.get_or_create(
        deliverable=deliverable,
        round=round,
        defaults={"engagement": engagement, "pact_version": pact, "reason": reason[:300]},
    )
    if not created:
        return evaluation
    panel: dict[str, list[str]] = defaultdict(list)
    for clause in pact.clauses:
        for name in judges.default_panel(clause["kind"], extended=extended, extra=clause.get("judges")):
            panel[name].append(clause["key"])
    runs = [
        JudgeRun.objects.create(evaluation=evaluation, judge=name, clause_keys=keys) for name, keys in panel.items()
    ]
    _enqueue_runs([run.pk for run in runs])
    return evaluation


def _enqueue_runs(run_ids: list[int]) -> None:
    from trust.tasks import run_judge

    transaction.on_commit(lambda: [run_judge.delay(run_id) for run_id in run_ids])


def evaluation_reevaluate(*, evaluation_id: int, reason: str = "re-evaluation by a larger panel") -> Evaluation:
    """Judge the same delivery again with the extended panel; earlier rounds stay as evidence."""
    with transaction.atomic():
        previous = Evaluation.objects.select_for_update().get(pk=evaluation_id)
        last_round = (
            Evaluation.objects.filter(deliverable_id=previous.deliverable_id)
            .order_by("-round")
            .values_list("round", flat=True)
            .first()
        )
        return evaluation_start(
            deliverable_id=previous.deliverable_id, round=(last_round or 1) + 1, extended=True, reason=reason
        )


# --- one judge --------------------------------------------------------------------------------

JudgeResult = tuple[judges.Verdict | None, str, bool]  # (verdict, error, from cache)


def judge_run_execute(*, judge_run_id: int) -> None:
    """Claim a judge run, judge its clauses with no transaction open, record the verdicts."""
    with transaction.atomic():
        run = JudgeRun.objects.select_for_update().get(pk=judge_run_id)
        if run.status in (JudgeRun.Status.DONE, JudgeRun.Status.ERROR):
            return
        if run.attempts >= MAX_JUDGE_ATTEMPTS:
            give_up = True
        else:
            give_up = False
            run.attempts += 1
            run.status = JudgeRun.Status.RUNNING
            run.started_at = timezone.now()
            run.save(update_fields=["attempts", "status", "started_at"])
            Evaluation.objects.filter(pk=run.evaluation_id, status=Evaluation.Status.PENDING).update(
                status=Evaluation.Status.RUNNING
            )
    if give_up:
        reason = f"the judge did not finish after {MAX_JUDGE_ATTEMPTS} attempts"
        _judge_run_record(judge_run_id, {key: (None, reason, False) for key in run.clause_keys}, version="")
        return

    evaluation = Evaluation.objects.select_related("deliverable", "engagement", "pact_version").get(
        pk=run.evaluation_id
    )
    clauses = {c["key"]: c for c in evaluation.pact_version.clauses}
    delivery = _delivery(evaluation.deliverable, evaluation.engagement)
    judge = judges.get_judge(run.judge)
    results: dict[str, JudgeResult] = {}
    for key in run.clause_keys:
        clause = clauses[key]
        if judge is None:
            results[key] = (None, f"no judge named {run.judge!r} is installed", False)
            continue
        if clause["kind"] not in judge.kinds:
            results[key] = (None, f"{judge.name} cannot judge {clause['kind']} clauses", False)
            continue
        cached = VerdictCache.objects.filter(
            judge=judge.name,
            judge_version=judge.version,
            clause_hash=clause_hash(clause),
            deliverable_hash=delivery.content_hash,
        ).first()
        if cached is not None:
            verdict = judges.Verdict(cached.score, cached.passed, cached.rationale, cached.evidence)
            results[key] = (verdict, "", True)
            continue
        try:
            results[key] = (judge.evaluate(clause, delivery), "", False)
        except judges.JudgeError as exc:
            results[key] = (None, exc.reason[:500], False)
        except Exception as exc:  # a judge bug must become an error verdict, never a dead worker
            logger.exception("judge %s crashed on evaluation %s clause %s", judge.name, evaluation.pk, key)
            results[key] = (None, f"the judge crashed: {type(exc).__name__}: {exc}"[:500], False)
    _judge_run_record(judge_run_id, results, version=judge.version if judge else "")


def _judge_run_record(judge_run_id: int, results: dict[str, JudgeResult], *, version: str) -> None:
    """Store a run's verdicts once; the last run to finish enqueues finalize.

    Locks the evaluation, then the run (parent before child).
    """
    with transaction.atomic():
        run = JudgeRun.objects.only("evaluation_id").get(pk=judge_run_id)
        evaluation = (
            Evaluation.objects.select_for_update(of=("self",))
            .select_related("deliverable", "engagement")
            .get(pk=run.evaluation_id)
        )
        run = JudgeRun.objects.select_for_update().get(pk=judge_run_id)
        if run.status in (JudgeRun.Status.DONE, JudgeRun.Status.ERROR):
            return  # a duplicate delivery of the same task got here first
        clauses = {c["key"]: c for c in evaluation.pact_version.clauses}
        for key, (verdict, error, cached) in results.items():
            JudgeVerdict.objects.get_or_create(
                evaluation=evaluation,
                clause_key=key,
                judge=run.judge,
                defaults={
                    "judge_run": run,
                    "judge_version": version,
                    "score": verdict.score if verdict else None,
                    "passed": verdict.passed if verdict else None,
                    "rationale": verdict.rationale if verdict else "",
                    "evidence": verdict.evidence if verdict else {},
                    "error": "" if verdict else (error or "no verdict"),
                    "cached": cached,
                },
            )
            if verdict is not None and not cached:
                _cache_verdict(
                    run.judge,
                    version,
                    clauses[key],
                    delivery_hash(evaluation.deliverable, evaluation.engagement),
                    verdict,
                )
        all_failed = bool(results) and all(v is None for v, _, _ in results.values())
        run.status = JudgeRun.Status.ERROR if all_failed else JudgeRun.Status.DONE
        run.judge_version = version
        run.error = next((e for v, e, _ in results.values() if v is None), "")[:500] if all_failed else ""
        run.finished_at = timezone.now()
        run.save(update_fields=["status", "judge_version", "error", "finished_at"])
        _maybe_enqueue_finalize(evaluation)


def _cache_verdict(
    judge: str, version: str, clause: dict[str, Any], deliverable_hash: str, verdict: judges.Verdict
) -> None:
    try:
        with transaction.atomic():
            VerdictCache.objects.get_or_create(
                judge=judge,
                judge_version=version,
                clause_hash=clause_hash(clause),
                deliverable_hash=deliverable_hash,
                defaults={
                    "score": verdict.score,
                    "passed": verdict.passed,
                    "rationale": verdict.rationale,
                    "evidence": verdict.evidence,
                },
            )
    except IntegrityError:  # another evaluation cached the same verdict at the same moment
        pass


def _maybe_enqueue_finalize(evaluation: Evaluation) -> None:
    """With the evaluation row locked: enqueue finalize once, when no run is left."""
    if evaluation.finalize_enqueued or evaluation.status == Evaluation.Status.DONE:
        return
    open_runs = evaluation.judge_runs.filter(status__in=[JudgeRun.Status.PENDING, JudgeRun.Status.RUNNING])
    if open_runs.exists():
        return
    evaluation.finalize_enqueued = True
    evaluation.save(update_fields=["finalize_enqueued"])
    from trust.tasks import finalize_evaluation

    evaluation_id = evaluation.pk
    transaction.on_commit(lambda: finalize_evaluation.delay(evaluation_id))


# --- finalize -----------------------------------------------------------------------------------


def _votes_by_clause(evaluation: Evaluation) -> dict[str, list[Vote]]:
    votes: dict[str, list[Vote]] = defaultdict(list)
    for v in evaluation.verdicts.all():
        votes[v.clause_key].append(Vote(judge=v.judge, score=v.score, passed=v.passed, error=v.error))
    return votes


def panel_agreement(*, judges_names: list[str] | None = None, window: int = PANEL_WINDOW) -> float | None:
    """Rolling Krippendorff's alpha of the jury over its last `window` evaluations."""
    recent = list(
        Evaluation.objects.filter(status=Evaluation.Status.DONE)
        .order_by("-finished_at", "-id")
        .values_list("id", flat=True)[:window]
    )
    verdicts = JudgeVerdict.objects.filter(evaluation_id__in=recent, error="").values_list(
        "evaluation_id", "clause_key", "judge", "passed"
    )
    rubric_units: dict[tuple[int, str], dict[str, int]] = defaultdict(dict)
    jury = set(judges.EXTENDED_JURY) | {n for n, j in judges.registry().items() if not j.offline}
    for evaluation_id, key, judge, passed in verdicts:
        if judge in jury and (judges_names is None or judge in judges_names):
            rubric_units[(evaluation_id, key)][judge] = int(bool(passed))
    coders = sorted({j for unit in rubric_units.values() for j in unit})
    data = [[unit.get(coder) for unit in rubric_units.values()] for coder in coders]
    return alpha_or_none(data, level="nominal") if len(coders) >= 2 else None


@transaction.atomic
def evaluation_finalize(*, evaluation_id: int) -> Evaluation:
    """Aggregate the verdicts, measure agreement, write the evidence; once.

    Locks the evaluation row (then the engagement row, through marketplace).
    Sends `evaluation_finalized` on commit.
    """
    evaluation = (
        Evaluation.objects.select_for_update(of=("self",))
        .select_related("deliverable", "pact_version", "engagement")
        .get(pk=evaluation_id)
    )
    if evaluation.status == Evaluation.Status.DONE:
        return evaluation
    votes = _votes_by_clause(evaluation)
    quorum = jury_quorum()
    results = []
    for clause in evaluation.pact_version.clauses:
        panel = judges.default_panel(clause["kind"], extra=clause.get("judges"))
        results.append(
            aggregate_clause(
                clause,
                votes.get(clause["key"], []),
                authority=panel[0] if panel else None,
                quorum=quorum if clause["method"] == "jury" else 1,
            )
        )
    summary = aggregate_evaluation(results)
    ClauseResult.objects.bulk_create(
        ClauseResult(
            evaluation=evaluation,
            clause_key=r.key,
            kind=r.kind,
            method=r.method,
            severity=r.severity,
            weight=r.weight,
            outcome=r.outcome,
            score=r.score,
            votes_for=r.votes_for,
            votes_against=r.votes_against,
            errors=r.errors,
            reason=r.reason[:500],
        )
        for r in results
    )
    jury_keys = {c["key"] for c in evaluation.pact_version.clauses if c["method"] == "jury"}
    alpha = (
        alpha_or_none(jury_reliability({k: votes.get(k, []) for k in jury_keys}), level="nominal")
        if jury_keys
        else None
    )
    review: list[str] = []
    if alpha is not None and alpha < ALPHA_REVIEW_THRESHOLD:
        review.append(f"judges disagree (alpha {alpha:.2f} < {ALPHA_REVIEW_THRESHOLD})")
    if summary.outcome == "inconclusive":
        review.append(
            "inconclusive: " + "; ".join(f"{r.key}: {r.reason}" for r in results if r.outcome == "inconclusive")
        )
    evaluation.status = Evaluation.Status.DONE
    evaluation.outcome = summary.outcome
    evaluation.compliance = summary.compliance
    evaluation.hard_gates_passed = summary.hard_gates_passed
    evaluation.agreement_alpha = alpha
    evaluation.flagged_for_review = bool(review)
    evaluation.review_reason = " · ".join(review)[:500]
    evaluation.finished_at = timezone.now()
    evaluation.save()
    if jury_keys:  # the rolling agreement of this jury (these judges), this evaluation included
        jurors = sorted({v.judge for key in jury_keys for v in votes.get(key, [])})
        evaluation.panel_alpha = panel_agreement(judges_names=jurors)
        evaluation.save(update_fields=["panel_alpha"])
    # The engagement row before the evidence chain's lock: every writer takes the
    # engagement first and the evidence lock last, so no two of them wait on each other.
    engagement = marketplace_lock_objects.engagement_lock(evaluation.engagement_id)
    if engagement.status == Engagement.Status.DELIVERED:
        marketplace_services.engagement_mark_evaluated(engagement_id=evaluation.engagement_id)
    # The agent's trust record (and its policies) before the evidence lock.
    metrics.trust_record_evaluation(evaluation=evaluation)
    evidence_append(
        kind="evaluation.finalized",
        subject=f"engagement:{evaluation.engagement_id}",
        payload={
            "evaluation": evaluation.pk,
            "round": evaluation.round,
            "pact_hash": evaluation.pact_version.content_hash,
            "deliverable_hash": evaluation.deliverable.content_hash,
            "outcome": summary.outcome,
            "compliance": summary.compliance,
            "hard_gates_passed": summary.hard_gates_passed,
            "agreement_alpha": alpha,
            "panel_alpha": evaluation.panel_alpha,
            "clauses": [{"key": r.key, "outcome": r.outcome, "score": r.score} for r in results],
            "verdicts": [
                {
                    "clause": v.clause_key,
                    "judge": v.judge,
                    "version": v.judge_version,
                    "score": v.score,
                    "passed": v.passed,
                    "error": v.error or None,
                }
                for v in evaluation.verdicts.order_by("clause_key", "judge")
            ],
        },
    )
    engagement_id, outcome = evaluation.engagement_id, summary.outcome
    transaction.on_commit(
        lambda: signals.evaluation_finalized.send(
            sender=Evaluation, evaluation_id=evaluation_id, engagement_id=engagement_id, outcome=outcome
        )
    )
    return evaluation


# --- sweeper --------------------------------------------------------------------------------------


def evaluation_sweep(*, stale_after: timedelta = timedelta(minutes=5)) -> dict[str, int]:
    """Re-dispatch judge runs a dead worker left behind, and finalize what is ready.

    A run pending or running for longer than `stale_after` is enqueued again
    (its task is idempotent; after MAX_JUDGE_ATTEMPTS it is recorded as an
    error). An evaluation whose runs are all finished but that was never
    finalized gets its finalize enqueued. A deliverable whose evaluation never
    started (its on-commit start failed) gets one.
    """
    from trust.tasks import finalize_evaluation, run_judge

    cutoff = timezone.now() - stale_after
    stale = list(
        JudgeRun.objects.filter(status__in=[JudgeRun.Status.PENDING, JudgeRun.Status.RUNNING], created_at__lt=cutoff)
        .exclude(started_at__gte=cutoff)
        .values_list("id", flat=True)
    )
    ready = [
        evaluation_id
        for evaluation_id in Evaluation.objects.exclude(status=Evaluation.Status.DONE)
        .filter(created_at__lt=cutoff)
        .exclude(judge_runs__status__in=[JudgeRun.Status.PENDING, JudgeRun.Status.RUNNING])
        .values_list("id", flat=True)
    ]

    def enqueue() -> None:
        for run_id in stale:
            run_judge.delay(run_id)
        for evaluation_id in ready:
            finalize_evaluation.delay(evaluation_id)

    transaction.on_commit(enqueue)
    started = 0
    for deliverable_id in Deliverable.objects.filter(evaluations__isnull=True, created_at__lt=cutoff).values_list(
        "id", flat=True
    ):
        try:
            evaluation_start(deliverable_id=deliverable_id)
            started += 1
        except Exception:
            logger.exception("sweeper could not start the evaluation of deliverable %s", deliverable_id)
    return {"runs": len(stale), "finalize": len(ready), "started": started}
