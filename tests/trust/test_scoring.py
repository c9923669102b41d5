"""The trust arithmetic against hand-computed and published values."""

from __future__ import annotations

import datetime
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from trust.scoring import Evidence, benchmark_fit, beta_interval, confidence, decay_factor, wilson_interval

DAY = 86_400.0
T0 = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)


# --- Beta posterior -----------------------------------------------------------------------------


def test_no_evidence_is_the_uniform_prior():
    interval = beta_interval(0, 0)
    assert interval.mean == 0.5
    assert interval.lower == pytest.approx(0.025)
    assert interval.upper == pytest.approx(0.975)


@pytest.mark.parametrize("r", [1, 4, 9])
def test_all_kept_matches_the_closed_form(r):
    # Beta(a, 1) has CDF x^a, so its q-quantile is q^(1/a) (a = r + 1).
    interval = beta_interval(r, 0)
    a = r + 1
    assert interval.mean == pytest.approx(a / (a + 1))
    assert interval.lower == pytest.approx(0.025 ** (1 / a))
    assert interval.upper == pytest.approx(0.975 ** (1 / a))


def test_all_missed_matches_the_closed_form():
    # Beta(1, b) has CDF 1 - (1 - x)^b, so its q-quantile is 1 - (1 - q)^(1/b).
    interval = beta_interval(0, 4)
    assert interval.mean == pytest.approx(1 / 6)
    assert interval.lower == pytest.approx(1 - 0.975 ** (1 / 5))
    assert interval.upper == pytest.approx(1 - 0.025 ** (1 / 5))


def test_beta_interval_hand_computed_example():
    # 8 kept, 2 missed: Beta(9, 3): mean 0.75; quantiles of the regularised incomplete beta.
    interval = beta_interval(8, 2)
    assert interval.mean == pytest.approx(0.75)
    assert interval.lower == pytest.approx(0.4822, abs=1e-4)
    assert interval.upper == pytest.approx(0.9398, abs=1e-4)

    # For integer a, b: I_x(a, b) = P(Binomial(a + b - 1, x) >= a); the bounds sit at 2.5% and 97.5%.
    def cdf(x):
        return sum(math.comb(11, j) * x**j * (1 - x) ** (11 - j) for j in range(9, 12))

    assert cdf(interval.lower) == pytest.approx(0.025, abs=1e-9)
    assert cdf(interval.upper) == pytest.approx(0.975, abs=1e-9)


@given(st.floats(0, 500), st.floats(0, 500))
def test_interval_contains_the_mean(r, s):
    interval = beta_interval(r, s)
    assert 0.0 <= interval.lower <= interval.mean <= interval.upper <= 1.0


def test_more_evidence_narrows_the_interval_and_raises_the_lower_bound():
    few, many = beta_interval(4, 1), beta_interval(40, 10)  # the same 80% record, ten times the evidence
    assert many.upper - many.lower < few.upper - few.lower
    assert many.lower > few.lower


def test_negative_evidence_is_refused():
    with pytest.raises(ValueError):
        beta_interval(-1, 0)


# --- confidence ---------------------------------------------------------------------------------


def test_confidence_grows_with_evidence():
    assert confidence(0, 0, 10) == 0.0
    assert confidence(5, 5, 10) == pytest.approx(0.5)
    assert confidence(30, 0, 10) == pytest.approx(0.75)
    values = [confidence(n * 0.8, n * 0.2, 10) for n in range(0, 200, 5)]
    assert values == sorted(values)
    assert values[-1] < 1.0


# --- decay --------------------------------------------------------------------------------------


def test_decay_halves_every_half_life():
    assert decay_factor(0, 90 * DAY) == 1.0
    assert decay_factor(90 * DAY, 90 * DAY) == pytest.approx(0.5)
    assert decay_factor(180 * DAY, 90 * DAY) == pytest.approx(0.25)


def test_lazy_decay_equals_weighing_each_job_by_its_age():
    hl = 90 * DAY
    jobs = [(T0, 1.0), (T0 + datetime.timedelta(days=30), 0.0), (T0 + datetime.timedelta(days=45), 0.5)]
    evidence = Evidence(0.0, 0.0, T0)
    for at, c in jobs:
        evidence = evidence.decayed(at, hl).add(c, at, hl)
    now = T0 + datetime.timedelta(days=120)
    evidence = evidence.decayed(now, hl)
    r = sum(decay_factor((now - at).total_seconds(), hl) * c for at, c in jobs)
    s = sum(decay_factor((now - at).total_seconds(), hl) * (1 - c) for at, c in jobs)
    assert evidence.r == pytest.approx(r)
    assert evidence.s == pytest.approx(s)


