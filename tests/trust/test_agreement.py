"""Krippendorff's alpha (trust.agreement): the published worked examples, the
`krippendorff` package as an oracle on random data, and the edge cases."""

from __future__ import annotations

import math
from typing import Any

import krippendorff
import numpy as np
import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from trust.agreement import LEVELS, alpha_or_none, krippendorff_alpha

N = None
# Rows = coders, columns = units; annotated so mypy does not join mixed rows to `object`.
Data = list[list[Any]]

# Krippendorff (2011), "Computing Krippendorff's Alpha-Reliability", section
# C: four coders (rows A..D), twelve units, with missing values.
FOUR_CODERS: Data = [
    [1, 2, 3, 3, 2, 1, 4, 1, 2, N, N, N],
    [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, N, 3],
    [N, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, N],
    [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, N],
]
FOUR_CODERS_ALPHA = {"nominal": 0.743, "ordinal": 0.815, "interval": 0.849, "ratio": 0.797}

# Same paper, section A: binary data, two observers, no missing data.
TWO_CODERS_BINARY: Data = [
    [0, 1, 0, 0, 0, 0, 0, 0, 1, 0],
    [1, 1, 1, 0, 0, 1, 0, 0, 0, 0],
]
# Same paper, section B: nominal data, two observers, no missing data.
TWO_CODERS_NOMINAL: Data = [
    list("aabbdcccedda"),
    list("babbbccceddd"),
]


def oracle(data: Data, level: Any) -> float | None:
    """The `krippendorff` package's alpha; None when it refuses the data."""
    matrix = np.array([[np.nan if v is None else v for v in row] for row in data], dtype=float)
    try:
        # It divides 0 by 0 (giving nan) when the expected disagreement is zero.
        with np.errstate(divide="ignore", invalid="ignore"):
            return float(krippendorff.alpha(reliability_data=matrix, level_of_measurement=level))
    except ValueError:
        # Fewer than two values in the whole data, or no unit with two or more.
        return None


# -- published examples ---------------------------------------------------------


@pytest.mark.parametrize(("level", "expected"), FOUR_CODERS_ALPHA.items())
def test_four_coders_with_missing_values(level, expected):
    alpha = krippendorff_alpha(FOUR_CODERS, level)
    reference = oracle(FOUR_CODERS, level)
    assert reference is not None
    assert round(alpha, 3) == expected
    assert round(reference, 3) == expected
    assert alpha == pytest.approx(reference, abs=1e-12)


def test_two_coders_binary():
    assert round(krippendorff_alpha(TWO_CODERS_BINARY, "nominal"), 3) == 0.095
    assert oracle(TWO_CODERS_BINARY, "nominal") == pytest.approx(0.095, abs=5e-4)
    # o_01 = 4, n_0 = 14, n_1 = 6, n = 20: alpha = 1 - 19 * 4 / (14 * 6), exactly.
    assert krippendorff_alpha(TWO_CODERS_BINARY, "nominal") == pytest.approx(1 - 19 * 4 / (14 * 6), abs=1e-15)


def test_two_coders_nominal_string_categories():
    alpha = krippendorff_alpha(TWO_CODERS_NOMINAL, "nominal")
    assert round(alpha, 3) == 0.692
    expected = krippendorff.alpha(reliability_data=np.array(TWO_CODERS_NOMINAL), level_of_measurement="nominal")
    assert alpha == pytest.approx(float(expected), abs=1e-12)


def test_four_coders_as_string_categories_nominal():
    names = {1: "very low", 2: "low", 3: "mid", 4: "high", 5: "very high"}
    data: Data = [[None if v is None else names[v] for v in row] for row in FOUR_CODERS]
    assert krippendorff_alpha(data, "nominal") == pytest.approx(krippendorff_alpha(FOUR_CODERS, "nominal"), abs=1e-15)


# -- the `krippendorff` package as an oracle --------------------------------------


@st.composite
def reliability_data(draw) -> Data:
    coders = draw(st.integers(min_value=2, max_value=5))
    units = draw(st.integers(min_value=2, max_value=15))
    cell = st.one_of(st.none(), st.integers(min_value=0, max_value=5))
    return [draw(st.lists(cell, min_size=units, max_size=units)) for _ in range(coders)]


@pytest.mark.parametrize("level", LEVELS)
@settings(max_examples=200, deadline=None)
@given(data=reliability_data())
def test_matches_krippendorff_package(level, data):
    expected = oracle(data, level)
    pairable_units = [col for col in zip(*data, strict=True) if sum(v is not None for v in col) >= 2]
    pairable_values = {v for col in pairable_units for v in col if v is not None}

    if not pairable_units:
        event("no pairable unit")
        assert expected is None  # the oracle refuses too
        with pytest.raises(ValueError, match="at least one unit"):
            krippendorff_alpha(data, level)
        assert alpha_or_none(data, level) is None
        return

    alpha = krippendorff_alpha(data, level)
    assert alpha_or_none(data, level) == alpha
    if expected is None or math.isnan(expected):
        # The oracle refuses a one-value domain and gives nan for zero expected
        # disagreement; with non-negative integers both mean every pairable
        # value is the same, which is perfect agreement.
        event("zero expected disagreement")
        assert len(pairable_values) == 1
        assert alpha == 1.0
    else:
        event("compared")
        assert alpha == pytest.approx(expected, abs=1e-9)


