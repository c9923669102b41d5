from django.contrib import admin

from core.admin import ReadOnlyAdmin
from core.models import User
from trust.models import (
    ClauseResult,
    ClauseStat,
    DisputeOutcome,
    EscalationEvent,
    Evaluation,
    JudgeRun,
    JudgeVerdict,
    SettledTask,
    TrustHistoryPoint,
    TrustPolicy,
    TrustRecord,
    VerdictCache,
)
from trust.policies import policy_mark_reviewed


class ClauseResultInline(admin.TabularInline):
    model = ClauseResult
    fields = ("clause_key", "kind", "severity", "weight", "outcome", "score", "reason")
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None) -> bool:  # type: ignore[no-untyped-def]
        return False


@admin.register(Evaluation)
class EvaluationAdmin(ReadOnlyAdmin):
    list_display = (
        "id",
        "engagement",
        "round",
        "status",
        "outcome",
        "compliance",
        "agreement_alpha",
        "flagged_for_review",
        "finished_at",
    )
    list_filter = ("status", "outcome", "flagged_for_review")
    search_fields = ("engagement__id",)
    inlines = [ClauseResultInline]


@admin.register(JudgeRun)
class JudgeRunAdmin(ReadOnlyAdmin):
    list_display = ("evaluation", "judge", "judge_version", "status", "attempts", "error")
    list_filter = ("status", "judge")


@admin.register(JudgeVerdict)
class JudgeVerdictAdmin(ReadOnlyAdmin):
    list_display = ("evaluation", "clause_key", "judge", "judge_version", "score", "passed", "error", "cached")
    list_filter = ("judge", "passed", "cached")
    search_fields = ("clause_key", "rationale")


@admin.register(VerdictCache)
class VerdictCacheAdmin(ReadOnlyAdmin):
    list_display = ("judge", "judge_version", "clause_hash", "deliverable_hash", "score", "passed")
    list_filter = ("judge",)


# --- the trust record and its policies ------------------------------------------------------------


@admin.register(TrustRecord)
class TrustRecordAdmin(ReadOnlyAdmin):
    """Derived from the evaluation records; rebuilt by the nightly refresh, never edited by hand."""

    list_display = (
        "listing",
        "category",
        "evidence_count",
        "compliance_lower",
        "compliance_mean",
        "compliance_upper",
        "confidence",
        "rated",
        "settled_tasks",
        "disputes_upheld",
        "disputes_rejected",
        "last_verified_at",
    )
    list_filter = ("rated", "category")
    search_fields = ("listing__name", "listing__slug")
    list_select_related = ("listing",)


@admin.register(ClauseStat)
class ClauseStatAdmin(ReadOnlyAdmin):
    list_display = ("listing", "clause_key", "kind", "passed", "failed", "inconclusive")
    list_filter = ("kind",)
    search_fields = ("listing__name", "clause_key")
    list_select_related = ("listing",)


@admin.register(TrustHistoryPoint)
class TrustHistoryPointAdmin(ReadOnlyAdmin):
    list_display = ("listing", "day", "compliance_lower", "compliance_mean", "compliance_upper", "evidence_count")
    list_filter = ("day",)
    search_fields = ("listing__name",)
    list_select_related = ("listing",)
    date_hierarchy = "day"


@admin.register(SettledTask)
class SettledTaskAdmin(ReadOnlyAdmin):
    list_display = ("engagement", "listing", "category", "settled_at")
    search_fields = ("listing__name",)
    list_select_related = ("listing",)


@admin.register(DisputeOutcome)
class DisputeOutcomeAdmin(ReadOnlyAdmin):
    list_display = ("engagement", "listing", "category", "upheld", "ruled_at")
    list_filter = ("upheld",)
    search_fields = ("listing__name",)
    list_select_related = ("listing",)


@admin.register(TrustPolicy)
class TrustPolicyAdmin(admin.ModelAdmin):
    list_display = (
        "name",
        "metric",
        "comparator",
        "threshold",
        "action",
        "min_evidence",
        "owner",
        "next_review_at",
        "active",
    )
    list_filter = ("active", "metric", "action")
    search_fields = ("name", "description")
    list_select_related = ("owner",)
    actions = ("mark_reviewed",)

    def formfield_for_foreignkey(self, db_field, request, **kwargs):  # type: ignore[no-untyped-def]
        if db_field.name == "owner":
            kwargs["queryset"] = User.objects.filter(is_staff=True)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    @admin.action(description="Mark reviewed (next review after the cadence)")
    def mark_reviewed(self, request, queryset) -> None:  # type: ignore[no-untyped-def]
        for policy in queryset:
            policy_mark_reviewed(policy_id=policy.pk, actor=request.user)
        self.message_user(request, f"{queryset.count()} policies marked reviewed.")

    def has_delete_permission(self, request, obj=None) -> bool:  # type: ignore[no-untyped-def]
        # A policy with escalations is part of the evidence; deactivate it instead.
        return obj is None or not obj.events.exists()


@admin.register(EscalationEvent)
class EscalationEventAdmin(ReadOnlyAdmin):
    """Escalations are resolved in the staff console (with a note), not edited here."""

    list_display = ("id", "listing", "policy", "metric_value", "threshold", "action", "status", "created_at")
    list_filter = ("status", "action", "policy")
    search_fields = ("listing__name", "policy__name")
    list_select_related = ("listing", "policy")


@admin.register(ClauseResult)
class ClauseResultAdmin(ReadOnlyAdmin):
    """Per-clause aggregates of an evaluation (also shown inline on the evaluation)."""

    list_display = ("evaluation", "clause_key", "kind", "severity", "weight", "outcome", "score")
    list_filter = ("outcome", "kind", "severity")
    search_fields = ("clause_key",)
    list_select_related = ("evaluation",)
