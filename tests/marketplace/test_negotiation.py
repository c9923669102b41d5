import threading

import pytest
from django.db import DatabaseError, connection, transaction

from core.errors import Conflict, NotAllowed, ValidationFailed
from core.models import EvidenceRecord
from core.selectors import evidence_chain_verify
from marketplace import services
from marketplace.models import Engagement, ImmutableError, PactVersion, Proposal
from tests.marketplace.conftest import clauses, terms

pytestmark = pytest.mark.django_db


def test_creating_an_engagement_opens_proposal_one_from_the_template_by_the_buyer(engagement, pact, buyer):
    assert engagement.status == "negotiating"
    (proposal,) = engagement.proposals.all()
    assert proposal.number == 1
    assert proposal.author == buyer
    assert proposal.author_role == "buyer"
    assert proposal.content_hash == pact.content_hash
    assert proposal.clauses == pact.clauses
    assert list(engagement.status_changes.values_list("from_status", "to_status")) == [("", "negotiating")]


def test_the_seller_accepting_the_buyers_proposal_locks_a_pact_version(engagement, seller, pact):
    agreed = services.proposal_accept(engagement_id=engagement.pk, actor=seller)
    assert agreed.status == "agreed"
    version = agreed.pact_version
    assert version.kind == "locked"
    assert version.content_hash == pact.content_hash
    assert version.version == f"1.0.0+e{engagement.pk}.p1"
    proposal = Proposal.objects.get(engagement=engagement, number=1)
    assert proposal.accepted_by == seller
    record = EvidenceRecord.objects.get(kind="pact.locked")
    assert record.subject == f"engagement:{engagement.pk}"
    assert record.payload["hash"] == version.content_hash
    assert evidence_chain_verify()[1] is None


def test_posting_a_proposal_is_the_authors_acceptance_so_the_author_cannot_accept_it(engagement, buyer):
    with pytest.raises(Conflict, match="counts as your acceptance"):
        services.proposal_accept(engagement_id=engagement.pk, actor=buyer)


def test_a_counter_proposal_then_the_buyers_accept_locks_the_counter(engagement, seller, buyer):
    services.proposal_create(
        engagement_id=engagement.pk, actor=seller, clauses=clauses(), terms=terms(price_minor=7000), note="busy week"
    )
    agreed = services.proposal_accept(engagement_id=engagement.pk, actor=buyer, proposal_number=2)
    assert agreed.pact_version.terms["price_minor"] == 7000
    assert agreed.pact_version.version.endswith(".p2")


def test_accepting_a_superseded_proposal_is_a_conflict(engagement, seller, buyer):
    services.proposal_create(
        engagement_id=engagement.pk, actor=seller, clauses=clauses(), terms=terms(price_minor=7000)
    )
    services.proposal_create(engagement_id=engagement.pk, actor=buyer, clauses=clauses(), terms=terms(price_minor=6000))
    with pytest.raises(Conflict, match="superseded by proposal 3") as excinfo:
        services.proposal_accept(engagement_id=engagement.pk, actor=seller, proposal_number=2)
    assert excinfo.value.status_code == 409
    engagement.refresh_from_db()
    assert engagement.status == "negotiating"
    assert engagement.pact_version is None


@pytest.mark.parametrize("number", [0, 4, 99])
def test_accepting_a_proposal_that_does_not_exist_is_a_400(engagement, seller, buyer, number):
    services.proposal_create(
        engagement_id=engagement.pk, actor=seller, clauses=clauses(), terms=terms(price_minor=7000)
    )
    services.proposal_create(engagement_id=engagement.pk, actor=buyer, clauses=clauses(), terms=terms(price_minor=6000))
    with pytest.raises(ValidationFailed, match="no proposal") as excinfo:
        services.proposal_accept(engagement_id=engagement.pk, actor=seller, proposal_number=number)
    assert excinfo.value.status_code == 400
    engagement.refresh_from_db()
    assert engagement.status == "negotiating"


def test_outsiders_cannot_negotiate(engagement, other_buyer, other_seller):
    for outsider in (other_buyer, other_seller):
        with pytest.raises(NotAllowed):
            services.proposal_create(engagement_id=engagement.pk, actor=outsider, clauses=clauses(), terms=terms())
        with pytest.raises(NotAllowed):
            services.proposal_accept(engagement_id=engagement.pk, actor=outsider)
    assert engagement.proposals.count() == 1


def test_no_proposals_after_agreement(agreed, buyer):
    with pytest.raises(Conflict, match="Negotiation is over"):
        services.proposal_create(engagement_id=agreed.pk, actor=buyer, clauses=clauses(), terms=terms())


