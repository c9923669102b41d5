"""Disputes: who may open them and when, answers and their window, withdrawals, rulings
that move exactly the money they say (once), evidence files, notices."""

from __future__ import annotations

import datetime
import threading
from pathlib import Path

import pytest
from django.core import mail
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from core.errors import Conflict, NotAllowed, ValidationFailed
from core.models import EvidenceRecord
from core.selectors import evidence_chain_verify
from escrow import disputes, ledger
from escrow import services as escrow_services
from escrow.models import (
    Dispute,
    DisputeEvidenceFile,
    Escrow,
    EscrowTimer,
    LedgerEntry,
    LedgerTransaction,
    OutboxItem,
    Settlement,
)
from marketplace.models import Engagement
from tests.escrow.conftest import evaluated_engagement, funded_engagement
from tests.factories import BuyerFactory, UserFactory
from trust.models import Evaluation

pytestmark = pytest.mark.django_db

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
PDF = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<<>>\nendobj\n"
EXE = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff" + b"\x00" * 64


@pytest.fixture(autouse=True)
def media(settings, tmp_path: Path) -> Path:
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


@pytest.fixture
def staff():
    return UserFactory.create(role="", is_staff=True)


def open_dispute(engagement, *, by=None, reason="The answer cites nothing it claims.", **kwargs) -> Dispute:
    return disputes.dispute_open(
        engagement_id=engagement.pk, actor=by or engagement.buyer, reason=reason, evidence="See clause cites.", **kwargs
    )


def ledger_sums_to_zero() -> bool:
    from django.db.models import Sum

    return all(row["total"] == 0 for row in LedgerEntry.objects.values("currency").annotate(total=Sum("amount_minor")))


def stored_files(media: Path) -> list[Path]:
    return [p for p in media.rglob("*") if p.is_file()] if media.exists() else []


# --- opening --------------------------------------------------------------------------------------


def test_the_buyer_disputes_within_the_review_window_and_the_money_is_held():
    engagement, escrow, evaluation = evaluated_engagement(good=True)
    release = EscrowTimer.objects.get(escrow=escrow, action="release")
    dispute = open_dispute(engagement)
    escrow.refresh_from_db()
    release.refresh_from_db()
    engagement.refresh_from_db()
    assert (dispute.status, dispute.opened_by_party, dispute.evaluation_id) == ("open", "buyer", evaluation.pk)
    assert escrow.status == "held"
    assert escrow.hold_reason == disputes.hold_reason_for(dispute)
    assert (release.status, release.result) == ("cancelled", f"paused by dispute #{dispute.pk}")
    assert engagement.status == "disputed"
    window = datetime.timedelta(hours=engagement.pact_version.terms["dispute_response_window_hours"])
    assert abs(dispute.answer_due_at - (timezone.now() + window)) < datetime.timedelta(minutes=1)
    assert list(dispute.status_changes.values_list("to_status", flat=True)) == ["open"]
    record = EvidenceRecord.objects.get(kind="dispute.opened")
    assert record.subject == f"engagement:{engagement.pk}"
    assert record.payload["reason"] == "The answer cites nothing it claims."
    # Nothing fires while the dispute holds the money.
    escrow_services.escrow_fire_due_timers(now=timezone.now() + datetime.timedelta(days=30))
    assert not Settlement.objects.exists()


def test_too_late_to_dispute_once_the_review_window_closed():
    engagement, escrow, evaluation = evaluated_engagement(good=True, review_hours=24)
    closes = disputes.dispute_window_closes_at(escrow, evaluation)
    with pytest.raises(Conflict, match="too late") as exc:
        open_dispute(engagement, now=closes + datetime.timedelta(seconds=1))
    assert exc.value.code == "window_closed"
    assert not Dispute.objects.exists()
    escrow.refresh_from_db()
    assert escrow.status == "funded"
    # One second before it closes is still in time.
    assert open_dispute(engagement, now=closes - datetime.timedelta(seconds=1)).status == "open"


