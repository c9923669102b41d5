"""Every write of disputes and admin adjudication.

A party contests how an evaluated engagement's money would move; the other side
answers within its window; staff may have the delivery re-judged by a larger
panel; staff rule release / refund / split with a written rationale, and the
money moves once, through the escrow's settlement path (`escrow.services._settle`:
one settlement, one ledger transaction, the outbox). Staff also rule escrows held
for an inconclusive evaluation the same way.

Lock order (as in `escrow.services`): engagement -> escrow -> dispute. Every
top-level service here is one durable transaction; the status-history row and the
evidence record are written in it; e-mails go out after commit, through a task.

Opening rules: an evaluated engagement whose escrow is funded (not settled, not
held for an admin or a card chargeback); the buyer against any conclusive
evaluation, the seller only against a failed one; before the review window
closes (the latest evaluation's finish plus `review_window_hours`, or the money's
scheduled move if that is later). While a dispute is active the escrow is held
and its pending timers are paused; a withdrawal resumes them (or, when a
re-evaluation changed the outcome meanwhile, decides afresh).
"""

from __future__ import annotations

import datetime
import functools
import hashlib
import logging
import secrets
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from django.conf import settings
from django.core.files.base import ContentFile, File
from django.core.files.storage import default_storage
from django.core.mail import EmailMessage, get_connection
from django.db import transaction
from django.utils import timezone

from core.errors import Conflict, DomainError, NotAllowed, ValidationFailed
from core.models import User
from core.money import BPS_DENOMINATOR
from core.services import evidence_append
from core.state_machine import move_status
from escrow import money as escrow_money
from escrow import services as escrow_services
from escrow.dispute_states import TRANSITIONS
from escrow.lock_objects import dispute_lock, escrow_lock
from escrow.models import (
    Dispute,
    DisputeEvidenceFile,
    DisputeStatusChange,
    Escrow,
    EscrowStatusChange,
    EscrowTimer,
    Settlement,
)
from marketplace import services as marketplace_services
from marketplace.lock_objects import engagement_lock
from marketplace.models import Engagement
from trust import services as trust_services
from trust.models import Evaluation

logger = logging.getLogger(__name__)
T = TypeVar("T")

S = Dispute.Status
MAX_REASON = 500
MAX_STATEMENT = 20_000
MAX_RATIONALE = 5_000
MAX_FILES_PER_STATEMENT = 5
DEFAULT_ANSWER_WINDOW_HOURS = 48


class FileRefused(DomainError):
    """An evidence file the platform will not store (too large, or not what it claims to be)."""

    status_code = 415
    code = "unsupported_file"


class FileTooLarge(FileRefused):
    status_code = 413
    code = "file_too_large"


# --- evidence files ------------------------------------------------------------------------------
#
# The type is decided by the file's first bytes, never by its name or the client's
# Content-Type; the name's extension must agree with it, so a program renamed
# "invoice.pdf" or a PDF renamed "photo.png" is refused as disguised. Text must be
# UTF-8 without control characters. Stored under a random name; served only by a
# view that checks the viewer is a party or staff, as an attachment.

_MAGIC: dict[str, tuple[bytes, ...]] = {
    "application/pdf": (b"%PDF-",),
    "image/png": (b"\x89PNG\r\n\x1a\n",),
    "image/jpeg": (b"\xff\xd8\xff",),
    "image/gif": (b"GIF87a", b"GIF89a"),
}
_EXTENSIONS: dict[str, frozenset[str]] = {
    "application/pdf": frozenset({".pdf"}),
    "image/png": frozenset({".png"}),
    "image/jpeg": frozenset({".jpg", ".jpeg"}),
    "image/gif": frozenset({".gif"}),
    "text/plain": frozenset({".txt", ".md", ".csv", ".log", ".json"}),
}
_STORED_EXTENSION = {
    "application/pdf": ".pdf",
    "image/png": ".png",
    "image/jpeg": ".jpg",
    "image/gif": ".gif",
    "text/plain": ".txt",
}
_TEXT_CONTROL = set(range(0, 32)) - {9, 10, 12, 13}


def max_file_bytes() -> int:
    return int(getattr(settings, "DISPUTE_FILE_MAX_BYTES", 5 * 1024 * 1024))


@dataclass(frozen=True)
class CheckedFile:
    name: str
    content: bytes
    content_type: str
    sha256: str


def _sniff(content: bytes) -> str | None:
    for content_type, signatures in _MAGIC.items():
        if content.startswith(signatures):
            return content_type
    try:
        text = content.decode("utf-8")
    except UnicodeDecodeError:
        return None
    if any(ord(ch) in _TEXT_CONTROL for ch in text):
        return None
    return "text/plain"