@pytest.mark.parametrize("state", ["engagement", "agreed"])
def test_either_party_may_cancel_before_funding(request, state, buyer, seller):
    target = request.getfixturevalue(state)
    for actor in (buyer, seller):
        fresh = Engagement.objects.get(pk=target.pk)
        if fresh.status == "cancelled":
            break
        cancelled = services.engagement_cancel(engagement_id=target.pk, actor=actor, reason="changed my mind")
        assert cancelled.status == "cancelled"
    assert Engagement.objects.get(pk=target.pk).status_changes.last().reason == "changed my mind"


def test_no_cancel_once_funded(active, buyer):
    with pytest.raises(Conflict, match="cannot be cancelled"):
        services.engagement_cancel(engagement_id=active.pk, actor=buyer)


def test_illegal_moves_are_conflicts_and_write_no_history(engagement):
    with pytest.raises(Conflict, match="negotiating cannot become active"):
        services.engagement_mark_active(engagement_id=engagement.pk)
    with pytest.raises(Conflict):
        services.engagement_mark_closed(engagement_id=engagement.pk)
    assert engagement.status_changes.count() == 1


def test_history_row_per_move(active):
    assert list(active.status_changes.values_list("from_status", "to_status")) == [
        ("", "negotiating"),
        ("negotiating", "agreed"),
        ("agreed", "active"),
    ]
    assert active.delivery_due_at is not None


def test_only_buyers_open_engagements(seller, listing, pact):
    with pytest.raises(NotAllowed):
        services.engagement_create(buyer=seller, listing=listing, template=pact.template, task="x")


def test_an_unpublished_agent_cannot_be_hired(buyer, listing, pact, seller):
    services.listing_update(listing=listing, actor=seller, status="draft")
    listing.refresh_from_db()
    with pytest.raises(Conflict):
        services.engagement_create(buyer=buyer, listing=listing, template=pact.template, task="x")


def test_empty_task_is_refused(buyer, listing, pact):
    with pytest.raises(ValidationFailed):
        services.engagement_create(buyer=buyer, listing=listing, template=pact.template, task="")
    assert not Engagement.objects.exists()


# --- immutability of pact versions --------------------------------------------------------


def test_a_locked_version_cannot_be_saved_again(agreed):
    version = agreed.pact_version
    version.terms = {**version.terms, "price_minor": 1}
    with pytest.raises(ImmutableError):
        version.save()
    with pytest.raises(ImmutableError):
        version.delete()


def test_the_database_refuses_to_edit_a_pact_version(agreed):
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        PactVersion.objects.filter(pk=agreed.pact_version_id).update(terms={"price_minor": 1})
    assert PactVersion.objects.get(pk=agreed.pact_version_id).terms["price_minor"] == 5000


def test_republishing_identical_content_creates_no_version_and_changes_bump_it(listing, seller, pact):
    again = services.pact_publish(
        listing=listing, actor=seller, name="Research pact", clauses=list(reversed(clauses())), terms=terms()
    )
    assert again.pk == pact.pk
    newer = services.pact_publish(
        listing=listing, actor=seller, name="Research pact", clauses=clauses(), terms=terms(price_minor=9000)
    )
    assert newer.version == "2.0.0"
    assert PactVersion.objects.get(pk=pact.pk).terms["price_minor"] == 5000


def test_only_the_owner_publishes_pacts(listing, other_seller, buyer):
    for actor in (other_seller, buyer):
        with pytest.raises(NotAllowed):
            services.pact_publish(listing=listing, actor=actor, name="p", clauses=clauses(), terms=terms())


def test_a_new_engagement_uses_the_templates_latest_version(buyer, listing, seller, pact):
    services.pact_publish(
        listing=listing, actor=seller, name="Research pact", clauses=clauses(), terms=terms(price_minor=9000)
    )
    engagement = services.engagement_create(buyer=buyer, listing=listing, template=pact.template, task="x")
    assert engagement.proposals.get().terms["price_minor"] == 9000


# --- concurrency ------------------------------------------------------------------------


def _race(*calls):
    """Run the calls at the same moment in threads; return their results or exceptions."""
    barrier = threading.Barrier(len(calls))
    results: list[object] = [None] * len(calls)

    def run(i, call):
        try:
            barrier.wait()
            results[i] = call()
        except Exception as exc:  # collected for the assertions
            results[i] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate(calls)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


