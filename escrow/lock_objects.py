"""Row locks for escrow, always through these helpers.

Order: engagement (marketplace) before escrow before settlement; never hold one
of them across a call to the payment provider.
"""

from escrow.models import Escrow, OutboxItem


def escrow_lock(escrow_id: int) -> Escrow:
    return Escrow.objects.select_for_update(of=("self",)).select_related("engagement").get(pk=escrow_id)


def outbox_lock(item_id: int) -> OutboxItem:
    return OutboxItem.objects.select_for_update(of=("self",)).select_related("settlement__escrow").get(pk=item_id)