def _extension(name: str) -> str:
    dot = name.rfind(".")
    return name[dot:].lower() if dot > 0 else ""


def evidence_files_check(files: Iterable[File]) -> list[CheckedFile]:
    """Read and check uploads before any lock is taken; raise FileRefused / FileTooLarge."""
    checked: list[CheckedFile] = []
    cap = max_file_bytes()
    for upload in files:
        name = (str(upload.name or "").replace("\\", "/").rsplit("/", 1)[-1].strip() or "file")[:200]
        size = upload.size if upload.size is not None else None
        if size is not None and size > cap:
            raise FileTooLarge(f"{name}: {size} bytes; a file may have at most {cap} bytes.")
        upload.seek(0)
        content = upload.read(cap + 1)
        if len(content) > cap:
            raise FileTooLarge(f"{name}: a file may have at most {cap} bytes.")
        if not content:
            raise FileRefused(f"{name}: the file is empty.", code="empty_file")
        content_type = _sniff(content)
        if content_type is None:
            raise FileRefused(f"{name}: not an allowed type. Allowed: PDF, PNG, JPEG, GIF and UTF-8 text.")
        extension = _extension(name)
        if extension not in _EXTENSIONS[content_type]:
            raise FileRefused(
                f"{name}: the name says {extension or 'no type'} but the content is {content_type}; "
                "rename it to what it is.",
                code="disguised_file",
            )
        checked.append(CheckedFile(name, content, content_type, hashlib.sha256(content).hexdigest()))
    if len(checked) > MAX_FILES_PER_STATEMENT:
        raise ValidationFailed(f"files: at most {MAX_FILES_PER_STATEMENT} per statement.")
    return checked


def _store_files(
    dispute: Dispute, files: Sequence[CheckedFile], *, actor: User, party: str, written: list[str]
) -> list[dict[str, Any]]:
    stored = []
    for checked in files:
        row = DisputeEvidenceFile(
            dispute=dispute,
            uploaded_by=actor,
            party=party,
            original_name=checked.name,
            content_type=checked.content_type,
            size=len(checked.content),
            sha256=checked.sha256,
        )
        random_name = secrets.token_hex(16) + _STORED_EXTENSION[checked.content_type]
        row.file.save(random_name, ContentFile(checked.content), save=False)
        written.append(str(row.file.name))
        row.save()
        stored.append({"name": checked.name, "sha256": checked.sha256, "size": row.size, "type": row.content_type})
    return stored


def _removing_files_on_failure(service: Callable[..., T]) -> Callable[..., T]:
    """Files reach the disk inside the transaction; if it does not commit, remove them
    (Django has no rollback hook, so the caller of the durable block does it)."""

    @functools.wraps(service)
    def wrapper(*args: Any, **kwargs: Any) -> T:
        written: list[str] = []
        try:
            return service(*args, written=written, **kwargs)
        except BaseException:
            for path in written:
                default_storage.delete(path)
            raise

    return wrapper


# --- helpers ------------------------------------------------------------------------------------------


def _move(dispute: Dispute, to_status: str, *, actor: User | None, reason: str) -> Dispute:
    return move_status(
        dispute,
        to_status,
        transitions=TRANSITIONS,
        history=DisputeStatusChange,
        history_fk="dispute",
        noun="dispute",
        actor=actor,
        reason=reason,
    )


def _note(dispute: Dispute, *, actor: User | None, reason: str) -> None:
    """A history row that records an event without a status move."""
    DisputeStatusChange.objects.create(
        dispute=dispute, from_status=dispute.status, to_status=dispute.status, actor=actor, reason=reason[:300]
    )


def _party(engagement: Engagement, user: User) -> str | None:
    if user.pk == engagement.buyer_id:
        return Dispute.Party.BUYER
    if user.pk == engagement.listing.seller_id:
        return Dispute.Party.SELLER
    return None


def _text(value: Any, field: str, *, limit: int, required: bool) -> str:
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise ValidationFailed(f"{field}: text.")
    value = value.strip()
    if required and not value:
        raise ValidationFailed(f"{field}: this may not be empty.")
    if len(value) > limit:
        raise ValidationFailed(f"{field}: at most {limit} characters.")
    if "\x00" in value:
        raise ValidationFailed(f"{field}: NUL characters are not allowed.")
    return value


def _staff(actor: User) -> None:
    if not (actor.is_active and actor.is_staff):
        raise NotAllowed("Only staff can do this.")


def hold_reason_for(dispute: Dispute) -> str:
    return f"dispute #{dispute.pk} is open: an admin rules"


def _paused_marker(dispute: Dispute) -> str:
    return f"paused by dispute #{dispute.pk}"


