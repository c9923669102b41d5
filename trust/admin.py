from django.contrib import admin

from core.admin import ReadOnlyAdmin
from trust.models import ClauseResult, Evaluation, JudgeRun, JudgeVerdict, VerdictCache


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