def test_too_late_to_dispute_once_the_money_moved():
    engagement, _escrow, _ = evaluated_engagement(good=True)
    escrow_services.escrow_release(engagement_id=engagement.pk, actor=engagement.buyer)
    with pytest.raises(Conflict) as exc:
        open_dispute(engagement)
    assert exc.value.code == "too_late"


def test_no_dispute_before_the_evaluation_finished():
    engagement, _escrow = funded_engagement()
    with pytest.raises(Conflict) as exc:
        open_dispute(engagement)
    assert exc.value.code == "not_evaluated"


def test_the_seller_disputes_only_a_failed_evaluation():
    engagement, _, _ = evaluated_engagement(good=True)
    with pytest.raises(NotAllowed, match="only a failed"):
        open_dispute(engagement, by=engagement.listing.seller)
    failed, escrow, evaluation = evaluated_engagement(good=False)
    assert evaluation.outcome == "failed"
    dispute = open_dispute(failed, by=failed.listing.seller, reason="The scope judge misread the action log.")
    assert dispute.opened_by_party == "seller"
    escrow.refresh_from_db()
    assert escrow.status == "held"


def test_strangers_cannot_dispute_and_one_dispute_at_a_time():
    engagement, escrow, evaluation = evaluated_engagement(good=True)
    with pytest.raises(NotAllowed):
        open_dispute(engagement, by=BuyerFactory.create())
    dispute = open_dispute(engagement)
    with pytest.raises(Conflict) as exc:
        open_dispute(engagement)
    assert exc.value.code == "dispute_open"
    # The database refuses a second active dispute too.
    with pytest.raises(IntegrityError), transaction.atomic():
        Dispute.objects.create(
            engagement=engagement,
            escrow=escrow,
            evaluation=evaluation,
            evaluation_outcome="passed",
            opened_by=engagement.buyer,
            opened_by_party="buyer",
            reason="again",
            answer_due_at=dispute.answer_due_at,
        )


@pytest.mark.parametrize("reason", ["", "   ", None, 42, "x" * 501])
def test_a_dispute_needs_a_reason(reason):
    engagement, _escrow, _ = evaluated_engagement(good=True)
    with pytest.raises(ValidationFailed, match="reason"):
        disputes.dispute_open(engagement_id=engagement.pk, actor=engagement.buyer, reason=reason)
    assert not Dispute.objects.exists()


def test_an_inconclusive_evaluation_is_already_with_an_admin():
    engagement, _escrow, _ = evaluated_engagement(good=True)
    escrow_services.escrow_decide(engagement_id=engagement.pk, outcome="inconclusive")
    with pytest.raises(Conflict) as exc:
        open_dispute(engagement)
    assert exc.value.code == "held_for_admin"


# --- answering and the answer window ------------------------------------------------------------


def test_the_other_side_answers_in_time():
    engagement, _, _ = evaluated_engagement(good=True)
    dispute = open_dispute(engagement)
    with pytest.raises(NotAllowed):
        disputes.dispute_answer(dispute_id=dispute.pk, actor=engagement.buyer, answer="me again")
    answered = disputes.dispute_answer(
        dispute_id=dispute.pk, actor=engagement.listing.seller, answer="Every claim carries a source."
    )
    assert (answered.status, answered.answer) == ("answered", "Every claim carries a source.")
    assert EvidenceRecord.objects.filter(kind="dispute.answered").count() == 1
    with pytest.raises(Conflict) as exc:
        disputes.dispute_answer(dispute_id=dispute.pk, actor=engagement.listing.seller, answer="again")
    assert exc.value.code == "not_open"


