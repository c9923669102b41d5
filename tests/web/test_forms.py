import pytest
from django import forms

from tests.web.helpers import error_path
from web.forms import error_lines, format_error_line, minor_to_major_text, parse_price


@pytest.mark.parametrize(
    ("text", "currency", "minor"),
    [
        ("49", "usd", 4900),
        ("49.5", "usd", 4950),
        ("49.50", "usd", 4950),
        ("0.01", "usd", 1),
        ("1,05", "eur", 105),
        (" 1 234.00 ", "usd", 123400),
        ("1500", "jpy", 1500),
        ("1500.00", "jpy", 1500),
        ("19.99", "usd", 1999),  # float(19.99) * 100 would be 1998.9999…
    ],
)
def test_prices_parse_exactly(text, currency, minor):
    assert parse_price(text, currency) == minor


@pytest.mark.parametrize("text", ["", "1.005", "1e3", "-1", "0", "0.00", "12.", ".5", "1,000.00", "NaN"])
def test_bad_prices_are_refused(text):
    with pytest.raises(forms.ValidationError):
        parse_price(text, "usd")


def test_minor_units_show_back_as_major_units():
    assert minor_to_major_text(4950, "usd") == "49.50"
    assert minor_to_major_text(5, "usd") == "0.05"
    assert minor_to_major_text(1500, "jpy") == "1500"


def test_nested_pact_errors_flatten_to_readable_lines():
    detail = {
        "clauses": {1: {"params": {"pattern": ["Not a valid pattern."]}}, 0: {"kind": ["Bad kind."]}},
        "terms": {"currency": ["Bad currency."]},
    }
    submitted = {"clauses": [{"key": "a"}, {"key": "no-secrets"}]}
    lines = [format_error_line(path, message) for path, message in error_lines(detail, items=submitted)]
    assert lines == [
        error_path("clauses > 2 (no-secrets) > params > pattern: Not a valid pattern."),
        error_path("clauses > 1 (a) > kind: Bad kind."),
        error_path("terms > currency: Bad currency."),
    ]
    assert error_lines({"clauses": ["Clause keys must be unique."]}) == [(("clauses",), "Clause keys must be unique.")]
    assert error_lines({"non_field_errors": ["Whole thing."]}) == [((), "Whole thing.")]
