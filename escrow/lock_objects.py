"""Row locks for escrow, always through these helpers.

Order: engagement (marketplace) before escrow before dispute before settlement; never hold one
of them across a call to the payment provider.
"""

from escrow.models import Dispute, Escrow, OutboxItem


def escrow_lock(escrow_id: int) -> Escrow:
    return Escrow.objects.select_for_update(of=("self",)).select_related("engagement").get(pk=escrow_id)


def outbox_lock(item_id: int) -> OutboxItem:
    return OutboxItem.objects.select_for_update(of=("self",)).select_related("settlement__escrow").get(pk=item_id)


def dispute_lock(dispute_id: int) -> Dispute:
    """Lock a dispute row (after its engagement and escrow, when those are needed too)."""
    return Dispute.objects.select_for_update(of=("self",)).get(pk=dispute_id)
