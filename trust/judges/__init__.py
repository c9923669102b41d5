"""The judge registry and the default panels.

Deterministic clause kinds have one authoritative judge (a gate); heuristic
kinds one measuring judge; `rubric` clauses a jury of at least three offline
judges, joined by every configured LLM judge. A pact may name extra judges for
a clause (`judges: [...]`); a re-evaluation uses the extended jury.
"""

from __future__ import annotations

from django.conf import settings

from trust.judges.base import Delivery, Judge, JudgeError, Verdict
from trust.judges.deterministic import (
    JsonSchemaJudge,
    MaxLatencyJudge,
    RegexForbiddenJudge,
    RegexRequiredJudge,
    ScopeJudge,
    WordCountJudge,
)
from trust.judges.heuristic import CitationRateJudge, ReferenceOverlapJudge
from trust.judges.jury import CriteriaCoverageJudge, SpecificityJudge, StructureJudge, TaskRelevanceJudge

__all__ = ["Delivery", "Judge", "JudgeError", "Verdict", "default_panel", "get_judge", "registry"]

OFFLINE_JUDGES: tuple[Judge, ...] = (
    JsonSchemaJudge(),
    RegexRequiredJudge(),
    RegexForbiddenJudge(),
    MaxLatencyJudge(),
    WordCountJudge(),
    ScopeJudge(),
    CitationRateJudge(),
    ReferenceOverlapJudge(),
    CriteriaCoverageJudge(),
    TaskRelevanceJudge(),
    SpecificityJudge(),
    StructureJudge(),
)

DEFAULT_JURY = ("criteria-coverage", "task-relevance", "specificity")
EXTENDED_JURY = (*DEFAULT_JURY, "structure")


def _llm_judges() -> list[Judge]:
    if not getattr(settings, "LLM_JUDGES", None):
        return []
    from trust.judges.llm import configured_llm_judges

    return list(configured_llm_judges())


def registry() -> dict[str, Judge]:
    """Every judge by name: the offline ones and the configured LLM judges."""
    judges = {j.name: j for j in OFFLINE_JUDGES}
    for judge in _llm_judges():
        judges[judge.name] = judge
    return judges


def get_judge(name: str) -> Judge | None:
    return registry().get(name)


def default_panel(kind: str, *, extended: bool = False, extra: list[str] | None = None) -> list[str]:
    """Names of the judges that evaluate a clause of this kind."""
    judges = registry()
    if kind == "rubric":
        names = list(EXTENDED_JURY if extended else DEFAULT_JURY)
        names += [name for name, judge in judges.items() if not judge.offline and kind in judge.kinds]
    else:
        names = [j.name for j in OFFLINE_JUDGES if kind in j.kinds]
    for name in extra or []:
        if name not in names:
            names.append(name)
    return names