def test_recent_failures_weigh_more_than_old_ones():
    """Same jobs, same outcomes: the agent whose failures are old ranks above the one whose failures are recent."""
    hl = 90 * DAY
    now = T0 + datetime.timedelta(days=200)
    days = list(range(0, 200, 10))  # 20 jobs
    old_failures = Evidence(0.0, 0.0, now)
    recent_failures = Evidence(0.0, 0.0, now)
    for index, day in enumerate(days):
        at = T0 + datetime.timedelta(days=day)
        old_failures = old_failures.add(0.0 if index < 5 else 1.0, at, hl)
        recent_failures = recent_failures.add(0.0 if index >= 15 else 1.0, at, hl)
    old, recent = beta_interval(old_failures.r, old_failures.s), beta_interval(recent_failures.r, recent_failures.s)
    assert old.lower > recent.lower
    assert old.mean > recent.mean


def test_taking_back_a_job_restores_the_evidence():
    hl = 90 * DAY
    at = T0 + datetime.timedelta(days=3)
    base = Evidence(2.0, 1.0, T0 + datetime.timedelta(days=10))
    back = base.add(0.7, at, hl).add(0.7, at, hl, sign=-1)
    assert back.r == pytest.approx(base.r)
    assert back.s == pytest.approx(base.s)


# --- Wilson -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("successes", "n", "low", "high"),
    [
        # Newcombe (1998), "Two-sided confidence intervals for the single proportion", Table I (Wilson score).
        (81, 263, 0.2553, 0.3662),
        (15, 148, 0.0624, 0.1605),
        (0, 20, 0.0, 0.1611),
        (1, 29, 0.0061, 0.1718),
        (29, 29, 0.8830, 1.0),
    ],
)
def test_wilson_interval_published_values(successes, n, low, high):
    lower, upper = wilson_interval(successes, n)
    assert lower == pytest.approx(low, abs=1e-4)
    assert upper == pytest.approx(high, abs=1e-4)


def test_wilson_interval_of_nothing():
    assert wilson_interval(0, 0) == (0.0, 0.0)


def test_wilson_interval_hand_computed():
    # 2 of 10, z = 1.96: centre (0.2 + 0.19208) / 1.38416 = 0.28332; margin 1.96 / 1.38416 * sqrt(0.016 + 0.009604).
    lower, upper = wilson_interval(2, 10)
    assert lower == pytest.approx(0.05668, abs=1e-4)
    assert upper == pytest.approx(0.50984, abs=1e-4)


def test_wilson_z_changes_the_width():
    narrow, wide = wilson_interval(5, 50, z=1.0), wilson_interval(5, 50, z=2.576)
    assert wide[0] < narrow[0]
    assert wide[1] > narrow[1]


@pytest.mark.parametrize(("successes", "n"), [(-1, 5), (6, 5), (0, -1)])
def test_wilson_refuses_impossible_counts(successes, n):
    with pytest.raises(ValueError):
        wilson_interval(successes, n)


def test_wilson_refuses_non_integers():
    with pytest.raises(TypeError):
        wilson_interval(1.5, 10)  # type: ignore[arg-type]


@given(st.integers(0, 10_000).flatmap(lambda n: st.tuples(st.integers(0, n), st.just(n))))
def test_wilson_contains_the_proportion(pair):
    successes, n = pair
    lower, upper = wilson_interval(successes, n)
    if n:
        assert lower - 1e-12 <= successes / n <= upper + 1e-12
    assert 0.0 <= lower <= upper <= 1.0


# --- benchmark fit ------------------------------------------------------------------------------

TODAY = datetime.date(2026, 11, 27)


def fit(categories, measured_on, category, listing=("research", "writing")):
    return benchmark_fit(
        list(categories), measured_on, category, listing_categories=list(listing), today=TODAY, half_life_days=365
    )


def test_fresh_claim_in_the_buyers_category_fits_high():
    result = fit(["research"], TODAY - datetime.timedelta(days=10), "research")
    assert result.level == "high"
    assert result.relevance == 1.0
    assert "measured on research tasks" in result.reason
    assert "10 days old" in result.reason


def test_claim_from_another_category_of_the_agent_fits_medium():
    result = fit(["writing"], TODAY, "research")
    assert (result.relevance, result.level) == (0.5, "medium")
    assert "not research" in result.reason


def test_old_claim_loses_fit():
    result = fit(["research"], TODAY - datetime.timedelta(days=730), "research")
    assert result.age_factor == pytest.approx(0.25, abs=0.01)
    assert result.level == "low"
    assert "years old" in result.reason


def test_claim_without_category_fits_low():
    result = fit([], TODAY, "research")
    assert result.level == "low"
    assert "no task category" in result.reason
