"""Row locks for the marketplace, always taken through these helpers.

Order when several are needed: listing before engagement (parent before child).
"""

from marketplace.models import Engagement


def engagement_lock(engagement_id: int) -> Engagement:
    return Engagement.objects.select_for_update(of=("self",)).select_related("listing").get(pk=engagement_id)
