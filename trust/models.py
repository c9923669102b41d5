"""Trust data: how each delivery was judged.

- `Evaluation`: one judging round of one deliverable against its locked pact
  (round 1 on delivery; later rounds are re-evaluations by a larger panel,
  which keep the earlier rounds as evidence). Status pending -> running ->
  done; the outcome, job compliance, hard gates and the panel's agreement
  (Krippendorff's alpha over jury clauses) are written once, at finalize.
- `JudgeRun`: the work of one judge in one evaluation (all the clauses that
  judge sits on), executed by one Celery task; the last run to finish enqueues
  finalize. Its status says whether it finished or kept failing.
- `JudgeVerdict`: one judge's verdict on one clause (or its error), unique per
  (evaluation, clause, judge), so redelivered tasks never duplicate verdicts.
- `ClauseResult`: the aggregate per clause: gate result, or majority and
  median of the jury; `inconclusive` when quorum is lost or no majority.
- `VerdictCache`: verdicts keyed by (judge, version, clause hash, delivery
  hash), where the delivery hash covers the deliverable and the task it answers;
  a re-evaluation or a retried task reuses them instead of re-judging.
"""

from __future__ import annotations

from django.db import models
from django.db.models import Q

from marketplace.models import Deliverable, Engagement, PactVersion


class Outcome(models.TextChoices):
    PASSED = "passed", "Passed"
    FAILED = "failed", "Failed"
    INCONCLUSIVE = "inconclusive", "Inconclusive"


class Evaluation(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        RUNNING = "running", "Running"
        DONE = "done", "Done"

    engagement = models.ForeignKey(Engagement, on_delete=models.PROTECT, related_name="evaluations")
    deliverable = models.ForeignKey(Deliverable, on_delete=models.PROTECT, related_name="evaluations")
    pact_version = models.ForeignKey(PactVersion, on_delete=models.PROTECT, related_name="evaluations")
    round = models.PositiveSmallIntegerField(default=1)
    reason = models.CharField(max_length=300, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING, db_index=True)
    outcome = models.CharField(max_length=16, choices=Outcome.choices, blank=True)
    compliance = models.FloatField(null=True, blank=True)
    hard_gates_passed = models.BooleanField(null=True, blank=True)
    agreement_alpha = models.FloatField(null=True, blank=True)
    # The jury's rolling agreement over its recent evaluations, as of this finalize.
    panel_alpha = models.FloatField(null=True, blank=True)
    flagged_for_review = models.BooleanField(default=False, db_index=True)
    review_reason = models.CharField(max_length=500, blank=True)
    finalize_enqueued = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["deliverable", "round"], name="evaluation_unique_round"),
            models.CheckConstraint(
                condition=Q(status="done", outcome__in=["passed", "failed", "inconclusive"])
                | (~Q(status="done") & Q(outcome="")),
                name="evaluation_outcome_iff_done",
            ),
            models.CheckConstraint(
                condition=Q(compliance__isnull=True) | Q(compliance__gte=0, compliance__lte=1),
                name="evaluation_compliance_range",
            ),
        ]

    def __str__(self) -> str:
        return f"Evaluation {self.pk} of engagement {self.engagement_id} (round {self.round}, {self.status})"


class JudgeRun(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        ERROR = "error", "Error"

    evaluation = models.ForeignKey(Evaluation, on_delete=models.CASCADE, related_name="judge_runs")
    judge = models.CharField(max_length=64)
    judge_version = models.CharField(max_length=64, blank=True)
    clause_keys = models.JSONField(default=list)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING, db_index=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    error = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["evaluation", "judge"]
        constraints = [models.UniqueConstraint(fields=["evaluation", "judge"], name="judge_run_unique")]

    def __str__(self) -> str:
        return f"{self.judge} on evaluation {self.evaluation_id} ({self.status})"


class JudgeVerdict(models.Model):
    evaluation = models.ForeignKey(Evaluation, on_delete=models.CASCADE, related_name="verdicts")
    judge_run = models.ForeignKey(JudgeRun, on_delete=models.CASCADE, related_name="verdicts")
    clause_key = models.CharField(max_length=64)
    judge = models.CharField(max_length=64)
    judge_version = models.CharField(max_length=64)
    score = models.FloatField(null=True, blank=True)
    passed = models.BooleanField(null=True, blank=True)
    rationale = models.TextField(blank=True)
    evidence = models.JSONField(default=dict)
    error = models.CharField(max_length=500, blank=True)
    cached = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["evaluation", "clause_key", "judge"]
        constraints = [
            models.UniqueConstraint(fields=["evaluation", "clause_key", "judge"], name="verdict_unique"),
            models.CheckConstraint(
                condition=(Q(error="") & Q(score__isnull=False) & Q(passed__isnull=False))
                | (~Q(error="") & Q(score__isnull=True) & Q(passed__isnull=True)),
                name="verdict_or_error",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.judge} on {self.clause_key}: {self.error or self.passed}"


class ClauseResult(models.Model):
    evaluation = models.ForeignKey(Evaluation, on_delete=models.CASCADE, related_name="clause_results")
    clause_key = models.CharField(max_length=64)
    kind = models.CharField(max_length=32)
    method = models.CharField(max_length=16)
    severity = models.CharField(max_length=16)
    weight = models.PositiveIntegerField()
    outcome = models.CharField(max_length=16, choices=Outcome.choices)
    score = models.FloatField(null=True, blank=True)
    votes_for = models.PositiveSmallIntegerField(default=0)
    votes_against = models.PositiveSmallIntegerField(default=0)
    errors = models.PositiveSmallIntegerField(default=0)
    reason = models.CharField(max_length=500, blank=True)

    class Meta:
        ordering = ["evaluation", "clause_key"]
        constraints = [models.UniqueConstraint(fields=["evaluation", "clause_key"], name="clause_result_unique")]

    def __str__(self) -> str:
        return f"{self.clause_key}: {self.outcome}"


class VerdictCache(models.Model):
    judge = models.CharField(max_length=64)
    judge_version = models.CharField(max_length=64)
    clause_hash = models.CharField(max_length=64)
    deliverable_hash = models.CharField(max_length=64)
    score = models.FloatField()
    passed = models.BooleanField()
    rationale = models.TextField(blank=True)
    evidence = models.JSONField(default=dict)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["judge", "judge_version", "clause_hash", "deliverable_hash"], name="verdict_cache_key"
            )
        ]

    def __str__(self) -> str:
        return f"{self.judge}@{self.judge_version} {self.clause_hash[:8]}/{self.deliverable_hash[:8]}"
