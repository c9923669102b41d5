"""Pact content: clause kinds, their parameters, terms, canonical form, hash, diff.

A pact is `{"clauses": [...], "terms": {...}}`. Every clause kind names the
parameters it takes and how it is judged (`method`). Validation returns the
*normalised* content (defaults filled, clauses sorted by key) so two pacts that
mean the same thing hash the same, whatever the key order they were sent in.

Seller-written regexes compile on RE2 (linear time, bounded memory), so no
pattern can stall a judge; JSON Schemas are checked against their metaschema.
"""

from __future__ import annotations

import hashlib
from typing import Any

import jsonschema
import re2
from rest_framework import serializers

from core.evidence import canonical_json
from core.money import SUPPORTED_CURRENCIES
from core.validation import storable_problem

MAX_CLAUSES = 50
MAX_PATTERN_LENGTH = 500
MAX_TEXT = 20_000


class Method:
    DETERMINISTIC = "deterministic"
    HEURISTIC = "heuristic"
    JURY = "jury"


class Severity:
    CRITICAL = "critical"
    MAJOR = "major"
    MINOR = "minor"
    CHOICES = (CRITICAL, MAJOR, MINOR)


class Settlement:
    ALL_OR_NOTHING = "all_or_nothing"
    PRO_RATA = "pro_rata"
    CHOICES = (ALL_OR_NOTHING, PRO_RATA)


def _re2_options() -> re2.Options:
    options = re2.Options()
    options.log_errors = False
    options.max_mem = 8 << 20  # 8 MiB of automaton at most
    return options


def compile_pattern(pattern: str) -> Any:
    """Compile a seller's pattern on RE2; raises re2.error when it is invalid."""
    return re2.compile(pattern, options=_re2_options())


def schema_patterns(schema: Any) -> list[str]:
    """Every `pattern` and `patternProperties` key anywhere in a JSON Schema."""
    found: list[str] = []
    stack = [schema]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            if isinstance(node.get("pattern"), str):
                found.append(node["pattern"])
            if isinstance(node.get("patternProperties"), dict):
                found.extend(str(k) for k in node["patternProperties"])
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return found


class PatternField(serializers.CharField):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(max_length=MAX_PATTERN_LENGTH, trim_whitespace=False, **kwargs)

    def to_internal_value(self, data: Any) -> str:
        value = super().to_internal_value(data)
        try:
            compile_pattern(value)
        except re2.error as exc:
            message = exc.args[0].decode() if exc.args and isinstance(exc.args[0], bytes) else str(exc)
            raise serializers.ValidationError(
                f"Not a valid pattern ({message}). Patterns use RE2 syntax: no look-around or back-references."
            ) from exc
        return value


class _Params(serializers.Serializer):
    """Unknown parameters are refused, not silently dropped."""

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, dict):
            unknown = sorted(set(data) - set(self.fields))
            if unknown:
                raise serializers.ValidationError({name: ["Unknown parameter."] for name in unknown})
        return super().to_internal_value(data)


class JsonSchemaParams(_Params):
    schema = serializers.DictField()

    def validate_schema(self, value: dict) -> dict:
        if len(canonical_json(value)) > MAX_TEXT:
            raise serializers.ValidationError(f"The schema is larger than {MAX_TEXT} characters.")
        try:
            validator = jsonschema.validators.validator_for(value, default=jsonschema.Draft202012Validator)
            validator.check_schema(value)
        except jsonschema.SchemaError as exc:
            raise serializers.ValidationError(f"Not a valid JSON Schema: {exc.message}") from exc
        # The judge applies `pattern` and `patternProperties` with RE2 too (linear time),
        # so every pattern in the schema must be one RE2 accepts.
        for pattern in schema_patterns(value):
            try:
                compile_pattern(pattern)
            except re2.error as exc:
                raise serializers.ValidationError(
                    f"The schema's pattern {pattern[:60]!r} is not valid RE2 (no look-around or back-references)."
                ) from exc
        return value


class PatternParams(_Params):
    pattern = PatternField()


class MaxLatencyParams(_Params):
    max_ms = serializers.IntegerField(min_value=1, max_value=600_000)


class WordCountParams(_Params):
    min = serializers.IntegerField(min_value=0, max_value=1_000_000, required=False)
    max = serializers.IntegerField(min_value=1, max_value=1_000_000, required=False)

    def validate(self, attrs: dict) -> dict:
        if "min" not in attrs and "max" not in attrs:
            raise serializers.ValidationError("Give min, max or both.")
        if "min" in attrs and "max" in attrs and attrs["min"] > attrs["max"]:
            raise serializers.ValidationError({"max": ["max must be at least min."]})
        return attrs


