"""Seam to escrow: sent on commit when an evaluation is finalized.

Receivers get `evaluation_id`, `engagement_id` and `outcome` (ids and strings only).
"""

from django.dispatch import Signal

evaluation_finalized = Signal()
