"""Each offline judge on clear passes, clear failures and edge cases."""

import json

import pytest

from marketplace.pacts import normalize_pact
from trust.judges import OFFLINE_JUDGES, Delivery, JudgeError, default_panel, get_judge
from trust.judges.heuristic import lcs_length, rouge_l, token_f1

TERMS = {"price_minor": 100, "currency": "usd"}


def clause(kind, params, key="c", severity="major"):
    return normalize_pact([{"key": key, "kind": kind, "params": params, "severity": severity}], TERMS)["clauses"][0]


def judge(name):
    found = get_judge(name)
    assert found is not None
    return found


def run(name, kind, params, **delivery):
    return judge(name).evaluate(clause(kind, params), Delivery(**{"output": "", **delivery}))


HUGE = "word " * 2_000_000  # 10 MB of text
JUNK = "\x00\x01\xff\ufffd" * 1000
UNICODE = "Ünïcödé — 日本語のテキスト, emoji 🚀, RTL עברית."


# --- json_schema ------------------------------------------------------------------------

SCHEMA = {"type": "object", "required": ["title", "year"], "properties": {"year": {"type": "integer"}}}


def test_json_schema_passes_matching_json_text_and_objects():
    assert run("json-schema", "json_schema", {"schema": SCHEMA}, output='{"title": "x", "year": 2020}').passed
    assert run("json-schema", "json_schema", {"schema": SCHEMA}, output={"title": "x", "year": 2020}).passed


@pytest.mark.parametrize(
    ("output", "reason"),
    [
        ('{"title": "x"}', "year"),
        ('{"title": "x", "year": "2020"}', "year"),
        ("not json at all", "not valid JSON"),
        ("", "not valid JSON"),
        pytest.param(JUNK, "not valid JSON", id="binary-junk"),
        pytest.param("[" * 100_000, "not valid JSON", id="deep-nesting"),
    ],
)
def test_json_schema_fails_with_the_reason(output, reason):
    verdict = run("json-schema", "json_schema", {"schema": SCHEMA}, output=output)
    assert not verdict.passed
    assert verdict.score == 0.0
    assert reason in verdict.rationale


# --- regexes -------------------------------------------------------------------------------


def test_regex_required_and_forbidden():
    assert run("regex-required", "regex_required", {"pattern": r"(?i)summary:"}, output="SUMMARY: fine").passed
    assert not run("regex-required", "regex_required", {"pattern": r"(?i)summary:"}, output="nothing").passed
    leak = run("regex-forbidden", "regex_forbidden", {"pattern": r"api[_-]?key\s*="}, output="my api_key = 123")
    assert not leak.passed
    assert leak.evidence["match"] == "api_key ="
    assert run("regex-forbidden", "regex_forbidden", {"pattern": r"api[_-]?key\s*="}, output=UNICODE).passed


def test_regexes_run_in_linear_time_on_hostile_input():
    # (a+)+$ backtracks exponentially on a backtracking engine; RE2 answers at once.
    verdict = run("regex-required", "regex_required", {"pattern": r"(a+)+$"}, output="a" * 50_000 + "!")
    assert not verdict.passed
    assert run("regex-forbidden", "regex_forbidden", {"pattern": "x"}, output=HUGE).passed


def test_unicode_patterns_and_text():
    assert run("regex-required", "regex_required", {"pattern": "日本語"}, output=UNICODE).passed


# --- latency, word count, scope ---------------------------------------------------------------


@pytest.mark.parametrize(("latency", "passed"), [(100, True), (5000, True), (5001, False)])
def test_latency(latency, passed):
    assert run("latency", "max_latency_ms", {"max_ms": 5000}, output="x", latency_ms=latency).passed is passed


def test_missing_latency_fails_as_unproven():
    verdict = run("latency", "max_latency_ms", {"max_ms": 5000}, output="x", latency_ms=None)
    assert not verdict.passed
    assert "unproven" in verdict.rationale


@pytest.mark.parametrize(
    ("output", "passed"),
    [("one two three four five", True), ("one two", False), ("w " * 11, False), ("", False), (UNICODE, True)],
)
def test_word_count(output, passed):
    assert run("word-count", "word_count", {"min": 3, "max": 10}, output=output).passed is passed


def test_word_count_on_huge_output():
    verdict = run("word-count", "word_count", {"max": 500}, output=HUGE)
    assert not verdict.passed
    # Judges read the first 2,000,000 characters of an output: 400,000 of these words.
    assert verdict.evidence["words"] == 400_000


