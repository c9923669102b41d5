"""The engagement status machine: the one table of allowed moves."""

from marketplace.models import Engagement

S = Engagement.Status

TRANSITIONS: dict[str, frozenset[str]] = {
    S.NEGOTIATING: frozenset({S.AGREED, S.CANCELLED}),
    S.AGREED: frozenset({S.ACTIVE, S.CANCELLED, S.EXPIRED}),
    S.ACTIVE: frozenset({S.DELIVERED, S.EXPIRED}),
    S.DELIVERED: frozenset({S.EVALUATED, S.DISPUTED}),
    S.EVALUATED: frozenset({S.CLOSED, S.DISPUTED}),
    S.DISPUTED: frozenset({S.EVALUATED, S.CLOSED}),
    S.CLOSED: frozenset(),
    S.CANCELLED: frozenset(),
    S.EXPIRED: frozenset(),
}

# Before the buyer's money is in escrow either party may walk away.
CANCELLABLE = frozenset({S.NEGOTIATING, S.AGREED})


def can_move(from_status: str, to_status: str) -> bool:
    return to_status in TRANSITIONS.get(from_status, frozenset())
