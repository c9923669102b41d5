"""Heuristic judges: measured signals with a threshold, not exact facts.

`citation-coverage` counts claim sentences and the ones carrying a citation
(a URL, a numbered marker such as [2] that points at a listed citation, or an
author-year reference); `reference-overlap` compares the output with the
agreed reference by token F1 and ROUGE-L.
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

from trust.judges.base import Delivery, Judge, Verdict
from trust.judges.text import (
    AUTHOR_YEAR_RE,
    MARKER_RE,
    URL_RE,
    domain_allowed,
    domain_of,
    sentences,
    tokens,
)

MIN_CLAIM_WORDS = 5
QUESTION_OR_HEADING = re.compile(r"^(#+\s|.*\?$)")


def _marker_numbers(marker: str) -> list[int]:
    return [int(n) for n in re.findall(r"\d+", marker)]


class CitationRateJudge(Judge):
    name = "citation-coverage"
    version = "1.0"
    kinds = frozenset({"citation_rate"})

    def evaluate(self, clause: dict[str, Any], delivery: Delivery) -> Verdict:
        params = clause["params"]
        min_rate: float = params["min_rate"]
        allowed: list[str] = params.get("allowed_domains", [])
        listed = [c for c in delivery.citations if isinstance(c, str)]

        def source_ok(url: str) -> bool:
            return not allowed or domain_allowed(domain_of(url), allowed)

        claims = 0
        cited = 0
        disallowed: set[str] = set()
        for sentence in sentences(delivery.text):
            if len(tokens(sentence, limit=MIN_CLAIM_WORDS + 1)) < MIN_CLAIM_WORDS or QUESTION_OR_HEADING.match(
                sentence
            ):
                continue
            claims += 1
            sources: list[str] = URL_RE.findall(sentence)
            for marker in MARKER_RE.findall(sentence):
                for n in _marker_numbers(marker):
                    if 1 <= n <= len(listed):
                        sources.append(listed[n - 1])
            has_author_year = bool(AUTHOR_YEAR_RE.search(sentence))
            good = [s for s in sources if source_ok(s) or not s.lower().startswith("http")]
            disallowed.update(domain_of(s) for s in sources if s.lower().startswith("http") and not source_ok(s))
            if good or (has_author_year and not allowed):
                cited += 1
        if claims == 0:
            return Verdict(
                score=0.0,
                passed=False,
                rationale="The output makes no claims that could carry citations.",
                evidence={"claims": 0},
            )
        rate = cited / claims
        rationale = (
            f"{cited} of {claims} claim sentences carry a citation ({rate:.0%}; the pact asks for {min_rate:.0%})."
        )
        if disallowed:
            rationale += f" Sources outside the allowed domains do not count: {', '.join(sorted(disallowed))}."
        return Verdict(
            score=round(rate, 6),
            passed=rate >= min_rate,
            rationale=rationale,
            evidence={"claims": claims, "cited": cited, "disallowed_domains": sorted(disallowed)},
        )


MAX_LCS_TOKENS = 1500  # ROUGE-L is O(n*m); longer texts are compared on their first 1500 tokens


def token_f1(candidate: list[str], reference: list[str]) -> float:
    if not candidate or not reference:
        return 0.0
    common = sum((Counter(candidate) & Counter(reference)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(candidate), common / len(reference)
    return 2 * precision * recall / (precision + recall)


def lcs_length(a: list[str], b: list[str]) -> int:
    if len(a) < len(b):
        a, b = b, a
    previous = [0] * (len(b) + 1)
    for x in a:
        current = [0]
        for j, y in enumerate(b, start=1):
            current.append(previous[j - 1] + 1 if x == y else max(previous[j], current[j - 1]))
        previous = current
    return previous[-1]


def rouge_l(candidate: list[str], reference: list[str]) -> float:
    candidate, reference = candidate[:MAX_LCS_TOKENS], reference[:MAX_LCS_TOKENS]
    if not candidate or not reference:
        return 0.0
    lcs = lcs_length(candidate, reference)
    if lcs == 0:
        return 0.0
    precision, recall = lcs / len(candidate), lcs / len(reference)
    return 2 * precision * recall / (precision + recall)


class ReferenceOverlapJudge(Judge):
    name = "reference-overlap"
    version = "1.0"
    kinds = frozenset({"reference_overlap"})

    def evaluate(self, clause: dict[str, Any], delivery: Delivery) -> Verdict:
        params = clause["params"]
        candidate, reference = tokens(delivery.text), tokens(params["reference"])
        f1, rl = token_f1(candidate, reference), rouge_l(candidate, reference)
        score = round((f1 + rl) / 2, 6)
        return Verdict(
            score=score,
            passed=score >= params["min_score"],
            rationale=(
                f"Overlap with the reference: token F1 {f1:.2f}, ROUGE-L {rl:.2f}, mean {score:.2f} "
                f"(the pact asks for {params['min_score']:.2f})."
            ),
            evidence={"token_f1": round(f1, 6), "rouge_l": round(rl, 6)},
        )