def _latest_evaluation(engagement_id: int) -> Evaluation | None:
    return Evaluation.objects.filter(engagement_id=engagement_id).order_by("-round", "-id").first()


def _answer_window(engagement: Engagement) -> datetime.timedelta:
    terms = engagement.pact_version.terms if engagement.pact_version else {}
    hours = terms.get("dispute_response_window_hours") or getattr(
        settings, "DISPUTE_ANSWER_WINDOW_HOURS", DEFAULT_ANSWER_WINDOW_HOURS
    )
    return datetime.timedelta(hours=int(hours or DEFAULT_ANSWER_WINDOW_HOURS))


def dispute_window_closes_at(escrow: Escrow, evaluation: Evaluation) -> datetime.datetime:
    """When it becomes too late to dispute: the review window from the evaluation's finish,
    or the money's scheduled move if a policy put it later."""
    assert evaluation.finished_at is not None
    closes = evaluation.finished_at + escrow_services._review_window(escrow)
    scheduled = (
        EscrowTimer.objects.filter(
            escrow=escrow,
            status=EscrowTimer.Status.PENDING,
            action__in=[
                EscrowTimer.Action.RELEASE,
                EscrowTimer.Action.SETTLE_FAILED,
                EscrowTimer.Action.MANUAL_RELEASE_DUE,
            ],
        )
        .order_by("-due_at")
        .values_list("due_at", flat=True)
        .first()
    )
    return max(closes, scheduled) if scheduled else closes


def _evidence(kind: str, dispute: Dispute, **payload: Any) -> None:
    evidence_append(
        kind=kind,
        subject=f"engagement:{dispute.engagement_id}",
        payload={"dispute": dispute.pk, "escrow": dispute.escrow_id, **payload},
    )


def _notify_on_commit(dispute_id: int, event: str) -> None:
    def enqueue() -> None:
        from escrow.tasks import send_dispute_notice

        try:
            send_dispute_notice.delay(dispute_id, event)
        except Exception:  # the broker is down: the dispute stands, the e-mail is lost (logged)
            logger.exception("could not enqueue the %s notice of dispute %s", event, dispute_id)

    transaction.on_commit(enqueue)


# --- opening, answering, lapsing, withdrawing --------------------------------------------------------


@_removing_files_on_failure
@transaction.atomic(durable=True)
def dispute_open(
    *,
    engagement_id: int,
    actor: User,
    reason: str,
    evidence: str = "",
    files: Iterable[File] = (),
    now: datetime.datetime | None = None,
    written: list[str],
) -> Dispute:
    """Open a dispute on an evaluated engagement. Locks the engagement, then its escrow."""
    now = now or timezone.now()
    reason = _text(reason, "reason", limit=MAX_REASON, required=True)
    evidence = _text(evidence, "evidence", limit=MAX_STATEMENT, required=False)
    uploads = evidence_files_check(files)
    engagement = engagement_lock(engagement_id)
    party = _party(engagement, actor)
    if party is None:
        raise NotAllowed("Only the buyer or the seller of this engagement can dispute it.")
    escrow_id = Escrow.objects.filter(engagement=engagement).values_list("id", flat=True).first()
    if escrow_id is None:
        raise Conflict("This engagement has no funded escrow: there is no money to dispute.", code="not_funded")
    escrow = escrow_lock(escrow_id)
    if Dispute.objects.filter(engagement=engagement, status__in=Dispute.ACTIVE).exists():
        raise Conflict("A dispute is already open on this engagement.", code="dispute_open")
    if escrow.status == Escrow.Status.SETTLED:
        raise Conflict("The money has already been settled: it is too late to dispute.", code="too_late")
    if escrow.status not in (Escrow.Status.FUNDED, Escrow.Status.HELD):
        raise Conflict(f"This escrow is {escrow.status}: there is no money to dispute.", code="not_funded")
    if engagement.status != Engagement.Status.EVALUATED:
        raise Conflict(
            f"A dispute can be opened once the delivery has been evaluated; this engagement is {engagement.status}.",
            code="not_evaluated",
        )
    evaluation = _latest_evaluation(engagement.pk)
    if evaluation is None or evaluation.status != Evaluation.Status.DONE:
        raise Conflict("The evaluation is still running; dispute its result once it is in.", code="evaluation_running")
    if escrow.chargeback_open:
        raise Conflict(
            "A card chargeback is open on this payment; the card network decides first.", code="chargeback_open"
        )
    if evaluation.outcome == "inconclusive" or escrow.status == Escrow.Status.HELD:
        raise Conflict(
            "The money is already held for an admin to decide"
            + (f" ({escrow.hold_reason})" if escrow.hold_reason else "")
            + ".",
            code="held_for_admin",
        )
    if party == Dispute.Party.SELLER and evaluation.outcome != "failed":
        raise NotAllowed("The seller can dispute only a failed evaluation.")
    closes = dispute_window_closes_at(escrow, evaluation)
    if now > closes:
        raise Conflict(
            f"The review window closed at {closes:%Y-%m-%d %H:%M} UTC: it is too late to dispute.",
            code="window_closed",
        )
    dispute = Dispute.objects.create(
        engagement=engagement,
        escrow=escrow,
        evaluation=evaluation,
        evaluation_outcome=evaluation.outcome,
        opened_by=actor,
        opened_by_party=party,
        reason=reason,
        evidence=evidence,
        answer_due_at=now + _answer_window(engagement),
    )
    DisputeStatusChange.objects.create(
        dispute=dispute, to_status=S.OPEN, actor=actor, reason=f"opened by the {party}: {reason}"[:300]
    )
    stored = _store_files(dispute, uploads, actor=actor, party=party, written=written)
    EscrowTimer.objects.filter(escrow=escrow, status=EscrowTimer.Status.PENDING).update(
        status=EscrowTimer.Status.CANCELLED, result=_paused_marker(dispute)
    )
    escrow.hold_reason = hold_reason_for(dispute)
    escrow.save(update_fields=["hold_reason", "updated_at"])
    escrow_services._move(
        escrow, Escrow.Status.HELD, actor=actor, reason=f"dispute #{dispute.pk} opened by the {party}"
    )
    marketplace_services.engagement_mark_disputed(
        engagement_id=engagement.pk, actor=actor, reason=f"dispute #{dispute.pk} opened by the {party}"
    )
    _evidence(
        "dispute.opened",
        dispute,
        opened_by=party,
        reason=reason,
        evidence=evidence,
        files=stored,
        evaluation=evaluation.pk,
        evaluation_outcome=evaluation.outcome,
        answer_due_at=dispute.answer_due_at.isoformat(),
    )
    _notify_on_commit(dispute.pk, "opened")
    return dispute


