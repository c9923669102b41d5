"""The escrow status machine: the one table of allowed moves."""

from escrow.models import Escrow

S = Escrow.Status

TRANSITIONS: dict[str, frozenset[str]] = {
    S.AWAITING_FUNDS: frozenset({S.FUNDED, S.CANCELLED}),
    S.FUNDED: frozenset({S.HELD, S.SETTLED}),
    S.HELD: frozenset({S.FUNDED, S.SETTLED}),
    S.SETTLED: frozenset(),
    S.CANCELLED: frozenset(),
}


def can_move(from_status: str, to_status: str) -> bool:
    return to_status in TRANSITIONS.get(from_status, frozenset())
