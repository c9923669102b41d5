"""What every judge is: a name, a version, the clause kinds it can judge, and
`evaluate(clause, deliverable) -> Verdict`.

Judges are pure with respect to the database: they get plain data in and give
a verdict out, so the pipeline can cache verdicts by (judge, version, clause
hash, deliverable hash) and a task can be retried or redelivered safely. A
judge that cannot reach a verdict raises `JudgeError` with a reason; it never
guesses.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar


class JudgeError(Exception):
    """The judge could not reach a verdict (bad answer, unreachable service, ...)."""

    def __init__(self, reason: str, *, retryable: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retryable = retryable


@dataclass(frozen=True)
class Verdict:
    score: float
    passed: bool
    rationale: str
    evidence: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not 0.0 <= self.score <= 1.0:
            raise ValueError(f"score must be within 0..1, got {self.score}")

    def as_dict(self) -> dict[str, Any]:
        return {"score": self.score, "passed": self.passed, "rationale": self.rationale, "evidence": self.evidence}


MAX_TEXT_CHARS = 2_000_000  # what judges read of an output; the rest is ignored (and said so)


@dataclass(frozen=True)
class Delivery:
    """The facts a judge may look at, copied out of the database."""

    output: Any
    citations: list[str] = field(default_factory=list)
    actions: list[Any] = field(default_factory=list)
    latency_ms: int | None = None
    task: Any = None
    content_hash: str = ""

    @property
    def text(self) -> str:
        """The output as text: strings as they are, JSON values as JSON."""
        if isinstance(self.output, str):
            return self.output[:MAX_TEXT_CHARS]
        return json.dumps(self.output, ensure_ascii=False, sort_keys=True)[:MAX_TEXT_CHARS]

    @property
    def task_text(self) -> str:
        if isinstance(self.task, str):
            return self.task
        return json.dumps(self.task, ensure_ascii=False, sort_keys=True) if self.task is not None else ""

    @property
    def action_names(self) -> list[str]:
        names = []
        for action in self.actions:
            if isinstance(action, str):
                names.append(action)
            elif isinstance(action, dict) and isinstance(action.get("name"), str):
                names.append(action["name"])
        return names


class Judge(ABC):
    name: ClassVar[str]
    version: ClassVar[str]
    kinds: ClassVar[frozenset[str]]
    offline: ClassVar[bool] = True  # needs no network

    @abstractmethod
    def evaluate(self, clause: dict[str, Any], delivery: Delivery) -> Verdict:
        """Judge one clause (normalised, see marketplace.pacts) of one delivery."""
