"""The dispute status machine: the one table of allowed moves.

open -> answered (the other side answered in time), under_review (its answer
window lapsed, or staff took the case up, e.g. asking for a re-evaluation);
answered -> under_review; any active status -> ruled (staff) or withdrawn (the
opener). Ruled and withdrawn are final.
"""

from escrow.models import Dispute

S = Dispute.Status

TRANSITIONS: dict[str, frozenset[str]] = {
    S.OPEN: frozenset({S.ANSWERED, S.UNDER_REVIEW, S.RULED, S.WITHDRAWN}),
    S.ANSWERED: frozenset({S.UNDER_REVIEW, S.RULED, S.WITHDRAWN}),
    S.UNDER_REVIEW: frozenset({S.RULED, S.WITHDRAWN}),
    S.RULED: frozenset(),
    S.WITHDRAWN: frozenset(),
}


def can_move(from_status: str, to_status: str) -> bool:
    return to_status in TRANSITIONS.get(from_status, frozenset())
