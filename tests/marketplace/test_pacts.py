import json

import pytest
from rest_framework.exceptions import ValidationError

from marketplace.pacts import latency_budget_ms, next_version, normalize_pact, pact_diff, pact_hash
from tests.marketplace.conftest import clauses, terms


def _reordered(value):
    """The same JSON with every object's keys in reverse order."""
    if isinstance(value, dict):
        return {k: _reordered(value[k]) for k in reversed(list(value))}
    if isinstance(value, list):
        return [_reordered(v) for v in value]
    return value


def test_hash_is_stable_across_key_order_and_clause_order():
    a = normalize_pact(clauses(), terms())
    b = normalize_pact(list(reversed(_reordered(clauses()))), _reordered(terms()))
    assert pact_hash(a) == pact_hash(b)
    assert len(pact_hash(a)) == 64


def test_hash_is_stable_after_a_json_round_trip():
    a = normalize_pact(clauses(), terms())
    assert pact_hash(json.loads(json.dumps(a))) == pact_hash(a)


def test_defaults_make_equivalent_pacts_hash_the_same():
    explicit = normalize_pact(clauses(), terms(dispute_response_window_hours=48))
    implicit = normalize_pact(clauses(), terms())
    assert pact_hash(explicit) == pact_hash(implicit)


@pytest.mark.parametrize(
    "mutate",
    [
        lambda c, t: c[0]["params"].update(min_rate=0.91),
        lambda c, t: c[1].update(weight=2),
        lambda c, t: c[1].update(severity="critical"),
        lambda c, t: c[2]["params"]["allowed_actions"].append("write"),
        lambda c, t: c.pop(),
        lambda c, t: c.append({"key": "short", "kind": "word_count", "params": {"max": 300}}),
        lambda c, t: t.update(price_minor=5001),
        lambda c, t: t.update(currency="eur"),
        lambda c, t: t.update(settlement="pro_rata"),
        lambda c, t: t.update(review_window_hours=24),
        lambda c, t: t.update(platform_fee_bps=999),
    ],
)
def test_hash_changes_with_any_clause_or_term(mutate):
    base = pact_hash(normalize_pact(clauses(), terms()))
    c, t = clauses(), terms()
    mutate(c, t)
    assert pact_hash(normalize_pact(c, t)) != base


def test_method_follows_from_the_kind():
    content = normalize_pact(clauses(), terms())
    methods = {c["key"]: c["method"] for c in content["clauses"]}
    assert methods == {"cites": "heuristic", "fast": "deterministic", "no-payments": "deterministic", "quality": "jury"}


def _errors(c, t=None):
    with pytest.raises(ValidationError) as excinfo:
        normalize_pact(c, terms() if t is None else t)
    return excinfo.value.detail


BAD_CLAUSES = [
    ({"key": "x", "kind": "telepathy", "params": {}}, "kind"),
    ({"key": "x", "kind": "regex_required", "params": {}}, "params"),
    ({"key": "x", "kind": "regex_required", "params": {"pattern": "(unclosed"}}, "params"),
    ({"key": "x", "kind": "regex_forbidden", "params": {"pattern": r"(a)\1"}}, "params"),
    ({"key": "x", "kind": "regex_forbidden", "params": {"pattern": "(?=look)ahead"}}, "params"),
    ({"key": "x", "kind": "regex_required", "params": {"pattern": "a" * 501}}, "params"),
    ({"key": "x", "kind": "json_schema", "params": {"schema": {"type": "bogus"}}}, "params"),
    ({"key": "x", "kind": "json_schema", "params": {"schema": "not an object"}}, "params"),
    ({"key": "x", "kind": "max_latency_ms", "params": {"max_ms": 0}}, "params"),
    ({"key": "x", "kind": "max_latency_ms", "params": {"max_ms": "fast"}}, "params"),
    ({"key": "x", "kind": "word_count", "params": {}}, "params"),
    ({"key": "x", "kind": "word_count", "params": {"min": 10, "max": 5}}, "params"),
    ({"key": "x", "kind": "citation_rate", "params": {"min_rate": 1.5}}, "params"),
    ({"key": "x", "kind": "citation_rate", "params": {"min_rate": 0.5, "allowed_domains": ["not a domain"]}}, "params"),
    ({"key": "x", "kind": "scope", "params": {"allowed_actions": []}}, "params"),
    ({"key": "x", "kind": "scope", "params": {"allowed_actions": ["a"], "forbidden_actions": ["a"]}}, "params"),
    ({"key": "x", "kind": "reference_overlap", "params": {"min_score": 0.5}}, "params"),
    ({"key": "x", "kind": "rubric", "params": {"criteria": [], "min_score": 0.5}}, "params"),
    ({"key": "x", "kind": "rubric", "params": {"criteria": ["ok"], "min_score": 0.5, "extra": 1}}, "params"),
    ({"key": "x", "kind": "max_latency_ms", "params": {"max_ms": 10}, "weight": 0}, "weight"),
    ({"key": "x", "kind": "max_latency_ms", "params": {"max_ms": 10}, "weight": -3}, "weight"),
    ({"key": "x", "kind": "max_latency_ms", "params": {"max_ms": 10}, "weight": 1.5}, "weight"),
    ({"key": "x", "kind": "max_latency_ms", "params": {"max_ms": 10}, "severity": "fatal"}, "severity"),
    ({"key": "Bad Key!", "kind": "max_latency_ms", "params": {"max_ms": 10}}, "key"),
    ({"key": "x", "kind": "max_latency_ms", "params": {"max_ms": 10}, "method": "jury"}, "method"),
]


