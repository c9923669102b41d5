import logging
from typing import Any

from trust import services

logger = logging.getLogger(__name__)


def start_evaluation(sender: Any, deliverable_id: int, engagement_id: int, **kwargs: Any) -> None:
    """A deliverable was stored (on commit): open its evaluation and dispatch the judges.

    The delivery is already committed; a failure here must not turn the seller's
    successful delivery into an error. The beat sweeper starts any deliverable
    left without an evaluation.
    """
    try:
        services.evaluation_start(deliverable_id=deliverable_id)
    except Exception:
        logger.exception("could not start the evaluation of deliverable %s; the sweeper will retry", deliverable_id)
