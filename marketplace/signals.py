"""Seam to trust: sent on commit when a deliverable is stored.

Receivers get `deliverable_id` and `engagement_id` (ids, never objects).
"""

from django.dispatch import Signal

deliverable_submitted = Signal()
