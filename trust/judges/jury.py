"""Offline jury judges for `rubric` clauses.

A rubric is subjective, so no single method decides it. These judges reach
their verdicts by different routes, so their errors are not the same errors,
and their agreement (Krippendorff's alpha) says how much to trust the panel:

- `criteria-coverage` checks each criterion against the output: its key words,
  or the observable sign of what it asks for (sources cited, uncertainty
  stated, a clear structure, plain sentences, the task answered);
- `task-relevance` measures how much of the task the output addresses;
- `specificity` rewards concrete content (numbers, names, sources, varied
  vocabulary) and penalises repetition and filler;
- `structure` (the extended panel used for re-evaluations) reads the shape of
  the text: paragraphs, lists, sentence length, repetition.

Each scores 0..1 and passes when the score reaches the clause's `min_score`.
They are heuristics and say so in their rationales; an LLM judge, when
configured, joins the panel.
"""

from __future__ import annotations

import re
import statistics
from typing import Any

from trust.judges.base import Delivery, Judge, Verdict
from trust.judges.text import MARKER_RE, URL_RE, content_words, sentences, stem, tokens

HEDGES = re.compile(
    r"\b(may|might|likely|unlikely|uncertain|uncertainty|unclear|suggests?|appears?|limited evidence|"
    r"not (?:yet )?known|confidence|caveat|limitations?)\b",
    re.IGNORECASE,
)
FILLER = re.compile(r"\b(very|really|basically|actually|just|literally|obviously|clearly|simply)\b", re.IGNORECASE)
NUMBER = re.compile(r"\b\d+(?:[.,]\d+)?%?")
PROPER = re.compile(r"(?<![.!?]\s)(?<!^)\b[A-Z][a-z]{2,}")
LIST_ITEM = re.compile(r"^\s*(?:[-*•]|\d+[.)])\s+", re.MULTILINE)


def _clamp(value: float) -> float:
    return max(0.0, min(1.0, value))


def _verdict(score: float, clause: dict[str, Any], rationale: str, **evidence: Any) -> Verdict:
    score = round(_clamp(score), 4)
    min_score = clause["params"]["min_score"]
    return Verdict(
        score=score,
        passed=score >= min_score,
        rationale=f"{rationale} Score {score:.2f} against {min_score:.2f}.",
        evidence=evidence,
    )


def _task_recall(delivery: Delivery) -> float:
    task = {stem(w) for w in content_words(delivery.task_text)}
    if not task:
        return 1.0
    output = {stem(w) for w in content_words(delivery.text)}
    return len(task & output) / len(task)


def _paragraphs(text: str) -> list[str]:
    return [p for p in re.split(r"\n\s*\n", text) if p.strip()]


