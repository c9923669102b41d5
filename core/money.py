"""Money in integer minor units.

Amounts are Python ints of the currency's minor unit (cents for usd); no float
or Decimal arithmetic happens on the money path. Shares are basis points
(1 bps = 0.01 %, 0..10000).

Rounding rule (the only one in Pactum): a share is rounded DOWN to the minor
unit, and the remainder goes to the other side. `split_bps(total, bps)` returns
`(share, rest)` with `share = floor(total * bps / 10000)` and
`rest = total - share`, so `share + rest == total` always. For several
weighted parts, `allocate` uses the largest-remainder method: floors first, then
the leftover units one each to the parts with the largest remainders (earlier
parts win ties), which again conserves the total exactly.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

BPS_DENOMINATOR = 10_000

_CURRENCY_RE = re.compile(r"^[a-z]{3}$")

# ISO 4217 codes Pactum accepts. Settlement amounts are minor units, so
# currencies with no minor unit (jpy) are fine: their minor unit is the unit.
SUPPORTED_CURRENCIES = frozenset(
    {"usd", "eur", "gbp", "chf", "cad", "aud", "nzd", "sek", "nok", "dkk", "jpy", "pln", "czk"}
)


class MoneyError(ValueError):
    pass


def normalize_currency(code: str) -> str:
    """Return the lowercase ISO 4217 code, or raise MoneyError."""
    if not isinstance(code, str):
        raise MoneyError("Currency must be a three-letter ISO 4217 code.")
    lowered = code.strip().lower()
    if not _CURRENCY_RE.match(lowered) or lowered not in SUPPORTED_CURRENCIES:
        raise MoneyError(f"Unsupported currency {code!r}; use one of {', '.join(sorted(SUPPORTED_CURRENCIES))}.")
    return lowered


def _check_amount(amount: int) -> None:
    # bool is an int subclass; True cents is a bug, not an amount.
    if not isinstance(amount, int) or isinstance(amount, bool):
        raise MoneyError("Amounts are integers in minor units.")


@dataclass(frozen=True, slots=True)
class Money:
    amount: int
    currency: str

    def __post_init__(self) -> None:
        _check_amount(self.amount)
        object.__setattr__(self, "currency", normalize_currency(self.currency))

    def _same(self, other: Money) -> None:
        if self.currency != other.currency:
            raise MoneyError(f"Cannot combine {self.currency} with {other.currency}.")

    def __add__(self, other: Money) -> Money:
        self._same(other)
        return Money(self.amount + other.amount, self.currency)

    def __sub__(self, other: Money) -> Money:
        self._same(other)
        return Money(self.amount - other.amount, self.currency)

    def __neg__(self) -> Money:
        return Money(-self.amount, self.currency)

    def split_bps(self, bps: int) -> tuple[Money, Money]:
        share, rest = split_bps(self.amount, bps)
        return Money(share, self.currency), Money(rest, self.currency)

    def __str__(self) -> str:
        return format_minor(self.amount, self.currency)


def check_bps(bps: int) -> None:
    if not isinstance(bps, int) or isinstance(bps, bool) or not 0 <= bps <= BPS_DENOMINATOR:
        raise MoneyError("Basis points must be an integer from 0 to 10000.")


def split_bps(total: int, bps: int) -> tuple[int, int]:
    """Split `total` minor units: `bps` of it (rounded down) and the rest."""
    _check_amount(total)
    check_bps(bps)
    if total < 0:
        raise MoneyError("Only non-negative amounts can be split.")
    share = total * bps // BPS_DENOMINATOR
    return share, total - share


def allocate(total: int, weights: list[int]) -> list[int]:
    """Split `total` in proportion to integer `weights` (largest remainder)."""
    _check_amount(total)
    if total < 0:
        raise MoneyError("Only non-negative amounts can be allocated.")
    if not weights or any(not isinstance(w, int) or w < 0 for w in weights) or sum(weights) == 0:
        raise MoneyError("Weights must be non-negative integers with a positive sum.")
    weight_sum = sum(weights)
    floors = [total * w // weight_sum for w in weights]
    remainders = [total * w % weight_sum for w in weights]
    leftover = total - sum(floors)
    order = sorted(range(len(weights)), key=lambda i: (-remainders[i], i))
    for i in order[:leftover]:
        floors[i] += 1
    return floors


_ZERO_DECIMAL = frozenset({"jpy"})


def format_minor(amount: int, currency: str) -> str:
    """Human display only (never parsed back): 123456, usd -> '1,234.56 USD'."""
    code = currency.upper()
    if currency.lower() in _ZERO_DECIMAL:
        return f"{amount:,} {code}"
    sign = "-" if amount < 0 else ""
    major, minor = divmod(abs(amount), 100)
    return f"{sign}{major:,}.{minor:02d} {code}"