def test_a_lapsed_answer_window_is_recorded_and_the_case_goes_to_review():
    engagement, _, _ = evaluated_engagement(good=True)
    dispute = open_dispute(engagement)
    due = dispute.answer_due_at
    assert disputes.dispute_lapse_due(now=due - datetime.timedelta(seconds=1)) == 0
    with pytest.raises(Conflict) as exc:
        disputes.dispute_answer(
            dispute_id=dispute.pk,
            actor=engagement.listing.seller,
            answer="late",
            now=due + datetime.timedelta(seconds=1),
        )
    assert exc.value.code == "answer_window_closed"
    assert disputes.dispute_lapse_due(now=due + datetime.timedelta(seconds=1)) == 1
    dispute.refresh_from_db()
    assert dispute.status == "under_review"
    assert dispute.answer_lapsed_at == due + datetime.timedelta(seconds=1)
    last = dispute.status_changes.last()
    assert (last.from_status, last.to_status) == ("open", "under_review")
    assert "did not answer" in last.reason
    assert EvidenceRecord.objects.filter(kind="dispute.answer_lapsed").count() == 1
    # Recorded once.
    assert disputes.dispute_lapse_due(now=due + datetime.timedelta(days=1)) == 0


# --- withdrawing --------------------------------------------------------------------------------------


def test_withdrawing_returns_the_money_to_the_evaluations_decision():
    engagement, escrow, _ = evaluated_engagement(good=True)
    release = EscrowTimer.objects.get(escrow=escrow, action="release")
    due = release.due_at
    dispute = open_dispute(engagement)
    with pytest.raises(NotAllowed):
        disputes.dispute_withdraw(dispute_id=dispute.pk, actor=engagement.listing.seller)
    disputes.dispute_withdraw(dispute_id=dispute.pk, actor=engagement.buyer, note="Resolved between us.")
    dispute.refresh_from_db()
    escrow.refresh_from_db()
    engagement.refresh_from_db()
    release.refresh_from_db()
    assert dispute.status == "withdrawn"
    assert (escrow.status, escrow.hold_reason) == ("funded", "")
    assert engagement.status == "evaluated"
    assert (release.status, release.due_at) == ("pending", due)
    with pytest.raises(Conflict):
        disputes.dispute_withdraw(dispute_id=dispute.pk, actor=engagement.buyer)
    # The review window runs out as it would have: the money is released.
    escrow_services.escrow_fire_due_timers(now=due + datetime.timedelta(seconds=1))
    settlement = Settlement.objects.get(escrow=escrow)
    assert (settlement.outcome, settlement.reason) == ("release", "review_window_lapsed")
    # A withdrawn dispute is not ruled: no verdict for trust, and a new dispute could have been opened.
    assert dispute.upheld is None


def test_a_new_dispute_may_follow_a_withdrawn_one():
    engagement, _, _ = evaluated_engagement(good=True)
    first = open_dispute(engagement)
    disputes.dispute_withdraw(dispute_id=first.pk, actor=engagement.buyer)
    assert open_dispute(engagement).pk != first.pk


# --- re-evaluation ---------------------------------------------------------------------------------


def test_staff_ask_for_a_re_evaluation_and_its_outcome_waits_for_the_ruling(staff):
    engagement, escrow, evaluation = evaluated_engagement(good=True)
    dispute = open_dispute(engagement)
    with pytest.raises(NotAllowed):
        disputes.dispute_request_reevaluation(dispute_id=dispute.pk, actor=engagement.buyer)
    second = disputes.dispute_request_reevaluation(dispute_id=dispute.pk, actor=staff)
    assert second.round == 2
    assert second.pk != evaluation.pk
    dispute.refresh_from_db()
    assert dispute.status == "under_review"
    with pytest.raises(Conflict):  # round 2 is still being judged
        disputes.dispute_request_reevaluation(dispute_id=dispute.pk, actor=staff)
    # The finalize signal of round 2 reaches escrow: recorded, nothing moves.
    disputes.evaluation_decided(engagement_id=engagement.pk, outcome="failed")
    escrow.refresh_from_db()
    assert (escrow.status, escrow.evaluation_outcome) == ("held", "failed")
    assert dispute.status_changes.last().reason == "re-evaluation finished: failed"
    assert not EscrowTimer.objects.filter(escrow=escrow, status="pending").exists()
    assert list(Evaluation.objects.filter(engagement=engagement).values_list("round", flat=True).order_by("round")) == [
        1,
        2,
    ]
    # Withdrawn after the outcome changed: the escrow decides on the new outcome.
    disputes.dispute_withdraw(dispute_id=dispute.pk, actor=engagement.buyer)
    escrow.refresh_from_db()
    assert escrow.status == "funded"
    assert EscrowTimer.objects.get(escrow=escrow, status="pending").action == "settle_failed"