class CriteriaCoverageJudge(Judge):
    name = "criteria-coverage"
    version = "1.1"
    kinds = frozenset({"rubric"})

    # Observable signs of common rubric criteria, keyed by word stems.
    def _signals(self, delivery: Delivery) -> dict[str, bool]:
        text = delivery.text
        cited = bool(URL_RE.search(text) or MARKER_RE.search(text) or delivery.citations)
        long_sentences = [s for s in sentences(text) if len(tokens(s)) > 30]
        plain = bool(sentences(text)) and len(long_sentences) <= max(1, len(sentences(text)) // 5)
        structured = len(_paragraphs(text)) >= 2 or len(LIST_ITEM.findall(text)) >= 2
        answered = _task_recall(delivery) >= 0.3
        signals = {}
        for key in ("source", "cite", "citation", "reference", "evidence"):
            signals[key] = cited
        for key in ("uncertainty", "uncertain", "confidence", "limitation", "caveat"):
            signals[key] = bool(HEDGES.search(text))
        for key in ("structure", "organis", "organiz", "clear", "format"):
            signals[key] = structured
        for key in ("plain", "simple", "concise", "readable", "language"):
            signals[key] = plain
        for key in ("answer", "question", "task", "brief", "follow", "relevant"):
            signals[key] = answered
        return signals

    def evaluate(self, clause: dict[str, Any], delivery: Delivery) -> Verdict:
        criteria: list[str] = clause["params"]["criteria"]
        if not delivery.text.strip():
            return _verdict(0.0, clause, "The output is empty, so no criterion is met.", met=[])
        output_stems = {stem(w) for w in content_words(delivery.text)}
        signals = self._signals(delivery)
        met = []
        for criterion in criteria:
            stems = {stem(w) for w in content_words(criterion)}
            word_cover = len(stems & output_stems) / len(stems) if stems else 0.0
            # Crude stems differ ("sourc" vs "source"): compare the first five letters.
            signalled = any(value and any(s[:5] == key[:5] for s in stems) for key, value in signals.items())
            if word_cover >= 0.5 or signalled:
                met.append(criterion)
        score = len(met) / len(criteria)
        missing = [c for c in criteria if c not in met]
        rationale = f"Meets {len(met)} of {len(criteria)} criteria."
        if missing:
            rationale += f" Not shown: {'; '.join(missing[:3])}."
        return _verdict(score, clause, rationale, met=met, missing=missing)


class TaskRelevanceJudge(Judge):
    name = "task-relevance"
    version = "1.0"
    kinds = frozenset({"rubric"})

    def evaluate(self, clause: dict[str, Any], delivery: Delivery) -> Verdict:
        words = len(tokens(delivery.text))
        if words == 0:
            return _verdict(0.0, clause, "The output is empty.", words=0)
        recall = _task_recall(delivery)
        length = _clamp(words / 60)
        score = 0.75 * _clamp(recall / 0.6) + 0.25 * length
        return _verdict(
            score,
            clause,
            f"Addresses {recall:.0%} of the task's key terms in {words} words.",
            task_recall=round(recall, 4),
            words=words,
        )


class SpecificityJudge(Judge):
    name = "specificity"
    version = "1.0"
    kinds = frozenset({"rubric"})

    def evaluate(self, clause: dict[str, Any], delivery: Delivery) -> Verdict:
        text = delivery.text
        words = tokens(text)
        if len(words) < 5:
            return _verdict(0.0, clause, "Too little text to be specific.", words=len(words))
        per_100 = 100 / len(words)
        concrete = (len(NUMBER.findall(text)) + len(PROPER.findall(text)) + len(URL_RE.findall(text))) * per_100
        variety = len(set(words)) / len(words)
        filler = len(FILLER.findall(text)) * per_100
        score = 0.5 * _clamp(concrete / 6) + 0.5 * _clamp((variety - 0.3) / 0.4) - _clamp(filler / 10) * 0.3
        return _verdict(
            score,
            clause,
            f"{concrete:.1f} concrete details per 100 words, vocabulary variety {variety:.2f}, "
            f"filler {filler:.1f} per 100 words.",
            concrete_per_100=round(concrete, 3),
            variety=round(variety, 4),
            filler_per_100=round(filler, 3),
        )


class StructureJudge(Judge):
    name = "structure"
    version = "1.0"
    kinds = frozenset({"rubric"})

    def evaluate(self, clause: dict[str, Any], delivery: Delivery) -> Verdict:
        text = delivery.text
        found = sentences(text)
        if not found:
            return _verdict(0.0, clause, "The output has no sentences.", sentences=0)
        lengths = [len(tokens(s)) for s in found]
        mean = statistics.fmean(lengths)
        readable = _clamp(1 - max(0.0, mean - 22) / 25)
        blocks = len(_paragraphs(text)) + len(LIST_ITEM.findall(text))
        shaped = _clamp(blocks / 3) if len(found) > 3 else 1.0
        repeated = 1 - len(set(found)) / len(found)
        score = 0.5 * readable + 0.5 * shaped - repeated
        return _verdict(
            score,
            clause,
            f"{len(found)} sentences averaging {mean:.0f} words in {blocks} block(s); {repeated:.0%} repeated.",
            sentences=len(found),
            mean_sentence_words=round(mean, 2),
            blocks=blocks,
        )
