"""The arithmetic of the trust record: pure functions, no database.

- Evidence decays with a half-life: a job finished `age` ago weighs
  `d = 2^(-age / half_life)`. Its compliance `c` (0..1) adds `d * c` to `r` and
  `d * (1 - c)` to `s`. Because every weight shrinks by the same factor as time
  passes, `r` and `s` are stored with the moment they are "as of" and decayed
  lazily (`decayed`), so adding a job costs O(1).
- Pact compliance is the Beta(r + 1, s + 1) posterior: mean `(r + 1) / (r + s + 2)`
  with a 95% credible interval from the Beta quantiles. Rankings use the lower
  bound, so an agent with little evidence cannot rank high on luck.
- Score confidence `(r + s) / (r + s + K)`: how much (decayed) evidence there is.
- Dispute rates are binomial proportions with Wilson score intervals.
- Benchmark fit: how relevant a benchmark claim is to the category a buyer is
  browsing, times an age factor. Shown beside compliance, never blended into it.
"""

from __future__ import annotations

import datetime
import math
from dataclasses import dataclass

from scipy.stats import beta as beta_distribution

SECONDS_PER_DAY = 86_400.0


def decay_factor(age_seconds: float, half_life_seconds: float) -> float:
    """`2^(-age / half_life)`; an age below zero (a clock behind the record) weighs more than 1."""
    if half_life_seconds <= 0:
        raise ValueError("half_life_seconds must be positive")
    return math.pow(2.0, -age_seconds / half_life_seconds)


@dataclass(frozen=True)
class Evidence:
    """Decayed Beta evidence as of `at`."""

    r: float
    s: float
    at: datetime.datetime

    def decayed(self, now: datetime.datetime, half_life_seconds: float) -> Evidence:
        factor = decay_factor((now - self.at).total_seconds(), half_life_seconds)
        return Evidence(self.r * factor, self.s * factor, now)

    def add(
        self, compliance: float, finished_at: datetime.datetime, half_life_seconds: float, *, sign: int = 1
    ) -> Evidence:
        """Add (or, with sign=-1, take back) one job's compliance, weighed by its age at `self.at`."""
        if not 0.0 <= compliance <= 1.0:
            raise ValueError("compliance must lie in [0, 1]")
        weight = decay_factor((self.at - finished_at).total_seconds(), half_life_seconds)
        r = self.r + sign * weight * compliance
        s = self.s + sign * weight * (1.0 - compliance)
        # Taking back a job can leave a rounding crumb below zero.
        return Evidence(max(r, 0.0), max(s, 0.0), self.at)


@dataclass(frozen=True)
class Interval:
    mean: float
    lower: float
    upper: float


def beta_interval(r: float, s: float, level: float = 0.95) -> Interval:
    """Mean and equal-tailed credible interval of Beta(r + 1, s + 1)."""
    if r < 0 or s < 0:
        raise ValueError("r and s must not be negative")
    if not 0 < level < 1:
        raise ValueError("level must lie in (0, 1)")
    a, b = r + 1.0, s + 1.0
    tail = (1.0 - level) / 2.0
    lower, upper = beta_distribution.ppf([tail, 1.0 - tail], a, b)
    return Interval(mean=a / (a + b), lower=float(lower), upper=float(upper))


def confidence(r: float, s: float, k: float) -> float:
    """`(r + s) / (r + s + K)`: 0 with no evidence, towards 1 as evidence grows."""
    if k <= 0:
        raise ValueError("K must be positive")
    n = r + s
    return n / (n + k)


def wilson_interval(successes: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion; `(0.0, 0.0)` when `n == 0`."""
    if isinstance(successes, bool) or isinstance(n, bool) or not isinstance(successes, int) or not isinstance(n, int):
        raise TypeError("successes and n must be integers")
    if n < 0 or not 0 <= successes <= n:
        raise ValueError("need 0 <= successes <= n")
    if z <= 0:
        raise ValueError("z must be positive")
    if n == 0:
        return (0.0, 0.0)
    p = successes / n
    z2 = z * z
    denominator = 1.0 + z2 / n
    centre = (p + z2 / (2 * n)) / denominator
    margin = (z / denominator) * math.sqrt(p * (1.0 - p) / n + z2 / (4 * n * n))
    return (max(0.0, centre - margin), min(1.0, centre + margin))


# --- benchmark fit ------------------------------------------------------------------------------

FIT_HIGH = 0.6
FIT_MEDIUM = 0.3


@dataclass(frozen=True)
class BenchmarkFit:
    value: float
    level: str  # high | medium | low
    relevance: float
    age_factor: float
    reason: str


def _age_words(days: int) -> str:
    if days < 45:
        return f"{days} day{'s' if days != 1 else ''} old"
    months = round(days / 30.4)
    if months < 18:
        return f"{months} months old"
    return f"{days / 365.25:.1f} years old"


def benchmark_fit(
    claim_categories: list[str],
    measured_on: datetime.date,
    category: str,
    *,
    listing_categories: list[str],
    today: datetime.date,
    half_life_days: float,
) -> BenchmarkFit:
    """How much a benchmark claim says about the job a buyer is looking at.

    Relevance: 1.0 when the claim was measured in the buyer's category; 0.5 when
    it was measured in another category this agent works in (related work); 0.25
    when the claim names no category or only unrelated ones. With no category
    chosen, a claim in any of the agent's own categories counts as relevant.
    Age factor: `2^(-age_days / half_life_days)`. Fit = relevance x age factor:
    high from 0.6, medium from 0.3, low below.
    """
    claimed = set(claim_categories)
    if category:
        if category in claimed:
            relevance, why = 1.0, f"measured on {category} tasks"
        elif claimed & set(listing_categories):
            relevance, why = 0.5, f"measured on {', '.join(sorted(claimed))} tasks, not {category}"
        elif claimed:
            relevance, why = 0.25, f"measured on {', '.join(sorted(claimed))} tasks, unrelated to {category}"
        else:
            relevance, why = 0.25, "no task category stated"
    elif claimed & set(listing_categories):
        relevance, why = 1.0, f"measured on {', '.join(sorted(claimed))} tasks"
    else:
        relevance, why = 0.25, "no task category stated" if not claimed else "measured outside this agent's categories"
    age_days = max((today - measured_on).days, 0)
    age_factor = math.pow(2.0, -age_days / half_life_days)
    value = relevance * age_factor
    level = "high" if value >= FIT_HIGH else "medium" if value >= FIT_MEDIUM else "low"
    return BenchmarkFit(
        value=value, level=level, relevance=relevance, age_factor=age_factor, reason=f"{why}; {_age_words(age_days)}"
    )