@_removing_files_on_failure
@transaction.atomic(durable=True)
def dispute_answer(
    *,
    dispute_id: int,
    actor: User,
    answer: str,
    files: Iterable[File] = (),
    now: datetime.datetime | None = None,
    written: list[str],
) -> Dispute:
    """The other side states its case, within its answer window. Locks the engagement, then the dispute."""
    now = now or timezone.now()
    answer = _text(answer, "answer", limit=MAX_STATEMENT, required=True)
    uploads = evidence_files_check(files)
    engagement_id = Dispute.objects.values_list("engagement_id", flat=True).get(pk=dispute_id)
    engagement = engagement_lock(engagement_id)
    dispute = dispute_lock(dispute_id)
    party = _party(engagement, actor)
    if party is None:
        raise NotAllowed("Only the other party of this engagement answers the dispute.")
    if party == dispute.opened_by_party:
        raise NotAllowed("You opened this dispute; the other side answers it.")
    if dispute.status != S.OPEN:
        raise Conflict(
            f"This dispute is {dispute.get_status_display().lower()}: it takes no answer now.", code="not_open"
        )
    if now > dispute.answer_due_at:
        raise Conflict(
            f"The answer window closed at {dispute.answer_due_at:%Y-%m-%d %H:%M} UTC.", code="answer_window_closed"
        )
    dispute.answer = answer
    dispute.answered_by = actor
    dispute.answered_at = now
    dispute.save(update_fields=["answer", "answered_by", "answered_at", "updated_at"])
    _move(dispute, S.ANSWERED, actor=actor, reason=f"answered by the {party}")
    stored = _store_files(dispute, uploads, actor=actor, party=party, written=written)
    _evidence("dispute.answered", dispute, answered_by=party, answer=answer, files=stored)
    _notify_on_commit(dispute.pk, "answered")
    return dispute


@transaction.atomic(durable=True)
def dispute_answer_lapse(*, dispute_id: int, now: datetime.datetime | None = None) -> bool:
    """Record that the other side let its answer window pass; the case goes to review. Idempotent."""
    now = now or timezone.now()
    engagement_id = Dispute.objects.values_list("engagement_id", flat=True).get(pk=dispute_id)
    engagement_lock(engagement_id)
    dispute = dispute_lock(dispute_id)
    if dispute.status != S.OPEN or dispute.answer_due_at > now:
        return False
    other = Dispute.Party.SELLER if dispute.opened_by_party == Dispute.Party.BUYER else Dispute.Party.BUYER
    dispute.answer_lapsed_at = now
    dispute.save(update_fields=["answer_lapsed_at", "updated_at"])
    _move(dispute, S.UNDER_REVIEW, actor=None, reason=f"the {other} did not answer in time: answer window lapsed")
    _evidence("dispute.answer_lapsed", dispute, party=other, due_at=dispute.answer_due_at.isoformat())
    return True


