"""Deterministic judges: one authoritative verdict per clause, a gate.

Each reads only the delivery's recorded facts (output, latency, action log), so
the same delivery always gets the same verdict.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import jsonschema
import referencing.exceptions

from marketplace.pacts import compile_pattern
from trust.judges.base import Delivery, Judge, JudgeError, Verdict
from trust.judges.text import tokens


def _gate(passed: bool, rationale: str, **evidence: Any) -> Verdict:
    return Verdict(score=1.0 if passed else 0.0, passed=passed, rationale=rationale, evidence=evidence)


def _re2_pattern(validator: Any, pattern: str, instance: Any, schema: Any) -> Iterator[jsonschema.ValidationError]:
    if validator.is_type(instance, "string") and not compile_pattern(pattern).search(instance):
        yield jsonschema.ValidationError(f"{instance[:80]!r} does not match {pattern!r}")


def _re2_pattern_properties(validator: Any, patterns: dict, instance: Any, schema: Any) -> Iterator[Any]:
    if not validator.is_type(instance, "object"):
        return
    for pattern, subschema in patterns.items():
        compiled = compile_pattern(pattern)
        for key, value in instance.items():
            if compiled.search(key):
                yield from validator.descend(value, subschema, path=key, schema_path=pattern)


def _re2_validator(base: Any) -> Any:
    """The schema's validator with `pattern` and `patternProperties` on RE2: a
    schema's regex is written by a party to the pact and must not stall a judge."""
    return jsonschema.validators.extend(base, {"pattern": _re2_pattern, "patternProperties": _re2_pattern_properties})


class JsonSchemaJudge(Judge):
    name = "json-schema"
    version = "1.0"
    kinds = frozenset({"json_schema"})
    MAX_ERRORS = 5

    def evaluate(self, clause: dict[str, Any], delivery: Delivery) -> Verdict:
        document = delivery.output
        if isinstance(document, str):
            try:
                document = json.loads(document)
            except (ValueError, RecursionError):
                return _gate(False, "The output is not valid JSON, so it cannot match the schema.")
        schema = clause["params"]["schema"]
        try:
            validator_cls = _re2_validator(
                jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
            )
            validator = validator_cls(schema)
            errors = sorted(validator.iter_errors(document), key=lambda e: list(e.absolute_path))[: self.MAX_ERRORS]
        except (jsonschema.SchemaError, referencing.exceptions.Unresolvable, RecursionError) as exc:
            raise JudgeError(f"The schema could not be applied: {exc}") from exc
        if errors:
            described = [f"{'/'.join(map(str, e.absolute_path)) or '(root)'}: {e.message[:200]}" for e in errors]
            return _gate(False, f"The output does not match the schema: {described[0]}", errors=described)
        return _gate(True, "The output matches the schema.")


class RegexRequiredJudge(Judge):
    name = "regex-required"
    version = "1.0"
    kinds = frozenset({"regex_required"})

    def evaluate(self, clause: dict[str, Any], delivery: Delivery) -> Verdict:
        match = compile_pattern(clause["params"]["pattern"]).search(delivery.text)
        if match is None:
            return _gate(False, "The required pattern does not occur in the output.")
        return _gate(True, "The required pattern occurs in the output.", match=match.group(0)[:200], at=match.start())


class RegexForbiddenJudge(Judge):
    name = "regex-forbidden"
    version = "1.0"
    kinds = frozenset({"regex_forbidden"})

    def evaluate(self, clause: dict[str, Any], delivery: Delivery) -> Verdict:
        match = compile_pattern(clause["params"]["pattern"]).search(delivery.text)
        if match is None:
            return _gate(True, "The forbidden pattern does not occur in the output.")
        return _gate(False, "The output contains the forbidden pattern.", match=match.group(0)[:200], at=match.start())


class MaxLatencyJudge(Judge):
    name = "latency"
    version = "1.0"
    kinds = frozenset({"max_latency_ms"})

    def evaluate(self, clause: dict[str, Any], delivery: Delivery) -> Verdict:
        limit = clause["params"]["max_ms"]
        if delivery.latency_ms is None:
            return _gate(False, f"No latency was recorded for this delivery, so the {limit} ms promise is unproven.")
        ok = delivery.latency_ms <= limit
        verb = "within" if ok else "over"
        return _gate(
            ok, f"Answered in {delivery.latency_ms} ms, {verb} the {limit} ms limit.", latency_ms=delivery.latency_ms
        )


class WordCountJudge(Judge):
    name = "word-count"
    version = "1.0"
    kinds = frozenset({"word_count"})

    def evaluate(self, clause: dict[str, Any], delivery: Delivery) -> Verdict:
        params = clause["params"]
        count = len(tokens(delivery.text, limit=10_000_000))
        low, high = params.get("min"), params.get("max")
        if low is not None and count < low:
            return _gate(False, f"{count} words, fewer than the minimum of {low}.", words=count)
        if high is not None and count > high:
            return _gate(False, f"{count} words, more than the maximum of {high}.", words=count)
        return _gate(True, f"{count} words, within the agreed length.", words=count)


class ScopeJudge(Judge):
    name = "scope"
    version = "1.0"
    kinds = frozenset({"scope"})

    def evaluate(self, clause: dict[str, Any], delivery: Delivery) -> Verdict:
        allowed = set(clause["params"]["allowed_actions"])
        forbidden = set(clause["params"].get("forbidden_actions", []))
        used = delivery.action_names
        if len(used) != len(delivery.actions):
            return _gate(False, "The action log has entries without a name, so its scope cannot be checked.")
        touched_forbidden = sorted({a for a in used if a in forbidden})
        outside = sorted({a for a in used if a not in allowed and a not in forbidden})
        in_scope = sum(1 for a in used if a in allowed)
        score = in_scope / len(used) if used else 1.0
        if touched_forbidden:
            return Verdict(
                score=score,
                passed=False,
                rationale=f"Used forbidden action(s): {', '.join(touched_forbidden)}.",
                evidence={"forbidden": touched_forbidden, "outside": outside, "actions": len(used)},
            )
        if outside:
            return Verdict(
                score=score,
                passed=False,
                rationale=f"Used action(s) outside the agreed scope: {', '.join(outside)}.",
                evidence={"outside": outside, "actions": len(used)},
            )
        return Verdict(
            score=1.0,
            passed=True,
            rationale=f"All {len(used)} logged action(s) are within the agreed scope."
            if used
            else "No actions logged.",
            evidence={"actions": len(used)},
        )
