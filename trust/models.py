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

The trust record built from those evaluations (see trust/scoring.py):

- `TrustRecord`: one per agent (category "") and per agent and category:
  decayed Beta evidence `r`, `s` as of `decayed_to`, the compliance interval and
  confidence derived from them, the evidence count, last verification, settled
  tasks and ruled disputes (upheld / rejected) with the Wilson interval.
- `ClauseStat`: per agent and clause key, how often the obligation was kept.
- `TrustHistoryPoint`: one point per agent per day, for the history plot.
- `SettledTask`, `DisputeOutcome`: the facts the dispute rate counts, reported
  by escrow (which trust cannot import) through trust's services.
- `TrustPolicy` and `EscalationEvent`: thresholds with consequences, and each
  crossing of one.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from marketplace.models import AgentListing, Deliverable, Engagement, PactVersion


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


# --- the trust record ------------------------------------------------------------------------------


class TrustRecord(models.Model):
    ALL = ""  # the category of the agent-wide record

    listing = models.ForeignKey(AgentListing, on_delete=models.CASCADE, related_name="trust_records")
    category = models.CharField(max_length=60, blank=True)
    r = models.FloatField(default=0.0)
    s = models.FloatField(default=0.0)
    decayed_to = models.DateTimeField()
    evidence_count = models.PositiveIntegerField(default=0)
    last_verified_at = models.DateTimeField(null=True, blank=True)
    compliance_mean = models.FloatField(default=0.5)
    compliance_lower = models.FloatField(default=0.025)
    compliance_upper = models.FloatField(default=0.975)
    confidence = models.FloatField(default=0.0)
    rated = models.BooleanField(default=False)
    settled_tasks = models.PositiveIntegerField(default=0)
    disputes_upheld = models.PositiveIntegerField(default=0)
    disputes_rejected = models.PositiveIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["listing", "category"]
        constraints = [
            models.UniqueConstraint(fields=["listing", "category"], name="trust_record_unique"),
            models.CheckConstraint(condition=Q(r__gte=0) & Q(s__gte=0), name="trust_record_evidence_nonnegative"),
            models.CheckConstraint(
                condition=Q(disputes_upheld__gte=0) & Q(disputes_rejected__gte=0), name="trust_record_disputes"
            ),
        ]
        indexes = [
            # The ranking: rated agents first, by the compliance lower bound, then evidence.
            models.Index(
                "category",
                models.F("rated").desc(),
                models.F("compliance_lower").desc(),
                models.F("evidence_count").desc(),
                "listing",
                name="trust_record_rank",
            )
        ]

    def __str__(self) -> str:
        return f"trust of listing {self.listing_id} [{self.category or 'all'}]"

    @property
    def disputes(self) -> int:
        return self.disputes_upheld + self.disputes_rejected


class ClauseStat(models.Model):
    listing = models.ForeignKey(AgentListing, on_delete=models.CASCADE, related_name="clause_stats")
    clause_key = models.CharField(max_length=64)
    kind = models.CharField(max_length=32)
    passed = models.PositiveIntegerField(default=0)
    failed = models.PositiveIntegerField(default=0)
    inconclusive = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["listing", "clause_key"]
        constraints = [models.UniqueConstraint(fields=["listing", "clause_key"], name="clause_stat_unique")]

    def __str__(self) -> str:
        return f"{self.clause_key}: {self.passed}/{self.total}"

    @property
    def total(self) -> int:
        return self.passed + self.failed + self.inconclusive

    @property
    def rate(self) -> float | None:
        judged = self.passed + self.failed
        return self.passed / judged if judged else None


class TrustHistoryPoint(models.Model):
    listing = models.ForeignKey(AgentListing, on_delete=models.CASCADE, related_name="trust_history")
    day = models.DateField()
    compliance_mean = models.FloatField()
    compliance_lower = models.FloatField()
    compliance_upper = models.FloatField()
    confidence = models.FloatField()
    evidence_count = models.PositiveIntegerField()
    disputes_per_100 = models.FloatField(default=0.0)

    class Meta:
        ordering = ["listing", "day"]
        constraints = [models.UniqueConstraint(fields=["listing", "day"], name="trust_history_daily")]

    def __str__(self) -> str:
        return f"listing {self.listing_id} on {self.day}"


class SettledTask(models.Model):
    engagement = models.OneToOneField(Engagement, on_delete=models.CASCADE, related_name="+")
    listing = models.ForeignKey(AgentListing, on_delete=models.CASCADE, related_name="+")
    category = models.CharField(max_length=60, blank=True)
    settled_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"engagement {self.engagement_id} settled"


class DisputeOutcome(models.Model):
    engagement = models.OneToOneField(Engagement, on_delete=models.CASCADE, related_name="+")
    listing = models.ForeignKey(AgentListing, on_delete=models.CASCADE, related_name="+")
    category = models.CharField(max_length=60, blank=True)
    upheld = models.BooleanField()
    ruled_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"dispute on engagement {self.engagement_id}: {'upheld' if self.upheld else 'rejected'}"