@pytest.mark.django_db(transaction=True)
def test_concurrent_accepts_by_both_parties_lock_exactly_once(buyer, seller, listing, pact):
    engagement = services.engagement_create(buyer=buyer, listing=listing, template=pact.template, task="x")
    # The seller counters; then both parties hit accept at once, twice each.
    services.proposal_create(
        engagement_id=engagement.pk, actor=seller, clauses=clauses(), terms=terms(price_minor=6000)
    )
    results = _race(
        lambda: services.proposal_accept(engagement_id=engagement.pk, actor=buyer),
        lambda: services.proposal_accept(engagement_id=engagement.pk, actor=buyer),
        lambda: services.proposal_accept(engagement_id=engagement.pk, actor=seller),
        lambda: services.proposal_accept(engagement_id=engagement.pk, actor=seller),
    )
    locked = [r for r in results if isinstance(r, Engagement)]
    refused = [r for r in results if isinstance(r, Conflict)]
    assert len(locked) == 1, results
    assert len(refused) == 3, results
    assert PactVersion.objects.filter(kind="locked").count() == 1
    assert EvidenceRecord.objects.filter(kind="pact.locked").count() == 1
    assert Engagement.objects.get(pk=engagement.pk).status_changes.filter(to_status="agreed").count() == 1


@pytest.mark.django_db(transaction=True)
def test_concurrent_counter_proposals_get_distinct_numbers(buyer, seller, listing, pact):
    engagement = services.engagement_create(buyer=buyer, listing=listing, template=pact.template, task="x")
    results = _race(
        lambda: services.proposal_create(
            engagement_id=engagement.pk, actor=seller, clauses=clauses(), terms=terms(price_minor=6000)
        ),
        lambda: services.proposal_create(
            engagement_id=engagement.pk, actor=buyer, clauses=clauses(), terms=terms(price_minor=5500)
        ),
    )
    assert all(isinstance(r, Proposal) for r in results), results
    assert sorted(engagement.proposals.values_list("number", flat=True)) == [1, 2, 3]


def test_the_locked_version_is_named_after_the_version_negotiated_from(engagement, seller, listing):
    # The seller publishes 2.0.0 while this negotiation (from 1.0.0) is under way.
    services.pact_publish(
        listing=listing, actor=seller, name="Research pact", clauses=clauses(), terms=terms(price_minor=1)
    )
    agreed = services.proposal_accept(engagement_id=engagement.pk, actor=seller)
    assert agreed.pact_version.version == f"1.0.0+e{engagement.pk}.p1"


def test_re_posting_the_other_sides_proposal_is_refused_as_an_accept_in_disguise(engagement, seller):
    proposal = engagement.proposals.get()
    with pytest.raises(Conflict, match="accept it instead"):
        services.proposal_create(
            engagement_id=engagement.pk, actor=seller, clauses=proposal.clauses, terms=proposal.terms
        )


@pytest.mark.parametrize(
    ("changes", "fragment"),
    [
        ({"name": "n" * 121}, "name"),
        ({"name": "   "}, "name"),
        ({"description": "d" * 10_001}, "description"),
        ({"endpoint_url": "ftp://agent.example.com"}, "endpoint_url"),
        ({"endpoint_url": "not a url"}, "endpoint_url"),
        ({"categories": ["c" * 51]}, "categories"),
        ({"price_minor": True}, "price_minor"),
    ],
)
def test_services_own_field_rules_for_every_caller(listing, seller, changes, fragment):
    with pytest.raises(ValidationFailed, match=fragment):
        services.listing_update(listing=listing, actor=seller, **changes)
    with pytest.raises(ValidationFailed, match=fragment):
        services.listing_create(seller=seller, **{"name": "x", "price_minor": 100, "currency": "usd", **changes})


@pytest.mark.parametrize("score", [float("inf"), float("nan"), True, "high"])
def test_benchmark_scores_must_be_finite_numbers(listing, seller, score):
    import datetime

    with pytest.raises(ValidationFailed, match="score"):
        services.benchmark_claim_create(
            listing=listing, actor=seller, benchmark="GAIA", score=score, measured_on=datetime.date(2026, 1, 1)
        )


def test_a_negotiation_is_capped(engagement, seller, buyer, monkeypatch):
    monkeypatch.setattr(services, "MAX_PROPOSALS", 3)
    services.proposal_create(engagement_id=engagement.pk, actor=seller, clauses=clauses(), terms=terms(price_minor=1))
    services.proposal_create(engagement_id=engagement.pk, actor=buyer, clauses=clauses(), terms=terms(price_minor=2))
    with pytest.raises(Conflict, match="reached 3 proposals"):
        services.proposal_create(
            engagement_id=engagement.pk, actor=seller, clauses=clauses(), terms=terms(price_minor=3)
        )
