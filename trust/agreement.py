"""Krippendorff's alpha: how far a panel of judges agrees beyond chance. Pure Python.

Reliability data is a matrix with one row per coder (judge) and one column per
unit (a clause of a deliverable, say); a cell holds the value that coder gave
that unit, or `None` when the coder gave none. Alpha is computed by the
coincidence-matrix method of Krippendorff (2011), "Computing Krippendorff's
Alpha-Reliability", Annenberg School for Communication, University of
Pennsylvania:

- A unit u is *pairable* when m_u >= 2 coders gave it a value; other units
  cannot show agreement or disagreement and are left out entirely.
- Coincidences: o_ck = sum over pairable units u of P_u(c, k) / (m_u - 1),
  where P_u(c, k) counts the ordered pairs of values (c, k) from different
  coders in u. Each pairable value therefore carries a weight of exactly 1.
- Marginals: n_c = sum_k o_ck, the number of pairable values equal to c, and
  n = sum_c n_c.
- alpha = 1 - D_o / D_e
        = 1 - (n - 1) * sum_ck o_ck * delta2_ck / sum_ck n_c * n_k * delta2_ck

with the squared difference delta2 chosen by the level of measurement:

- nominal:  0 if c == k else 1
- ordinal:  (sum_{g=c..k} n_g - (n_c + n_k) / 2)^2, over the ranked distinct values
- interval: (c - k)^2
- ratio:    ((c - k) / (c + k))^2, taken as 0 when c + k == 0

alpha is 1 for perfect agreement, about 0 for agreement at chance level, and
negative for systematic disagreement.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Hashable, Iterable
from fractions import Fraction
from numbers import Integral, Real
from typing import Any

LEVELS = ("nominal", "ordinal", "interval", "ratio")

_TOO_FEW = "Krippendorff's alpha needs at least one unit with values from two or more coders"


def krippendorff_alpha(reliability_data: Iterable[Iterable[Hashable | None]], level: str = "nominal") -> float:
    """Krippendorff's alpha of `reliability_data` at the given level of measurement.

    `reliability_data` holds one row per coder and one column per unit; rows
    may be lists or tuples and must all have the same length. A value is a
    number (any hashable category at the nominal level) or `None` when
    missing; a float NaN is also read as missing, as NumPy-based tools write it.
    `level` is one of "nominal", "ordinal", "interval" or "ratio".

    alpha = 1 - (n - 1) * sum_ck o_ck * delta2_ck / sum_ck n_c * n_k * delta2_ck
    (coincidence-matrix method, Krippendorff 2011, "Computing Krippendorff's
    Alpha-Reliability"; see the module docstring for the terms).

    Returns 1.0 when the expected disagreement is zero, that is when all the
    pairable values agree. Raises ValueError for an unknown level, rows of
    different lengths, an infinite value at a numeric level, or fewer than two
    pairable values (no unit coded by two or more coders); TypeError for a
    non-numeric value at a numeric level or an unhashable one at the nominal.
    """
    alpha = _alpha(reliability_data, level)
    if alpha is None:
        raise ValueError(_TOO_FEW)
    return alpha


def alpha_or_none(reliability_data: Iterable[Iterable[Hashable | None]], level: str = "nominal") -> float | None:
    """`krippendorff_alpha`, but None when there are too few pairable values.

    Too little data is an ordinary state for a young panel; malformed data (an
    unknown level, ragged rows, wrong value types) still raises.
    """
    return _alpha(reliability_data, level)


def _alpha(reliability_data: Iterable[Iterable[Hashable | None]], level: str) -> float | None:
    if level not in LEVELS:
        raise ValueError(f"unknown level of measurement {level!r}; expected one of {', '.join(LEVELS)}")
    rows = [_row(row) for row in reliability_data]
    if any(len(row) != len(rows[0]) for row in rows):
        raise ValueError("every coder's row must have one value per unit (rows differ in length)")

    # Value counts of the pairable units only, read column by column: O(units * coders).
    units: list[Counter[Hashable]] = []
    for column in zip(*rows, strict=True):
        values = [_value(v, level) for v in column if not _is_missing(v)]
        if len(values) >= 2:
            units.append(Counter(values))
    if not units:
        return None

    # n_c: the row sums of the coincidence matrix equal the plain counts of the
    # pairable values, so count them directly (exact integers).
    counts: Counter[Hashable] = Counter()
    for unit in units:
        counts.update(unit)
    # Numeric levels rank the distinct values (the ordinal metric needs the
    # order); nominal categories need not be comparable, so they keep their
    # first-seen order, which is deterministic for a given input.
    values = sorted(counts) if level != "nominal" else list(counts)  # type: ignore[type-var]
    index = {v: i for i, v in enumerate(values)}
    n_v = [counts[v] for v in values]
    n = sum(n_v)

    # Off-diagonal coincidences o_ck (c != k), kept as exact fractions so that
    # the result does not depend on summation order. The diagonal (agreements)
    # is not built: delta2_cc == 0, so it adds nothing to D_o.
    # Cost: at most min(coders, values)^2 pairs per unit.
    o: dict[tuple[int, int], Fraction] = {}
    for unit in units:
        m_u = unit.total()
        cells = [(index[v], count) for v, count in unit.items()]
        for c, n_uc in cells:
            for k, n_uk in cells:
                if c != k:
                    o[c, k] = o.get((c, k), Fraction(0)) + Fraction(n_uc * n_uk, m_u - 1)

    delta2 = _metric(level, values, n_v)
    # Unscaled disagreements: D_o = observed / n and D_e = expected / (n(n - 1)).
    # math.fsum is exactly rounded, so the order of the terms cannot change the result.
    observed = math.fsum(float(o_ck) * delta2(c, k) for (c, k), o_ck in o.items())
    # delta2 is symmetric with a zero diagonal, so sum over c < k and double.
    ranks = range(len(values))
    expected = 2 * math.fsum(n_v[c] * n_v[k] * delta2(c, k) for c in ranks for k in ranks[c + 1 :])
    if expected == 0:
        # Every pairable value is the same (or equivalent under the metric):
        # there is no disagreement to expect or to observe, so agreement is perfect.
        return 1.0
    return 1.0 - (n - 1) * observed / expected


def _metric(level: str, values: list[Any], n_v: list[int]) -> Callable[[int, int], float]:
    """delta2 between the distinct values at ranks c and k, O(1) per call."""
    if level == "nominal":
        return lambda c, k: 0.0 if c == k else 1.0
    if level == "interval":
        return lambda c, k: (values[c] - values[k]) ** 2
    if level == "ratio":

        def ratio(c: int, k: int) -> float:
            total = values[c] + values[k]
            # Between distinct values c + k == 0 only for x and -x, which a ratio
            # scale (no negatives) never has; the formula is undefined there and
            # 0 is what the usual software (the `krippendorff` package) returns.
            return 0.0 if total == 0 else ((values[c] - values[k]) / total) ** 2

        return ratio
    # Ordinal: sum_{g=c..k} n_g - (n_c + n_k)/2 equals M_k - M_c with the
    # mid-rank M_g = (pairable values ranked below g) + n_g/2. Precomputing M makes each
    # difference O(1) instead of a sum over the values in between, keeping the
    # expected disagreement O(values^2) rather than O(values^3).
    midranks: list[float] = []
    below = 0
    for count in n_v:
        midranks.append(below + count / 2)
        below += count
    return lambda c, k: (midranks[k] - midranks[c]) ** 2


def _row(row: Iterable[Hashable | None]) -> tuple[Hashable | None, ...]:
    # A string is iterable, but a string row would silently be read as one
    # character per unit; it is always a caller's mistake.
    if isinstance(row, str | bytes):
        raise TypeError("each row of reliability data must be a list or tuple of values, not a string")
    return tuple(row)


def _is_missing(v: Hashable | None) -> bool:
    # NaN is the missing-value marker of NumPy-based tools (the `krippendorff`
    # package among them). Integers are excluded before math.isnan, which
    # would overflow on very large ones.
    return v is None or (isinstance(v, Real) and not isinstance(v, Integral) and math.isnan(v))


def _value(v: Hashable, level: str) -> Hashable:
    if level == "nominal":
        hash(v)  # fail here, with the offending value in the traceback, not inside Counter
        return v
    # Numeric levels: compare and subtract as floats, so 1, 1.0 and
    # numpy.int64(1) are one value and arithmetic stays in one type.
    if not isinstance(v, Real):
        raise TypeError(f"{level} reliability data must be numbers; got {v!r}")
    x = float(v)
    if not math.isfinite(x):
        raise ValueError(f"{level} reliability data must be finite; got {v!r}")
    return x