class DomainField(serializers.RegexField):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(
            r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$",
            error_messages={"invalid": "Not a domain name (example: arxiv.org)."},
            **kwargs,
        )

    def to_internal_value(self, data: Any) -> str:
        return super().to_internal_value(data.lower() if isinstance(data, str) else data)


class CitationRateParams(_Params):
    min_rate = serializers.FloatField(min_value=0.0, max_value=1.0)
    allowed_domains = serializers.ListField(child=DomainField(), required=False, max_length=100)

    def validate(self, attrs: dict) -> dict:
        if "allowed_domains" in attrs:
            attrs["allowed_domains"] = sorted(set(attrs["allowed_domains"]))
        return attrs


def _action() -> serializers.RegexField:
    return serializers.RegexField(
        r"^[A-Za-z0-9_.:/-]{1,100}$", error_messages={"invalid": "Action names use letters, digits and _.:/- only."}
    )


class ScopeParams(_Params):
    allowed_actions = serializers.ListField(child=_action(), min_length=1, max_length=200)
    forbidden_actions = serializers.ListField(child=_action(), required=False, max_length=200)

    def validate(self, attrs: dict) -> dict:
        attrs["allowed_actions"] = sorted(set(attrs["allowed_actions"]))
        if "forbidden_actions" in attrs:
            attrs["forbidden_actions"] = sorted(set(attrs["forbidden_actions"]))
            both = set(attrs["allowed_actions"]) & set(attrs["forbidden_actions"])
            if both:
                raise serializers.ValidationError(
                    {"forbidden_actions": [f"Both allowed and forbidden: {', '.join(sorted(both))}."]}
                )
        return attrs


class ReferenceOverlapParams(_Params):
    reference = serializers.CharField(max_length=MAX_TEXT)
    min_score = serializers.FloatField(min_value=0.0, max_value=1.0)


class RubricParams(_Params):
    criteria = serializers.ListField(child=serializers.CharField(max_length=500), min_length=1, max_length=20)
    min_score = serializers.FloatField(min_value=0.0, max_value=1.0)


# kind -> (parameter serializer, method)
CLAUSE_KINDS: dict[str, tuple[type[serializers.Serializer], str]] = {
    "json_schema": (JsonSchemaParams, Method.DETERMINISTIC),
    "regex_required": (PatternParams, Method.DETERMINISTIC),
    "regex_forbidden": (PatternParams, Method.DETERMINISTIC),
    "max_latency_ms": (MaxLatencyParams, Method.DETERMINISTIC),
    "word_count": (WordCountParams, Method.DETERMINISTIC),
    "scope": (ScopeParams, Method.DETERMINISTIC),
    "citation_rate": (CitationRateParams, Method.HEURISTIC),
    "reference_overlap": (ReferenceOverlapParams, Method.HEURISTIC),
    "rubric": (RubricParams, Method.JURY),
}


def method_for(kind: str) -> str:
    return CLAUSE_KINDS[kind][1]


class ClauseSerializer(serializers.Serializer):
    key = serializers.RegexField(
        r"^[a-z0-9][a-z0-9_-]{0,63}$",
        error_messages={"invalid": "Keys are 1-64 lowercase letters, digits, _ or -, starting with a letter or digit."},
    )
    kind = serializers.ChoiceField(choices=sorted(CLAUSE_KINDS))
    params = serializers.DictField()
    weight = serializers.IntegerField(min_value=1, max_value=1000, default=1)
    severity = serializers.ChoiceField(choices=Severity.CHOICES, default=Severity.MAJOR)
    method = serializers.CharField(required=False)  # derived from kind; accepted and ignored
    # Extra judges (by name) a pact asks for on top of the default panel.
    judges = serializers.ListField(
        child=serializers.RegexField(r"^[a-z0-9][a-z0-9:._-]{0,63}$"), required=False, max_length=10
    )

    def validate(self, attrs: dict) -> dict:
        params_serializer_cls, method = CLAUSE_KINDS[attrs["kind"]]
        params = params_serializer_cls(data=attrs["params"])
        if not params.is_valid():
            raise serializers.ValidationError({"params": params.errors})
        given = attrs.get("method")
        if given is not None and given != method:
            raise serializers.ValidationError({"method": [f"A {attrs['kind']} clause is judged {method}."]})
        clause = {
            "key": attrs["key"],
            "kind": attrs["kind"],
            "params": dict(params.validated_data),
            "weight": attrs["weight"],
            "severity": attrs["severity"],
            "method": method,
        }
        if attrs.get("judges"):
            # Present only when asked for, so pacts without it hash as before.
            clause["judges"] = sorted(set(attrs["judges"]))
        return clause