def test_scope():
    params = {"allowed_actions": ["search", "read"], "forbidden_actions": ["payments"]}
    assert run("scope", "scope", params, output="x", actions=["search", {"name": "read", "url": "u"}]).passed
    assert run("scope", "scope", params, output="x", actions=[]).passed
    forbidden = run("scope", "scope", params, output="x", actions=["search", "payments"])
    assert not forbidden.passed
    assert "payments" in forbidden.rationale
    outside = run("scope", "scope", params, output="x", actions=["search", "browse_payments"])
    assert not outside.passed
    assert outside.score == 0.5
    assert not run("scope", "scope", params, output="x", actions=[{"no": "name"}]).passed


# --- citation rate ---------------------------------------------------------------------------------

CITED = (
    "Regular expressions can take exponential time on backtracking engines [1]. "
    "RE2 guarantees linear time in the size of the input https://github.com/google/re2 . "
    "Thompson described the construction in 1968 (Thompson, 1968)."
)


def test_citation_rate_counts_markers_urls_and_author_year():
    verdict = run(
        "citation-coverage", "citation_rate", {"min_rate": 0.9}, output=CITED, citations=["https://arxiv.org/abs/1"]
    )
    assert verdict.passed
    assert verdict.evidence == {"claims": 3, "cited": 3, "disallowed_domains": []}


def test_citation_rate_fails_uncited_claims():
    text = CITED + " Most engines today are vulnerable to this problem in practice. Nobody has fixed it yet at all."
    verdict = run(
        "citation-coverage", "citation_rate", {"min_rate": 0.9}, output=text, citations=["https://arxiv.org/abs/1"]
    )
    assert not verdict.passed
    assert verdict.score == pytest.approx(3 / 5)


def test_citation_rate_respects_allowed_domains():
    params = {"min_rate": 0.9, "allowed_domains": ["arxiv.org"]}
    verdict = run(
        "citation-coverage",
        "citation_rate",
        params,
        output=(
            "Backtracking engines can take exponential time on crafted input [1]. "
            "Linear engines avoid it entirely https://blog.example.com/x ."
        ),
        citations=["https://www.arxiv.org/abs/2"],
    )
    assert verdict.evidence["cited"] == 1
    assert verdict.evidence["disallowed_domains"] == ["blog.example.com"]
    assert not verdict.passed


@pytest.mark.parametrize("output", ["", "Short.", "Is this a question about things?"])
def test_citation_rate_with_no_claims_fails_with_a_reason(output):
    verdict = run("citation-coverage", "citation_rate", {"min_rate": 0.5}, output=output)
    assert not verdict.passed
    assert "no claims" in verdict.rationale


def test_citation_rate_on_binary_junk_fails():
    verdict = run("citation-coverage", "citation_rate", {"min_rate": 0.5}, output=JUNK)
    assert not verdict.passed
    assert verdict.score == 0.0


def test_citation_rate_on_huge_output_does_not_crash():
    verdict = run(
        "citation-coverage",
        "citation_rate",
        {"min_rate": 0.5},
        output=("A long uncited claim sentence here. " * 300_000),
    )
    assert not verdict.passed


# --- reference overlap ----------------------------------------------------------------------------


def test_token_f1_and_rouge_l_against_hand_computed_values():
    a = ["the", "cat", "sat", "on", "the", "mat"]
    b = ["the", "cat", "lay", "on", "the", "mat"]
    # 5 common tokens of 6 each: precision = recall = 5/6.
    assert token_f1(a, b) == pytest.approx(5 / 6)
    # LCS = the cat on the mat = 5.
    assert lcs_length(a, b) == 5
    assert rouge_l(a, b) == pytest.approx(5 / 6)
    assert token_f1([], b) == 0.0
    assert rouge_l(a, []) == 0.0


def test_reference_overlap():
    reference = "RE2 runs in time linear in the input size and never backtracks."
    good = run("reference-overlap", "reference_overlap", {"reference": reference, "min_score": 0.6}, output=reference)
    assert good.passed
    assert good.score == 1.0
    bad = run(
        "reference-overlap",
        "reference_overlap",
        {"reference": reference, "min_score": 0.6},
        output="Bananas are yellow.",
    )
    assert not bad.passed
    huge = run("reference-overlap", "reference_overlap", {"reference": reference, "min_score": 0.6}, output=HUGE)
    assert not huge.passed