# --- rulings -----------------------------------------------------------------------------------------

RULINGS = [
    # outcome, bps given, seller gross, fee, seller net, buyer refund (5000 at a 10% fee)
    ("release", None, 5000, 500, 4500, 0),
    ("release", 10_000, 5000, 500, 4500, 0),
    ("refund", None, 0, 0, 0, 5000),
    ("refund", 0, 0, 0, 0, 5000),
    ("split", 0, 0, 0, 0, 5000),
    ("split", 10_000, 5000, 500, 4500, 0),
    ("split", 5000, 2500, 250, 2250, 2500),
    ("split", 2500, 1250, 125, 1125, 3750),
    ("split", 3333, 1666, 166, 1500, 3334),
    ("split", 1, 0, 0, 0, 5000),
    ("split", 9999, 4999, 499, 4500, 1),
]


@pytest.mark.parametrize(("outcome", "bps", "gross", "fee", "net", "refund"), RULINGS)
def test_a_ruling_moves_exactly_the_money_it_says(staff, outcome, bps, gross, fee, net, refund):
    engagement, escrow, _ = evaluated_engagement(good=True, price_minor=5000, fee_bps=1000)
    dispute = open_dispute(engagement)
    ruled = disputes.dispute_rule(
        dispute_id=dispute.pk, actor=staff, outcome=outcome, seller_share_bps=bps, rationale="Clause cites failed."
    )
    settlement = Settlement.objects.get(escrow=escrow)
    assert (settlement.seller_gross_minor, settlement.platform_fee_minor) == (gross, fee)
    assert (settlement.seller_net_minor, settlement.buyer_refund_minor) == (net, refund)
    assert settlement.reason == "dispute_ruling"
    assert ruled.settlement_id == settlement.pk
    assert ruled.status == "ruled"
    # One ledger transaction for the settlement; each account holds exactly its part.
    txn = LedgerTransaction.objects.get(escrow=escrow, kind="settlement")
    assert settlement.transaction_id == txn.pk
    assert ledger.escrow_holding_balance(escrow) == 0
    legs = {e.account.kind: e.amount_minor for e in txn.entries.select_related("account")}
    assert legs.get("seller_payable", 0) == net
    assert legs.get("platform_fees", 0) == fee
    assert legs.get("buyer_refund", 0) == refund
    assert legs["escrow_holding"] == -5000
    assert ledger_sums_to_zero()
    # The provider is asked (through the outbox) for exactly the payout and refund.
    assert sorted(OutboxItem.objects.filter(settlement=settlement).values_list("kind", "amount_minor")) == sorted(
        [(k, a) for k, a in (("payout", net), ("refund", refund)) if a]
    )
    engagement.refresh_from_db()
    escrow.refresh_from_db()
    assert (engagement.status, escrow.status, escrow.hold_reason) == ("closed", "settled", "")
    record = EvidenceRecord.objects.get(kind="dispute.ruled")
    assert record.payload["rationale"] == "Clause cites failed."
    assert record.payload["seller_share_bps"] == (bps if bps is not None else (10_000 if outcome == "release" else 0))
    assert evidence_chain_verify()[1] is None