@pytest.mark.parametrize("level", LEVELS)
@settings(max_examples=50, deadline=None)
@given(
    data=st.lists(
        st.lists(st.one_of(st.none(), st.floats(min_value=0, max_value=100, allow_nan=False)), min_size=6, max_size=6),
        min_size=2,
        max_size=4,
    )
)
def test_matches_krippendorff_package_on_floats(level, data):
    # Continuous scores (a judge's 0..1 score, say) give many distinct values.
    expected = oracle(data, level)
    alpha = alpha_or_none(data, level)
    if alpha is None:
        assert expected is None
    elif expected is None or math.isnan(expected):
        assert alpha == 1.0
    else:
        assert alpha == pytest.approx(expected, abs=1e-9)


# -- edge cases ---------------------------------------------------------------------


@pytest.mark.parametrize("level", LEVELS)
def test_perfect_agreement_is_one(level):
    data: Data = [[1, 2, 3, N], [1, 2, 3, 4], [N, 2, 3, 4]]
    assert krippendorff_alpha(data, level) == 1.0


@pytest.mark.parametrize("level", LEVELS)
def test_a_single_pairable_value_kind_is_perfect_agreement(level):
    # Only unit 1 is pairable, and it agrees; the 5 in unit 2 cannot be paired,
    # so it does not count as disagreement (the oracle returns nan here).
    data: Data = [[1, 5], [1, N]]
    assert krippendorff_alpha(data, level) == 1.0
    reference = oracle(data, level)
    assert reference is not None
    assert math.isnan(reference)


@pytest.mark.parametrize("level", LEVELS)
@pytest.mark.parametrize("data", [[[1, N], [2, 3]], [[1], [1], [2]]], ids=["two coders", "three coders"])
def test_single_pairable_unit_with_disagreement(level, data):
    # Within a single unit the observed disagreement equals the expected one.
    assert krippendorff_alpha(data, level) == pytest.approx(0.0, abs=1e-12)
    assert krippendorff_alpha(data, level) == pytest.approx(oracle(data, level), abs=1e-12)


@pytest.mark.parametrize("level", LEVELS)
@pytest.mark.parametrize(
    "data",
    [
        [[N, N, N], [N, N, N]],
        [[1, 2, 3]],
        [[1, N, 3], [N, 2, N]],
        [],
        [[], []],
    ],
    ids=["all missing", "one coder", "no unit coded twice", "no coders", "no units"],
)
def test_too_few_pairable_values(level, data):
    with pytest.raises(ValueError, match="at least one unit"):
        krippendorff_alpha(data, level)
    assert alpha_or_none(data, level) is None


def test_ragged_rows_raise():
    with pytest.raises(ValueError, match="length"):
        krippendorff_alpha([[1, 2, 3], [1, 2]])
    with pytest.raises(ValueError, match="length"):
        alpha_or_none([[1, 2], [1, 2, 3]])


def test_unknown_level_raises():
    with pytest.raises(ValueError, match="level"):
        krippendorff_alpha(FOUR_CODERS, "circular")
    with pytest.raises(ValueError, match="level"):
        alpha_or_none(FOUR_CODERS, "Nominal")


@pytest.mark.parametrize("level", ["ordinal", "interval", "ratio"])
def test_numeric_levels_need_finite_numbers(level):
    with pytest.raises(TypeError, match="numbers"):
        krippendorff_alpha([["a", "b"], ["a", "c"]], level)
    with pytest.raises(ValueError, match="finite"):
        krippendorff_alpha([[1, math.inf], [1, 2]], level)


def test_string_row_is_rejected():
    with pytest.raises(TypeError, match="string"):
        krippendorff_alpha(["aab", "abb"])


def test_rows_may_be_tuples_and_nan_is_missing():
    as_tuples = tuple(tuple(row) for row in FOUR_CODERS)
    as_nan = [[math.nan if v is None else v for v in row] for row in FOUR_CODERS]
    for level in LEVELS:
        expected = krippendorff_alpha(FOUR_CODERS, level)
        assert krippendorff_alpha(as_tuples, level) == expected
        assert krippendorff_alpha(as_nan, level) == expected


def test_ratio_with_zeros_matches_oracle():
    data: Data = [[0, 0, 2, 1, N], [0, 1, 2, 0, 3], [N, 0, 3, 1, 3]]
    assert krippendorff_alpha(data, "ratio") == pytest.approx(oracle(data, "ratio"), abs=1e-12)


def test_order_of_coders_and_units_does_not_matter():
    shuffled_units = [[row[i] for i in (11, 3, 0, 7, 5, 9, 1, 10, 2, 6, 8, 4)] for row in FOUR_CODERS]
    for level in LEVELS:
        expected = krippendorff_alpha(FOUR_CODERS, level)
        assert krippendorff_alpha(FOUR_CODERS[::-1], level) == pytest.approx(expected, abs=1e-15)
        assert krippendorff_alpha(shuffled_units, level) == pytest.approx(expected, abs=1e-15)


def test_systematic_disagreement_is_negative():
    assert krippendorff_alpha([[0, 1, 0, 1], [1, 0, 1, 0]], "nominal") < 0
