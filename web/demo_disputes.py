"""Disputes in the demo, so the staff console's queue and case page are not empty.

Built through the real dispute services after the demo's jobs are judged (their review
windows are open), idempotently: each scenario is keyed by its reason and skipped when
its dispute exists or its engagement is not in a state to dispute.

- ruled: grace disputed a Beacon answer, Beacon answered, the admin split 80/20;
- answered: grace disputes another Beacon answer, Beacon answered: waiting for the admin;
- open: ada disputes a Quill brief; Quill has not answered yet.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from core.errors import DomainError
from core.models import User
from escrow import disputes
from escrow.models import Dispute, Escrow
from marketplace.models import Engagement

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class DemoDispute:
    listing: str
    buyer: str
    task_prefix: str
    reason: str
    evidence: str
    answer: str = ""
    ruling: tuple[str, int, str] | None = None  # outcome, seller share bps, rationale


DEMO_DISPUTES = (
    DemoDispute(
        listing="Beacon Research",
        buyer="grace",
        task_prefix="How reliable are automatic citation checkers",
        reason="The answer leaves out the main evaluations of citation checkers.",
        evidence="It cites three sources, none of them the benchmark studies the task asks about.",
        answer="The pact asks for cited claims, and every claim carries a source; coverage is not a clause.",
        ruling=(
            "split",
            8000,
            "Every claim is cited as the pact requires, so most of the price is earned; the answer does "
            "skip part of the question, which the rubric clause covers. 80% to the seller.",
        ),
    ),
    DemoDispute(
        listing="Beacon Research",
        buyer="grace",
        task_prefix="What are the trade-offs between optimistic",
        reason="The answer does not cover the costs of retries under contention.",
        evidence="The task asks for trade-offs; only the benefits of optimistic locking are discussed.",
        answer="Retries are covered in the third paragraph, with a source.",
    ),
    DemoDispute(
        listing="Quill Writer",
        buyer="ada",
        task_prefix="Write a short brief for a team on why code review",
        reason="The brief is generic and does not follow the requested structure.",
        evidence="The brief asked for three sections (why, how, pitfalls); the delivery has none.",
    ),
)


def _seed_one(spec: DemoDispute, admin: User) -> None:
    if Dispute.objects.filter(reason=spec.reason).exists():
        return
    candidates = Engagement.objects.filter(
        listing__name=spec.listing,
        buyer__username=spec.buyer,
        status=Engagement.Status.EVALUATED,
        escrow__status=Escrow.Status.FUNDED,
    ).select_related("buyer", "listing__seller")
    # The task is JSON (text here): matched in Python, the demo has a handful of jobs.
    engagement = next((e for e in candidates if str(e.task).startswith(spec.task_prefix)), None)
    if engagement is None:
        return
    dispute = disputes.dispute_open(
        engagement_id=engagement.pk, actor=engagement.buyer, reason=spec.reason, evidence=spec.evidence
    )
    if spec.answer:
        disputes.dispute_answer(dispute_id=dispute.pk, actor=engagement.listing.seller, answer=spec.answer)
    if spec.ruling is not None:
        outcome, bps, rationale = spec.ruling
        disputes.dispute_rule(
            dispute_id=dispute.pk, actor=admin, outcome=outcome, seller_share_bps=bps, rationale=rationale
        )


def seed_disputes() -> None:
    admin = User.objects.filter(is_staff=True).order_by("id").first()
    if admin is None:
        return
    for spec in DEMO_DISPUTES:
        try:
            _seed_one(spec, admin)
        except DomainError as exc:  # the demo's story changed under it: skip this one, say why
            logger.warning("demo dispute %r skipped: %s", spec.reason, exc.detail)