def dispute_lapse_due(*, now: datetime.datetime | None = None, limit: int = 200) -> int:
    """Record every lapsed answer window (beat calls this every minute)."""
    now = now or timezone.now()
    due = list(
        Dispute.objects.filter(status=S.OPEN, answer_due_at__lte=now)
        .order_by("answer_due_at", "id")
        .values_list("id", flat=True)[:limit]
    )
    lapsed = 0
    for dispute_id in due:
        try:
            lapsed += dispute_answer_lapse(dispute_id=dispute_id, now=now)
        except Conflict as exc:  # moved on meanwhile
            logger.info("dispute %s: lapse skipped: %s", dispute_id, exc.detail)
    return lapsed


@transaction.atomic(durable=True)
def dispute_withdraw(*, dispute_id: int, actor: User, note: str = "") -> Dispute:
    """The opener drops the dispute: the engagement and its money go back to the evaluation's decision.

    Locks the engagement, the escrow, then the dispute. The paused timers resume with
    their original due times (one already due fires at the next scan); if a
    re-evaluation changed the outcome meanwhile, the escrow decides afresh.
    """
    note = _text(note, "note", limit=MAX_REASON, required=False)
    engagement_id, escrow_id = Dispute.objects.values_list("engagement_id", "escrow_id").get(pk=dispute_id)
    engagement_lock(engagement_id)
    escrow = escrow_lock(escrow_id)
    dispute = dispute_lock(dispute_id)
    if actor.pk != dispute.opened_by_id:
        raise NotAllowed("Only the side that opened the dispute can withdraw it.")
    if not dispute.is_active:
        raise Conflict(f"This dispute is {dispute.status}; it can no longer be withdrawn.", code="not_active")
    dispute.closed_at = timezone.now()
    dispute.save(update_fields=["closed_at", "updated_at"])
    _move(dispute, S.WITHDRAWN, actor=actor, reason="withdrawn" + (f": {note}" if note else ""))
    marketplace_services.engagement_mark_evaluated(
        engagement_id=engagement_id, reason=f"dispute #{dispute.pk} withdrawn"
    )
    _resume_escrow(escrow, dispute, actor)
    _evidence("dispute.withdrawn", dispute, withdrawn_by=dispute.opened_by_party, note=note)
    _notify_on_commit(dispute.pk, "withdrawn")
    return dispute


def disputes_end_for_chargeback(*, escrow: Escrow, reason: str) -> int:
    """The card network returned the buyer's money: an active dispute on this escrow has
    nothing left to decide. It ends as withdrawn by the platform (not ruled, so it does not
    count in the agent's dispute rate). Runs inside the caller's transaction, escrow locked."""
    ended = 0
    for dispute in Dispute.objects.select_for_update().filter(escrow=escrow, status__in=Dispute.ACTIVE):
        dispute.closed_at = timezone.now()
        dispute.save(update_fields=["closed_at", "updated_at"])
        _move(dispute, S.WITHDRAWN, actor=None, reason=reason[:300])
        EscrowTimer.objects.filter(
            escrow=escrow, status=EscrowTimer.Status.CANCELLED, result=_paused_marker(dispute)
        ).update(result="chargeback lost")
        _evidence("dispute.ended", dispute, reason=reason)
        _notify_on_commit(dispute.pk, "withdrawn")
        ended += 1
    return ended


def _resume_escrow(escrow: Escrow, dispute: Dispute, actor: User | None) -> None:
    if escrow.status != Escrow.Status.HELD or escrow.hold_reason != hold_reason_for(dispute):
        return  # held for something else meanwhile: that hold stays
    if escrow.chargeback_open:
        # A card chargeback opened during the dispute: the money stays held for it. The paused
        # timers go back; they do nothing while the escrow is held and apply once the
        # chargeback closes in our favour (see escrow.services._chargeback_release).
        escrow.hold_reason = escrow_services.CHARGEBACK_HOLD_REASON
        escrow.save(update_fields=["hold_reason", "updated_at"])
        EscrowStatusChange.objects.create(
            escrow=escrow,
            from_status=escrow.status,
            to_status=Escrow.Status.HELD,
            actor=actor,
            reason=f"{escrow_services.CHARGEBACK_HOLD_REASON}: dispute #{dispute.pk} withdrawn, the chargeback holds",
        )
        if escrow.evaluation_outcome == dispute.evaluation_outcome:
            EscrowTimer.objects.filter(
                escrow=escrow, status=EscrowTimer.Status.CANCELLED, result=_paused_marker(dispute)
            ).update(status=EscrowTimer.Status.PENDING, result="")
        # else a re-evaluation changed the outcome: the escrow decides on it when the chargeback
        # closes in our favour (escrow.services._chargeback_release).
        return
    escrow.hold_reason = ""
    escrow.save(update_fields=["hold_reason", "updated_at"])
    outcome = escrow.evaluation_outcome
    if outcome != dispute.evaluation_outcome:
        # A re-evaluation during the dispute changed the outcome: decide on it now.
        escrow_services.escrow_decide(engagement_id=escrow.engagement_id, outcome=outcome)
        return
    escrow_services._move(
        escrow, Escrow.Status.FUNDED, actor=actor, reason=f"dispute #{dispute.pk} withdrawn: the evaluation decides"
    )
    EscrowTimer.objects.filter(
        escrow=escrow, status=EscrowTimer.Status.CANCELLED, result=_paused_marker(dispute)
    ).update(status=EscrowTimer.Status.PENDING, result="")