# --- thresholds with consequences ------------------------------------------------------------------


class TrustPolicy(models.Model):
    class Metric(models.TextChoices):
        COMPLIANCE_LOWER = "compliance_lower", "Pact compliance, lower bound (0..1)"
        COMPLIANCE_MEAN = "compliance_mean", "Pact compliance, mean (0..1)"
        CONFIDENCE = "confidence", "Score confidence (0..1)"
        DISPUTES_PER_100 = "disputes_per_100", "Disputes per 100 settled tasks"
        UPHELD_DISPUTES_PER_100 = "upheld_disputes_per_100", "Upheld disputes per 100 settled tasks"
        DAYS_SINCE_VERIFIED = "days_since_verified", "Days since the last verified job"

    class Comparator(models.TextChoices):
        LT = "lt", "<"
        LTE = "lte", "<="
        GT = "gt", ">"
        GTE = "gte", ">="

    class Action(models.TextChoices):
        FLAG_LISTING = "flag_listing", "Flag the listing (badge)"
        REQUIRE_MANUAL_RELEASE = "require_manual_release", "Require manual release (no auto-release)"
        EXTEND_REVIEW_WINDOW = "extend_review_window", "Extend the buyer's review window"
        SUSPEND_LISTING = "suspend_listing", "Suspend the listing"

    name = models.CharField(max_length=120, unique=True)
    description = models.TextField(blank=True)
    metric = models.CharField(max_length=32, choices=Metric.choices)
    comparator = models.CharField(max_length=4, choices=Comparator.choices)
    threshold = models.FloatField()
    action = models.CharField(max_length=32, choices=Action.choices)
    extra_review_hours = models.PositiveIntegerField(
        default=0, help_text="For 'extend the review window': the hours added to the buyer's review window."
    )
    min_evidence = models.PositiveIntegerField(
        default=5,
        help_text="The policy applies once the agent has this many verified jobs (settled tasks for dispute metrics).",
    )
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="trust_policies")
    review_every_days = models.PositiveIntegerField(default=90)
    next_review_at = models.DateTimeField()
    last_reminded_at = models.DateTimeField(null=True, blank=True)
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        verbose_name_plural = "trust policies"
        constraints = [
            # A threshold nobody acts on is decoration: every policy has an action.
            models.CheckConstraint(
                condition=Q(
                    action__in=[
                        "flag_listing",
                        "require_manual_release",
                        "extend_review_window",
                        "suspend_listing",
                    ]
                ),
                name="trust_policy_has_action",
            ),
            models.CheckConstraint(
                condition=~Q(action="extend_review_window") | Q(extra_review_hours__gt=0),
                name="trust_policy_extension_hours",
            ),
            models.CheckConstraint(
                condition=Q(
                    metric__in=[
                        "compliance_lower",
                        "compliance_mean",
                        "confidence",
                        "disputes_per_100",
                        "upheld_disputes_per_100",
                        "days_since_verified",
                    ]
                ),
                name="trust_policy_metric",
            ),
            models.CheckConstraint(
                condition=Q(comparator__in=["lt", "lte", "gt", "gte"]), name="trust_policy_comparator"
            ),
            models.CheckConstraint(condition=Q(review_every_days__gte=1), name="trust_policy_review_cadence"),
        ]

    def __str__(self) -> str:
        return self.name

    def describe(self) -> str:
        return (
            f"{self.get_metric_display()} {self.get_comparator_display()} {self.threshold:g}"
            f" -> {self.get_action_display().lower()}"
        )


class EscalationEvent(models.Model):
    class Status(models.TextChoices):
        OPEN = "open", "Open"
        RESOLVED = "resolved", "Resolved"

    policy = models.ForeignKey(TrustPolicy, on_delete=models.PROTECT, related_name="events")
    listing = models.ForeignKey(AgentListing, on_delete=models.CASCADE, related_name="escalations")
    metric = models.CharField(max_length=32)
    comparator = models.CharField(max_length=4)
    threshold = models.FloatField()
    metric_value = models.FloatField()
    action = models.CharField(max_length=32)
    extra_review_hours = models.PositiveIntegerField(default=0)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.OPEN, db_index=True)
    created_at = models.DateTimeField(auto_now_add=True)
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    resolution_note = models.TextField(blank=True)
    # Staff resolved it while the threshold was still crossed (an override): the policy does
    # not fire again for this agent until it has more evidence than this.
    evidence_at_override = models.PositiveIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["policy", "listing"], condition=Q(status="open"), name="escalation_one_open_per_policy"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.policy} on listing {self.listing_id} ({self.status})"

    @property
    def action_label(self) -> str:
        return TrustPolicy.Action(self.action).label if self.action in TrustPolicy.Action.values else self.action
