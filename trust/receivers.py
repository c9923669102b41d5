from typing import Any

from trust import services


def start_evaluation(sender: Any, deliverable_id: int, engagement_id: int, **kwargs: Any) -> None:
    """A deliverable was stored (on commit): open its evaluation and dispatch the judges."""
    services.evaluation_start(deliverable_id=deliverable_id)