@pytest.mark.parametrize(("clause", "field"), BAD_CLAUSES)
def test_invalid_clauses_are_refused_with_the_field_named(clause, field):
    detail = _errors([clause])
    assert field in detail["clauses"][0]


def test_duplicate_keys_empty_and_non_list_clauses_are_refused():
    assert "unique" in str(_errors([clauses()[0], clauses()[0]])["clauses"])
    assert "clauses" in _errors([])
    assert "clauses" in _errors({"key": "x"})


@pytest.mark.parametrize(
    ("bad_terms", "field"),
    [
        (terms(price_minor=0), "price_minor"),
        (terms(price_minor=-5), "price_minor"),
        (terms(price_minor=10.5), "price_minor"),
        (terms(currency="usdollars"), "currency"),
        (terms(currency="xyz"), "currency"),
        (terms(platform_fee_bps=10_001), "platform_fee_bps"),
        (terms(platform_fee_bps=-1), "platform_fee_bps"),
        (terms(review_window_hours=0), "review_window_hours"),
        (terms(review_window_hours=10_000), "review_window_hours"),
        (terms(delivery_deadline_hours=0), "delivery_deadline_hours"),
        (terms(settlement="winner_takes_all"), "settlement"),
        (terms(surprise=True), "surprise"),
        ({"currency": "usd"}, "price_minor"),
    ],
)
def test_invalid_terms_are_refused(bad_terms, field):
    assert field in _errors(clauses(), bad_terms)["terms"]


def test_currency_is_normalised_to_lowercase():
    assert normalize_pact(clauses(), terms(currency="EUR"))["terms"]["currency"] == "eur"


def test_diff_names_added_removed_and_changed_clauses_and_terms():
    before = normalize_pact(clauses(), terms())
    c = clauses()
    c[0]["params"]["min_rate"] = 0.8
    c.pop(1)
    c.append({"key": "short", "kind": "word_count", "params": {"max": 300}})
    after = normalize_pact(c, terms(price_minor=6000))
    diff = pact_diff(before, after)
    assert diff["clauses_added"] == ["short"]
    assert diff["clauses_removed"] == ["fast"]
    assert diff["clauses_changed"] == [
        {"key": "cites", "changes": {"params": {"from": {"min_rate": 0.9}, "to": {"min_rate": 0.8}}}}
    ]
    assert diff["terms_changed"] == {"price_minor": {"from": 5000, "to": 6000}}
    assert pact_diff(after, after) == {
        "clauses_added": [],
        "clauses_removed": [],
        "clauses_changed": [],
        "terms_changed": {},
    }


def test_semantic_versions():
    v1 = normalize_pact(clauses(), terms())
    assert next_version(None, None, v1) == "1.0.0"
    c = clauses()
    c[1]["weight"] = 5
    assert next_version("1.0.0", v1, normalize_pact(c, terms())) == "1.0.1"
    c[0]["params"]["min_rate"] = 0.95
    assert next_version("1.0.1", v1, normalize_pact(c, terms())) == "1.1.0"
    assert next_version("1.1.0", v1, normalize_pact(clauses(), terms(price_minor=1))) == "2.0.0"


def test_latency_budget_is_the_strictest_latency_clause():
    c = [*clauses(), {"key": "faster", "kind": "max_latency_ms", "params": {"max_ms": 1200}}]
    assert latency_budget_ms(normalize_pact(c, terms())["clauses"]) == 1200
    assert latency_budget_ms([]) is None


@pytest.mark.parametrize(
    "schema",
    [
        {"type": "string", "pattern": "(?=lookahead)x"},
        {"type": "object", "patternProperties": {"(a)\\1": {"type": "integer"}}},
        {"type": "object", "properties": {"deep": {"items": {"pattern": "(?<!x)y"}}}},
    ],
)
def test_json_schema_patterns_must_be_re2(schema):
    detail = _errors([{"key": "x", "kind": "json_schema", "params": {"schema": schema}}])
    assert "RE2" in str(detail["clauses"][0]["params"])


def test_a_change_of_judges_shows_in_the_diff():
    before = normalize_pact(clauses(), terms())
    c = clauses()
    c[3]["judges"] = ["structure"]
    after = normalize_pact(c, terms())
    assert pact_hash(after) != pact_hash(before)
    assert pact_diff(before, after)["clauses_changed"] == [
        {"key": "quality", "changes": {"judges": {"from": None, "to": ["structure"]}}}
    ]