# --- re-evaluation ------------------------------------------------------------------------------------


def _reevaluate(engagement_id: int, reason: str) -> Evaluation:
    latest = _latest_evaluation(engagement_id)
    if latest is None:
        raise Conflict("This engagement has no evaluation to repeat.", code="no_evaluation")
    if latest.status != Evaluation.Status.DONE:
        raise Conflict(f"Round {latest.round} is still being judged.", code="evaluation_running")
    return trust_services.evaluation_reevaluate(evaluation_id=latest.pk, reason=reason)


@transaction.atomic(durable=True)
def dispute_request_reevaluation(*, dispute_id: int, actor: User) -> Evaluation:
    """Staff have the delivery judged again by a larger panel; every round stays as evidence."""
    _staff(actor)
    engagement_id = Dispute.objects.values_list("engagement_id", flat=True).get(pk=dispute_id)
    engagement_lock(engagement_id)
    dispute = dispute_lock(dispute_id)
    if not dispute.is_active:
        raise Conflict(f"This dispute is {dispute.status}.", code="not_active")
    evaluation = _reevaluate(engagement_id, f"dispute #{dispute.pk}: re-evaluation by a larger panel")
    reason = f"re-evaluation requested (round {evaluation.round})"
    if dispute.status == S.UNDER_REVIEW:
        _note(dispute, actor=actor, reason=reason)
    else:
        _move(dispute, S.UNDER_REVIEW, actor=actor, reason=reason)
    return evaluation


@transaction.atomic(durable=True)
def escrow_request_reevaluation(*, escrow_id: int, actor: User) -> Evaluation:
    """Staff have an inconclusive delivery judged again; its finalize decides the money as usual."""
    _staff(actor)
    engagement_id = Escrow.objects.values_list("engagement_id", flat=True).get(pk=escrow_id)
    engagement_lock(engagement_id)
    escrow = escrow_lock(escrow_id)
    if escrow.status != Escrow.Status.HELD:
        raise Conflict(f"This escrow is {escrow.status}, not held for an admin.", code="not_held")
    if Dispute.objects.filter(escrow=escrow, status__in=Dispute.ACTIVE).exists():
        raise Conflict("A dispute is open on this escrow; work it from the dispute.", code="dispute_open")
    evaluation = _reevaluate(engagement_id, "admin: re-evaluation by a larger panel")
    EscrowStatusChange.objects.create(
        escrow=escrow,
        from_status=escrow.status,
        to_status=escrow.status,
        actor=actor,
        reason=f"re-evaluation requested (round {evaluation.round})",
    )
    return evaluation


@transaction.atomic
def evaluation_decided(*, engagement_id: int, outcome: str) -> Escrow | None:
    """An evaluation finished (the finalize signal): decide the money, unless a dispute holds it.

    During a dispute a re-evaluation's outcome is recorded (on the escrow and in the
    dispute's history) for the ruling and for a withdrawal; nothing moves.
    """
    engagement_lock(engagement_id)
    dispute = Dispute.objects.filter(engagement_id=engagement_id, status__in=Dispute.ACTIVE).first()
    if dispute is None:
        return escrow_services.escrow_decide(engagement_id=engagement_id, outcome=outcome)
    escrow = escrow_lock(dispute.escrow_id)
    escrow.evaluation_outcome = outcome
    escrow.save(update_fields=["evaluation_outcome", "updated_at"])
    _note(dispute_lock(dispute.pk), actor=None, reason=f"re-evaluation finished: {outcome}")
    return escrow


# --- rulings ----------------------------------------------------------------------------------------