def test_ruling_twice_is_a_conflict_and_moves_nothing_more(staff):
    engagement, escrow, _ = evaluated_engagement(good=True)
    dispute = open_dispute(engagement)
    disputes.dispute_rule(dispute_id=dispute.pk, actor=staff, outcome="refund", seller_share_bps=0, rationale="No.")
    entries = LedgerEntry.objects.count()
    with pytest.raises(Conflict) as exc:
        disputes.dispute_rule(
            dispute_id=dispute.pk, actor=staff, outcome="release", seller_share_bps=None, rationale="Yes."
        )
    assert exc.value.code == "already_ruled"
    assert LedgerEntry.objects.count() == entries
    assert Settlement.objects.get(escrow=escrow).outcome == "refund"


@pytest.mark.parametrize(
    ("outcome", "bps", "rationale", "message"),
    [
        ("split", 10_001, "r", "seller_share_bps"),
        ("split", -1, "r", "seller_share_bps"),
        ("split", "5000", "r", "seller_share_bps"),
        ("split", True, "r", "seller_share_bps"),
        ("split", 2.5, "r", "seller_share_bps"),
        ("split", None, "r", "seller_share_bps"),
        ("release", 5000, "r", "seller_share_bps"),
        ("refund", 1, "r", "seller_share_bps"),
        ("keep", 0, "r", "outcome"),
        ("split", 5000, "", "rationale"),
        ("split", 5000, "   \n", "rationale"),
        ("split", 5000, None, "rationale"),
    ],
)
def test_bad_rulings_are_refused_and_move_nothing(staff, outcome, bps, rationale, message):
    engagement, _escrow, _ = evaluated_engagement(good=True)
    dispute = open_dispute(engagement)
    entries = LedgerEntry.objects.count()
    with pytest.raises(ValidationFailed, match=message):
        disputes.dispute_rule(
            dispute_id=dispute.pk, actor=staff, outcome=outcome, seller_share_bps=bps, rationale=rationale
        )
    assert LedgerEntry.objects.count() == entries
    assert not Settlement.objects.exists()
    dispute.refresh_from_db()
    assert dispute.status == "open"


def test_only_staff_rule():
    engagement, _, _ = evaluated_engagement(good=True)
    dispute = open_dispute(engagement)
    for user in (engagement.buyer, engagement.listing.seller, UserFactory.create(role="", is_staff=False)):
        with pytest.raises(NotAllowed):
            disputes.dispute_rule(
                dispute_id=dispute.pk, actor=user, outcome="refund", seller_share_bps=0, rationale="x"
            )
    assert not Settlement.objects.exists()


@pytest.mark.parametrize(
    ("party", "ruled", "default", "upheld"),
    [
        ("buyer", 5000, 5000, False),  # a passed job released in full anyway
        ("buyer", 4999, 5000, True),
        ("buyer", 0, 5000, True),
        ("buyer", 0, 0, False),  # a failed job refunded in full anyway: nothing was won
        ("seller", 0, 0, False),
        ("seller", 1, 0, True),
        ("seller", 1500, 3000, False),  # a pro-rata job that would have paid more
        ("seller", 3001, 3000, True),
    ],
)
def test_upheld_means_the_ruling_moved_money_the_openers_way(party, ruled, default, upheld):
    assert (
        disputes.dispute_upheld(opened_by_party=party, ruled_seller_gross=ruled, default_seller_gross=default) is upheld
    )


def test_the_ruling_records_whether_the_dispute_was_upheld(staff):
    engagement, _, _ = evaluated_engagement(good=False)
    dispute = open_dispute(engagement, by=engagement.listing.seller)
    ruled = disputes.dispute_rule(
        dispute_id=dispute.pk, actor=staff, outcome="split", seller_share_bps=4000, rationale="Partly right."
    )
    assert ruled.upheld is True
    assert "upheld" in ruled.status_changes.last().reason


