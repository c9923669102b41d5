"""Who gets what when an escrow settles. Pure integer arithmetic.

Rounding (core.money's one rule): a share is rounded down to the minor unit and
the remainder goes to the other side. So in a split the seller's gross share is
rounded down (the buyer gets the odd unit), and the platform fee on the
seller's gross is rounded down (the seller keeps the odd unit). Every unit of
the escrow amount is accounted for: gross + refund == amount and
net + fee == gross, always.
"""

from __future__ import annotations

from dataclasses import dataclass

from core.money import BPS_DENOMINATOR, allocate, split_bps


@dataclass(frozen=True)
class Amounts:
    outcome: str  # release / refund / split
    seller_gross: int
    platform_fee: int
    seller_net: int
    buyer_refund: int


def amounts_for_share(amount: int, seller_share_bps: int, fee_bps: int) -> Amounts:
    gross, refund = split_bps(amount, seller_share_bps)
    fee, net = split_bps(gross, fee_bps)
    outcome = "release" if refund == 0 else "refund" if gross == 0 else "split"
    return Amounts(outcome, gross, fee, net, refund)


def release(amount: int, fee_bps: int) -> Amounts:
    return amounts_for_share(amount, BPS_DENOMINATOR, fee_bps)


def refund(amount: int, fee_bps: int) -> Amounts:
    return amounts_for_share(amount, 0, fee_bps)


def pro_rata(amount: int, fee_bps: int, *, passed_weight: int, total_weight: int) -> Amounts:
    """The seller earns the weighted share of clauses passed (largest remainder split)."""
    if total_weight <= 0:
        return refund(amount, fee_bps)
    gross, refund_part = allocate(amount, [passed_weight, total_weight - passed_weight])
    fee, net = split_bps(gross, fee_bps)
    outcome = "release" if refund_part == 0 else "refund" if gross == 0 else "split"
    return Amounts(outcome, gross, fee, net, refund_part)