def ruling_share(outcome: Any, seller_share_bps: Any) -> int:
    """The seller's share a ruling gives: release = 10000, refund = 0, split = as given (0..10000)."""
    if outcome not in Settlement.Outcome.values:
        raise ValidationFailed("outcome: release, refund or split.")
    if seller_share_bps is not None and (
        not isinstance(seller_share_bps, int)
        or isinstance(seller_share_bps, bool)
        or not 0 <= seller_share_bps <= BPS_DENOMINATOR
    ):
        raise ValidationFailed("seller_share_bps: an integer from 0 to 10000.")
    if outcome == Settlement.Outcome.RELEASE:
        if seller_share_bps not in (None, BPS_DENOMINATOR):
            raise ValidationFailed("seller_share_bps: a release gives the seller 10000.")
        return BPS_DENOMINATOR
    if outcome == Settlement.Outcome.REFUND:
        if seller_share_bps not in (None, 0):
            raise ValidationFailed("seller_share_bps: a refund gives the seller 0.")
        return 0
    if seller_share_bps is None:
        raise ValidationFailed("seller_share_bps: a split needs the seller's share, 0 to 10000.")
    return seller_share_bps


def dispute_upheld(*, opened_by_party: str, ruled_seller_gross: int, default_seller_gross: int) -> bool:
    """Upheld when the ruling moved the money the opener's way compared with what the
    evaluation's decision would have paid: less to the seller for a buyer's dispute, more for
    a seller's. A ruling that confirms the decision rejects the dispute."""
    if opened_by_party == Dispute.Party.BUYER:
        return ruled_seller_gross < default_seller_gross
    return ruled_seller_gross > default_seller_gross


def _default_seller_gross(escrow: Escrow, dispute: Dispute) -> int:
    """What the seller would have been paid (before the fee) had nobody disputed: the decision
    on the evaluation the dispute contested (a re-evaluation during the case does not move it)."""
    if dispute.evaluation_outcome == "passed":
        return escrow_services.settleable_minor(escrow)
    return escrow_services._failed_amounts(escrow, evaluation=dispute.evaluation).seller_gross


@transaction.atomic(durable=True)
def dispute_rule(
    *, dispute_id: int, actor: User, outcome: str, seller_share_bps: int | None, rationale: str
) -> Dispute:
    """Staff rule: the escrow settles once by the ruling's share, the dispute closes, trust learns.

    Locks the engagement, the escrow, then the dispute, so two rulings sent at once
    serialise and the second finds the dispute ruled (409).
    """
    _staff(actor)
    share = ruling_share(outcome, seller_share_bps)
    rationale = _text(rationale, "rationale", limit=MAX_RATIONALE, required=True)
    engagement_id, escrow_id = Dispute.objects.values_list("engagement_id", "escrow_id").get(pk=dispute_id)
    engagement_lock(engagement_id)
    escrow = escrow_lock(escrow_id)
    dispute = dispute_lock(dispute_id)
    if dispute.status == S.RULED:
        raise Conflict("This dispute has already been ruled.", code="already_ruled")
    if not dispute.is_active:
        raise Conflict(f"This dispute is {dispute.status}; there is nothing to rule.", code="not_active")
    now = timezone.now()
    default_gross = _default_seller_gross(escrow, dispute)
    settlement = escrow_services._settle(
        escrow,
        escrow_money.amounts_for_share(escrow_services.settleable_minor(escrow), share, escrow.fee_bps),
        reason=Settlement.Reason.DISPUTE_RULING,
        actor=actor,
        note=f"dispute #{dispute.pk}: {rationale}",
    )
    upheld = dispute_upheld(
        opened_by_party=dispute.opened_by_party,
        ruled_seller_gross=settlement.seller_gross_minor,
        default_seller_gross=default_gross,
    )
    dispute.ruling_outcome = outcome
    dispute.seller_share_bps = share
    dispute.rationale = rationale
    dispute.ruled_by = actor
    dispute.ruled_at = now
    dispute.closed_at = now
    dispute.upheld = upheld
    dispute.settlement = settlement
    # The status moves with the ruling's fields in one UPDATE (the check constraint wants both).
    from_status = dispute.status
    updated = Dispute.objects.filter(pk=dispute.pk, status=from_status).update(
        status=S.RULED,
        ruling_outcome=outcome,
        seller_share_bps=share,
        rationale=rationale,
        ruled_by=actor,
        ruled_at=now,
        closed_at=now,
        upheld=upheld,
        settlement=settlement,
        updated_at=now,
    )
    if updated != 1:  # pragma: no cover - the row lock makes this impossible
        raise Conflict("The dispute changed meanwhile; reload and try again.", code="stale")
    dispute.status = S.RULED
    DisputeStatusChange.objects.create(
        dispute=dispute,
        from_status=from_status,
        to_status=S.RULED,
        actor=actor,
        reason=f"ruled {outcome} ({share} bps to the seller): {'upheld' if upheld else 'rejected'}",
    )
    trust_services.trust_dispute_ruled(engagement_id=engagement_id, upheld=upheld, at=now)
    _evidence(
        "dispute.ruled",
        dispute,
        outcome=outcome,
        seller_share_bps=share,
        rationale=rationale,
        ruled_by=actor.username,
        upheld=upheld,
        settlement=settlement.pk,
        opened_by=dispute.opened_by_party,
    )
    _notify_on_commit(dispute.pk, "ruled")
    return dispute