# --- the jury ------------------------------------------------------------------------------------

RUBRIC = {
    "criteria": ["answers the question asked", "names the sources it relies on", "states its uncertainty"],
    "min_score": 0.6,
}
TASK = "What are the failure modes of regular expression engines on adversarial input?"
GOOD_ANSWER = """Regular expression engines that backtrack can take exponential time on adversarial input [1].

- Nested quantifiers such as (a+)+ are the classic failure mode (Cox, 2007).
- Engines like RE2 avoid it by simulating automata in linear time https://github.com/google/re2 .

The evidence suggests most production outages come from a handful of patterns, though data is limited."""
POOR_ANSWER = "It is really very basically fine. It is really very basically fine. It is really very basically fine."


@pytest.mark.parametrize("name", ["criteria-coverage", "task-relevance", "specificity", "structure"])
def test_jury_judges_separate_a_good_answer_from_a_poor_one(name):
    good = run(name, "rubric", RUBRIC, output=GOOD_ANSWER, task=TASK, citations=["https://arxiv.org/abs/1"])
    poor = run(name, "rubric", RUBRIC, output=POOR_ANSWER, task=TASK)
    assert good.score > poor.score
    assert good.passed
    assert not poor.passed


@pytest.mark.parametrize("name", ["criteria-coverage", "task-relevance", "specificity", "structure"])
@pytest.mark.parametrize(
    "output",
    ["", pytest.param(JUNK, id="binary-junk"), pytest.param(UNICODE, id="unicode"), {"structured": ["json", "output"]}],
)
def test_jury_judges_survive_edge_cases(name, output):
    verdict = run(name, "rubric", RUBRIC, output=output, task=TASK)
    assert 0.0 <= verdict.score <= 1.0
    assert verdict.rationale


def test_jury_judges_handle_huge_output():
    for name in ("criteria-coverage", "task-relevance", "specificity", "structure"):
        verdict = run(name, "rubric", RUBRIC, output=HUGE[:3_000_000], task=TASK)
        assert 0.0 <= verdict.score <= 1.0


def test_criteria_coverage_names_what_is_missing():
    verdict = run(
        "criteria-coverage",
        "rubric",
        RUBRIC,
        output="Backtracking engines fail on nested quantifiers in adversarial input.",
        task=TASK,
    )
    assert "names the sources it relies on" in verdict.evidence["missing"]


# --- registry and panels ------------------------------------------------------------------------------


def test_every_offline_judge_has_a_name_a_version_and_kinds():
    names = [j.name for j in OFFLINE_JUDGES]
    assert len(names) == len(set(names))
    for j in OFFLINE_JUDGES:
        assert j.version
        assert j.kinds


def test_default_panels():
    assert default_panel("regex_forbidden") == ["regex-forbidden"]
    assert default_panel("citation_rate") == ["citation-coverage"]
    assert default_panel("rubric") == ["criteria-coverage", "task-relevance", "specificity"]
    assert default_panel("rubric", extended=True)[-1] == "structure"
    assert default_panel("rubric", extra=["structure"]) == [
        "criteria-coverage",
        "task-relevance",
        "specificity",
        "structure",
    ]


def test_a_schema_the_validator_cannot_apply_is_a_judge_error():
    bad = {
        "key": "c",
        "kind": "json_schema",
        "params": {"schema": {"$ref": "#/definitions/missing"}},
        "weight": 1,
        "severity": "major",
        "method": "deterministic",
    }
    with pytest.raises(JudgeError):
        judge("json-schema").evaluate(bad, Delivery(output=json.dumps({"a": 1})))


def test_schema_patterns_run_on_re2_so_a_hostile_pattern_cannot_stall_the_judge():
    schema = {
        "type": "object",
        "properties": {"name": {"type": "string", "pattern": "^(a+)+$"}},
        "patternProperties": {"^x(y+)+$": {"type": "integer"}},
    }
    # Python's backtracking `re` takes hours on this input; RE2 answers at once.
    verdict = run("json-schema", "json_schema", {"schema": schema}, output={"name": "a" * 5000 + "!", "xyyyy": "no"})
    assert not verdict.passed
    assert "does not match" in verdict.rationale or "not of type" in verdict.rationale
    ok = run("json-schema", "json_schema", {"schema": schema}, output={"name": "aaaa", "xyy": 3})
    assert ok.passed
