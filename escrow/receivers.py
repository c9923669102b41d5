from typing import Any

from escrow import services


def decide_on_evaluation(sender: Any, evaluation_id: int, engagement_id: int, outcome: str, **kwargs: Any) -> None:
    """An evaluation was finalized (on commit): schedule the money's next move."""
    services.escrow_decide(engagement_id=engagement_id, outcome=outcome)