@transaction.atomic(durable=True)
def escrow_rule_held(
    *, escrow_id: int, actor: User, outcome: str, seller_share_bps: int | None, rationale: str
) -> Settlement:
    """Staff settle an escrow held for them (an inconclusive evaluation), with a rationale."""
    _staff(actor)
    share = ruling_share(outcome, seller_share_bps)
    rationale = _text(rationale, "rationale", limit=MAX_RATIONALE, required=True)
    engagement_id = Escrow.objects.values_list("engagement_id", flat=True).get(pk=escrow_id)
    engagement_lock(engagement_id)
    escrow = escrow_lock(escrow_id)
    if escrow.status == Escrow.Status.SETTLED:
        raise Conflict("This escrow has already been settled.", code="already_settled")
    if escrow.status != Escrow.Status.HELD:
        raise Conflict(f"This escrow is {escrow.status}, not held for an admin.", code="not_held")
    if Dispute.objects.filter(escrow=escrow, status__in=Dispute.ACTIVE).exists():
        raise Conflict("A dispute is open on this escrow; rule it from the dispute.", code="dispute_open")
    hold_reason = escrow.hold_reason
    settlement = escrow_services._settle(
        escrow,
        escrow_money.amounts_for_share(escrow_services.settleable_minor(escrow), share, escrow.fee_bps),
        reason=Settlement.Reason.ADMIN,
        actor=actor,
        note=rationale,
    )
    evidence_append(
        kind="escrow.ruled",
        subject=f"engagement:{engagement_id}",
        payload={
            "escrow": escrow.pk,
            "hold_reason": hold_reason,
            "outcome": outcome,
            "seller_share_bps": share,
            "rationale": rationale,
            "ruled_by": actor.username,
            "settlement": settlement.pk,
        },
    )
    return settlement


# --- notices ----------------------------------------------------------------------------------------

_SUBJECTS = {
    "opened": "Dispute #{id} opened on engagement #{engagement}",
    "answered": "Dispute #{id} on engagement #{engagement} was answered",
    "ruled": "Dispute #{id} on engagement #{engagement} was ruled",
    "withdrawn": "Dispute #{id} on engagement #{engagement} was withdrawn",
}


def dispute_notify(*, dispute_id: int, event: str) -> int:
    """E-mail both parties about a dispute event (through Django's e-mail backend); returns messages sent."""
    dispute = (
        Dispute.objects.select_related("engagement__buyer", "engagement__listing__seller", "settlement")
        .filter(pk=dispute_id)
        .first()
    )
    if dispute is None or event not in _SUBJECTS:
        return 0
    engagement = dispute.engagement
    link = f"{settings.PACTUM_BASE_URL.rstrip('/')}/engagements/{engagement.pk}/#dispute"
    subject = "[Pactum] " + _SUBJECTS[event].format(id=dispute.pk, engagement=engagement.pk)
    lines = [
        f"{subject[len('[Pactum] ') :]}.",
        "",
        f"Opened by the {dispute.opened_by_party}: {dispute.reason}",
    ]
    if event == "opened":
        lines.append(f"The other side may answer until {dispute.answer_due_at:%Y-%m-%d %H:%M} UTC.")
    if event == "answered":
        lines.append(f"Answer: {dispute.answer[:2000]}")
    if event == "ruled":
        lines += [
            f"Ruling: {dispute.ruling_outcome} ({dispute.seller_share_bps} of 10000 basis points to the seller).",
            f"Rationale: {dispute.rationale}",
        ]
        if dispute.settlement is not None:
            s = dispute.settlement
            lines.append(
                f"Settlement: {s.seller_net_minor} to the seller after a {s.platform_fee_minor} fee, "
                f"{s.buyer_refund_minor} back to the buyer ({dispute.escrow.currency.upper()} minor units)."
            )
    lines += ["", f"The case: {link}"]
    body = "\n".join(lines)
    messages = [
        EmailMessage(subject, body, to=[user.email])
        for user in (engagement.buyer, engagement.listing.seller)
        if user.email
    ]
    if not messages:
        return 0
    with get_connection() as connection:
        return connection.send_messages(messages) or 0
