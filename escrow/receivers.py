from typing import Any

from escrow import disputes


def decide_on_evaluation(sender: Any, evaluation_id: int, engagement_id: int, outcome: str, **kwargs: Any) -> None:
    """An evaluation was finalized (on commit): schedule the money's next move
    (or, while a dispute holds the money, record the new outcome for the ruling)."""
    disputes.evaluation_decided(engagement_id=engagement_id, outcome=outcome)