class TermsSerializer(serializers.Serializer):
    price_minor = serializers.IntegerField(min_value=1, max_value=10**11)
    currency = serializers.ChoiceField(choices=sorted(SUPPORTED_CURRENCIES))
    settlement = serializers.ChoiceField(choices=Settlement.CHOICES, default=Settlement.ALL_OR_NOTHING)
    review_window_hours = serializers.IntegerField(min_value=1, max_value=720, default=72)
    delivery_deadline_hours = serializers.IntegerField(min_value=1, max_value=2160, default=48)
    dispute_response_window_hours = serializers.IntegerField(min_value=1, max_value=720, default=48)
    platform_fee_bps = serializers.IntegerField(min_value=0, max_value=10_000, default=1000)

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, dict) and isinstance(data.get("currency"), str):
            data = {**data, "currency": data["currency"].lower()}
        if isinstance(data, dict):
            unknown = sorted(set(data) - set(self.fields))
            if unknown:
                raise serializers.ValidationError({name: ["Unknown term."] for name in unknown})
        return super().to_internal_value(data)


class PactContentSerializer(serializers.Serializer):
    clauses = ClauseSerializer(many=True, allow_empty=False, max_length=MAX_CLAUSES)  # type: ignore[call-arg]  # DRF 3.14+ accepts it; the stubs lag
    terms = TermsSerializer()

    def validate_clauses(self, clauses: list[dict]) -> list[dict]:
        keys = [c["key"] for c in clauses]
        duplicates = sorted({k for k in keys if keys.count(k) > 1})
        if duplicates:
            raise serializers.ValidationError(f"Clause keys must be unique; repeated: {', '.join(duplicates)}.")
        return sorted(clauses, key=lambda c: c["key"])


def normalize_pact(clauses: Any, terms: Any) -> dict[str, Any]:
    """Validate and normalise pact content; raises serializers.ValidationError."""
    problem = storable_problem({"clauses": clauses, "terms": terms})
    if problem:
        raise serializers.ValidationError({"clauses": [problem]})
    content = PactContentSerializer(data={"clauses": clauses, "terms": terms})
    content.is_valid(raise_exception=True)
    data = content.validated_data
    return {"clauses": [dict(c) for c in data["clauses"]], "terms": dict(data["terms"])}


def pact_hash(content: dict[str, Any]) -> str:
    """sha256 of the canonical JSON of normalised `{"clauses", "terms"}`."""
    return hashlib.sha256(
        canonical_json({"clauses": content["clauses"], "terms": content["terms"]}).encode()
    ).hexdigest()


def pact_diff(previous: dict[str, Any] | None, current: dict[str, Any]) -> dict[str, Any]:
    """What changed from `previous` to `current` (both normalised)."""
    if previous is None:
        return {
            "clauses_added": [c["key"] for c in current["clauses"]],
            "clauses_removed": [],
            "clauses_changed": [],
            "terms_changed": {},
        }
    before = {c["key"]: c for c in previous["clauses"]}
    after = {c["key"]: c for c in current["clauses"]}
    changed = []
    for key in sorted(before.keys() & after.keys()):
        fields = {
            name: {"from": before[key].get(name), "to": after[key].get(name)}
            for name in ("kind", "params", "weight", "severity", "judges")
            if before[key].get(name) != after[key].get(name)
        }
        if fields:
            changed.append({"key": key, "changes": fields})
    terms_changed = {
        name: {"from": previous["terms"].get(name), "to": current["terms"].get(name)}
        for name in sorted(previous["terms"].keys() | current["terms"].keys())
        if previous["terms"].get(name) != current["terms"].get(name)
    }
    return {
        "clauses_added": sorted(after.keys() - before.keys()),
        "clauses_removed": sorted(before.keys() - after.keys()),
        "clauses_changed": changed,
        "terms_changed": terms_changed,
    }


def next_version(previous_version: str | None, previous: dict[str, Any] | None, current: dict[str, Any]) -> str:
    """Semantic version of a template's next published version.

    Major: a clause added or removed, or any term changed (what the buyer is
    promised or pays). Minor: a clause's kind or parameters changed. Patch:
    only weights or severities changed.
    """
    if previous_version is None or previous is None:
        return "1.0.0"
    major, minor, patch = (int(part) for part in previous_version.split("."))
    diff = pact_diff(previous, current)
    if diff["clauses_added"] or diff["clauses_removed"] or diff["terms_changed"]:
        return f"{major + 1}.0.0"
    if any({"kind", "params"} & c["changes"].keys() for c in diff["clauses_changed"]):
        return f"{major}.{minor + 1}.0"
    return f"{major}.{minor}.{patch + 1}"


def latency_budget_ms(clauses: list[dict[str, Any]]) -> int | None:
    """The strictest max_latency_ms clause of a pact, if any."""
    budgets = [c["params"]["max_ms"] for c in clauses if c["kind"] == "max_latency_ms"]
    return min(budgets) if budgets else None
