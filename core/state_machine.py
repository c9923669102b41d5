"""One way to move a status field, shared by every status machine in Pactum.

Each machine keeps its own table of allowed moves and its own history model;
this helper does the move: check the table, update conditionally (`WHERE status
= old`, so even a stale object can never move twice, on top of the caller's row
lock), and write the history row in the same transaction.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from django.db import models
from django.utils import timezone

from core.errors import Conflict

M = TypeVar("M", bound=models.Model)


def move_status(
    obj: M,
    to_status: str,
    *,
    transitions: Mapping[str, frozenset[str]],
    history: type[models.Model],
    history_fk: str,
    noun: str,
    actor: Any = None,
    reason: str = "",
) -> M:
    """Move a *locked* `obj` to `to_status`; raise Conflict for a move the table forbids."""
    from_status: str = obj.status  # type: ignore[attr-defined]
    if to_status not in transitions.get(from_status, frozenset()):
        raise Conflict(f"An {noun} that is {from_status} cannot become {to_status}.", code="invalid_transition")
    moved = (
        type(obj)
        ._default_manager.filter(pk=obj.pk, status=from_status)
        .update(status=to_status, updated_at=timezone.now())
    )
    if moved != 1:
        raise Conflict(f"The {noun} changed meanwhile; reload and try again.", code="stale")
    obj.status = to_status  # type: ignore[attr-defined]
    history._default_manager.create(
        **{history_fk: obj}, from_status=from_status, to_status=to_status, actor=actor, reason=reason[:300]
    )
    return obj