@pytest.mark.django_db(transaction=True)
def test_two_rulings_sent_at_once_settle_exactly_once():
    engagement, escrow, _ = evaluated_engagement(good=True)
    staff = UserFactory.create(role="", is_staff=True)
    dispute = open_dispute(engagement)
    barrier = threading.Barrier(2)
    results: list[str] = []
    lock = threading.Lock()

    def rule(outcome: str, bps: int) -> None:
        try:
            barrier.wait()
            disputes.dispute_rule(
                dispute_id=dispute.pk, actor=staff, outcome=outcome, seller_share_bps=bps, rationale="at once"
            )
            result = "ruled"
        except Conflict as exc:
            result = f"conflict:{exc.code}"
        except Exception as exc:  # surfaced by the assertion below
            result = f"error: {type(exc).__name__}: {exc}"
        finally:
            connection.close()
        with lock:
            results.append(result)

    threads = [threading.Thread(target=rule, args=args) for args in (("split", 5000), ("split", 5000))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == ["conflict:already_ruled", "ruled"], results
    assert Settlement.objects.filter(escrow=escrow).count() == 1
    assert LedgerTransaction.objects.filter(escrow=escrow, kind="settlement").count() == 1
    assert ledger.escrow_holding_balance(escrow) == 0
    assert ledger_sums_to_zero()


# --- inconclusive evaluations: ruled by staff -----------------------------------------------------


def test_staff_rule_an_escrow_held_for_an_inconclusive_evaluation(staff):
    engagement, escrow, _ = evaluated_engagement(good=True)
    escrow_services.escrow_decide(engagement_id=engagement.pk, outcome="inconclusive")
    escrow.refresh_from_db()
    assert escrow.status == "held"
    with pytest.raises(ValidationFailed, match="rationale"):
        disputes.escrow_rule_held(
            escrow_id=escrow.pk, actor=staff, outcome="split", seller_share_bps=6000, rationale=""
        )
    with pytest.raises(NotAllowed):
        disputes.escrow_rule_held(
            escrow_id=escrow.pk, actor=engagement.buyer, outcome="refund", seller_share_bps=0, rationale="mine"
        )
    settlement = disputes.escrow_rule_held(
        escrow_id=escrow.pk, actor=staff, outcome="split", seller_share_bps=6000, rationale="Rubric split the jury."
    )
    assert (settlement.seller_gross_minor, settlement.buyer_refund_minor, settlement.reason) == (3000, 2000, "admin")
    assert EvidenceRecord.objects.get(kind="escrow.ruled").payload["rationale"] == "Rubric split the jury."
    with pytest.raises(Conflict) as exc:
        disputes.escrow_rule_held(escrow_id=escrow.pk, actor=staff, outcome="refund", seller_share_bps=0, rationale="x")
    assert exc.value.code == "already_settled"
    assert Engagement.objects.get(pk=engagement.pk).status == "closed"


def test_a_held_escrow_can_be_re_evaluated_by_staff(staff):
    engagement, escrow, _ = evaluated_engagement(good=True)
    escrow_services.escrow_decide(engagement_id=engagement.pk, outcome="inconclusive")
    evaluation = disputes.escrow_request_reevaluation(escrow_id=escrow.pk, actor=staff)
    assert evaluation.round == 2
    # Its finalize decides the money as usual (no dispute holds it).
    disputes.evaluation_decided(engagement_id=engagement.pk, outcome="passed")
    escrow.refresh_from_db()
    assert escrow.status == "funded"
    assert EscrowTimer.objects.get(escrow=escrow, status="pending").action == "release"


# --- evidence files -----------------------------------------------------------------------------------


def test_evidence_files_are_stored_under_random_names(media):
    engagement, _, _ = evaluated_engagement(good=True)
    dispute = open_dispute(
        engagement,
        files=[
            SimpleUploadedFile("screenshot.png", PNG, content_type="image/png"),
            SimpleUploadedFile("../../etc/notes.txt", "Plain words, ünïcode too.\n".encode(), content_type="x/y"),
        ],
    )
    files = list(DisputeEvidenceFile.objects.filter(dispute=dispute).order_by("id"))
    assert [(f.original_name, f.content_type, f.party) for f in files] == [
        ("screenshot.png", "image/png", "buyer"),
        ("notes.txt", "text/plain", "buyer"),
    ]
    for f in files:
        path = Path(f.file.path)
        assert path.is_file()
        assert path.is_relative_to(media)
        assert f.original_name not in str(f.file.name)
    assert EvidenceRecord.objects.get(kind="dispute.opened").payload["files"][0]["sha256"] == files[0].sha256


@pytest.mark.parametrize(
    ("name", "content", "error", "code"),
    [
        ("photo.png", PDF, disputes.FileRefused, "disguised_file"),  # a PDF named .png
        ("invoice.pdf", EXE, disputes.FileRefused, "unsupported_file"),  # a program named .pdf
        ("run.exe", EXE, disputes.FileRefused, "unsupported_file"),
        ("notes.txt", b"text\x00with a NUL", disputes.FileRefused, "unsupported_file"),
        ("page.html", b"<html><script>alert(1)</script></html>", disputes.FileRefused, "disguised_file"),
        ("empty.txt", b"", disputes.FileRefused, "empty_file"),
    ],
)
def test_disguised_or_unknown_files_are_refused_and_nothing_is_kept(media, name, content, error, code):
    engagement, escrow, _ = evaluated_engagement(good=True)
    with pytest.raises(error) as exc:
        open_dispute(engagement, files=[SimpleUploadedFile(name, content, content_type="application/pdf")])
    assert exc.value.code == code
    assert not Dispute.objects.exists()
    assert stored_files(media) == []
    escrow.refresh_from_db()
    assert escrow.status == "funded"


def test_an_oversized_file_is_refused(settings, media):
    settings.DISPUTE_FILE_MAX_BYTES = 1000
    engagement, _, _ = evaluated_engagement(good=True)
    with pytest.raises(disputes.FileTooLarge) as exc:
        open_dispute(engagement, files=[SimpleUploadedFile("big.png", PNG + b"\x00" * 1000)])
    assert exc.value.status_code == 413
    assert not Dispute.objects.exists()
    assert stored_files(media) == []


# --- notices ------------------------------------------------------------------------------------------


def test_both_parties_are_emailed_when_a_dispute_opens_is_answered_and_is_ruled(staff):
    engagement, _, _ = evaluated_engagement(good=True)
    dispute = open_dispute(engagement)
    disputes.dispute_answer(dispute_id=dispute.pk, actor=engagement.listing.seller, answer="It does cite.")
    disputes.dispute_rule(
        dispute_id=dispute.pk, actor=staff, outcome="split", seller_share_bps=5000, rationale="Half the claims."
    )
    for event in ("opened", "answered", "ruled"):
        assert disputes.dispute_notify(dispute_id=dispute.pk, event=event) == 2
    assert len(mail.outbox) == 6
    recipients = {tuple(m.to) for m in mail.outbox}
    assert recipients == {(engagement.buyer.email,), (engagement.listing.seller.email,)}
    ruled = [m for m in mail.outbox if "was ruled" in m.subject]
    assert "Half the claims." in ruled[0].body
    assert "split (5000 of 10000" in ruled[0].body


def test_the_escrow_is_unchanged_when_the_opening_is_refused():
    engagement, escrow, _ = evaluated_engagement(good=True)
    before = Escrow.objects.values().get(pk=escrow.pk)
    with pytest.raises(NotAllowed):
        open_dispute(engagement, by=BuyerFactory.create())
    assert Escrow.objects.values().get(pk=escrow.pk) == before
