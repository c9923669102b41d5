import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.money import Money, MoneyError, allocate, format_minor, normalize_currency, split_bps

amounts = st.integers(min_value=0, max_value=10**15)
shares = st.integers(min_value=0, max_value=10_000)


@given(total=amounts, bps=shares)
def test_split_conserves_the_total(total, bps):
    share, rest = split_bps(total, bps)
    assert share + rest == total
    assert 0 <= share <= total
    # The rounding rule: the share is rounded down, never up.
    assert share * 10_000 <= total * bps < (share + 1) * 10_000


@given(total=amounts, weights=st.lists(st.integers(min_value=0, max_value=10_000), min_size=1, max_size=12).filter(any))
def test_allocate_conserves_the_total_and_stays_within_one_unit(total, weights):
    parts = allocate(total, weights)
    assert sum(parts) == total
    weight_sum = sum(weights)
    for part, weight in zip(parts, weights, strict=True):
        exact_times_sum = total * weight
        assert part * weight_sum - exact_times_sum < weight_sum  # at most one unit above the exact share
        assert exact_times_sum - part * weight_sum < weight_sum  # at most one unit below


def test_split_rounding_examples():
    assert split_bps(1001, 5000) == (500, 501)
    assert split_bps(9999, 1000) == (999, 9000)
    assert split_bps(5000, 0) == (0, 5000)
    assert split_bps(5000, 10_000) == (5000, 0)
    assert split_bps(1, 9999) == (0, 1)


def test_allocate_gives_leftover_units_to_largest_remainders():
    assert allocate(100, [1, 1, 1]) == [34, 33, 33]
    assert allocate(10, [3, 0, 7]) == [3, 0, 7]
    assert allocate(5, [1, 2]) == [2, 3]


@pytest.mark.parametrize("bps", [-1, 10_001, 1.5, True, "100"])
def test_split_refuses_invalid_shares(bps):
    with pytest.raises(MoneyError):
        split_bps(100, bps)


@pytest.mark.parametrize("amount", [1.0, "100", None, True])
def test_amounts_must_be_integers(amount):
    with pytest.raises(MoneyError):
        Money(amount, "usd")


def test_money_refuses_mixed_currencies():
    with pytest.raises(MoneyError, match="Cannot combine"):
        Money(100, "usd") + Money(100, "eur")
    assert Money(150, "USD") - Money(50, "usd") == Money(100, "usd")


@pytest.mark.parametrize("code", ["us", "usdd", "xyz", "", 12])
def test_unknown_currencies_are_refused(code):
    with pytest.raises(MoneyError):
        normalize_currency(code)


def test_format_for_display():
    assert format_minor(123456, "usd") == "1,234.56 USD"
    assert format_minor(-5, "eur") == "-0.05 EUR"
    assert format_minor(1200, "jpy") == "1,200 JPY"
    assert str(Money(5000, "usd").split_bps(1000)[0]) == "5.00 USD"
