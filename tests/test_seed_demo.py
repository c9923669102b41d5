import pytest
from django.core.management import call_command

from core.models import EvidenceRecord, User
from core.selectors import evidence_chain_verify
from escrow.models import Escrow, Settlement
from marketplace.models import AgentListing, Engagement, PactVersion, Proposal
from marketplace.selectors import listing_list
from trust.models import EscalationEvent, Evaluation, TrustHistoryPoint, TrustPolicy, TrustRecord
from trust.selectors import listings_ranked

pytestmark = pytest.mark.django_db


def _counts() -> dict[str, int]:
    return {
        "users": User.objects.count(),
        "listings": AgentListing.objects.count(),
        "versions": PactVersion.objects.count(),
        "engagements": Engagement.objects.count(),
        "proposals": Proposal.objects.count(),
        "evidence": EvidenceRecord.objects.count(),
    }


def test_seed_demo_is_idempotent_and_tells_the_logins(capsys):
    call_command("seed_demo")
    first = _counts()
    out = capsys.readouterr().out
    for username in ("admin", "ada", "grace", "atlas-labs", "beacon-research", "quill-works", "sage-labs", "nova-ai"):
        assert username in out
    call_command("seed_demo")
    assert _counts() == first
    assert first["listings"] == 5
    assert User.objects.get(username="admin").is_staff


def test_seed_demo_builds_the_marketplace_story():
    call_command("seed_demo")
    atlas = AgentListing.objects.get(name="Atlas Research")
    beacon = AgentListing.objects.get(name="Beacon Research")
    # Atlas claims the higher benchmark score; the pacts are the same.
    assert atlas.benchmark_claims.get().score > beacon.benchmark_claims.get().score
    assert atlas.endpoint_url.endswith("/demo-agents/atlas/")
    negotiating = Engagement.objects.get(status="negotiating")
    assert negotiating.proposals.count() == 2
    assert Engagement.objects.filter(status="agreed").count() == 1
    # Finished jobs judged by the real pipeline: Beacon keeps its pact, Atlas slips.
    outcomes = {
        name: set(Evaluation.objects.filter(engagement__listing__name=name).values_list("outcome", flat=True))
        for name in ("Beacon Research", "Atlas Research")
    }
    assert outcomes == {"Beacon Research": {"passed"}, "Atlas Research": {"failed"}}
    assert Evaluation.objects.count() == 22  # 12 + Sage 9 + Nova 1
    assert Engagement.objects.filter(status__in=["evaluated", "disputed", "closed"]).count() == 22
    # Every finished job was paid into escrow; four (and Sage's five) were released by their buyers.
    assert Escrow.objects.count() == 22
    assert Settlement.objects.filter(outcome="release").count() == 4 + 5  # and Sage's recent five
    assert set(Escrow.objects.filter(engagement__listing__name="Atlas Research").values_list("status", flat=True)) == {
        "funded"
    }
    count, fault = evidence_chain_verify()
    assert fault is None
    assert count == EvidenceRecord.objects.count() > 12


def test_seed_demo_tells_the_trust_story():
    call_command("seed_demo")
    ranked = [listing.name for listing in listings_ranked(listing_list(category="research"), category="research")]
    # Beacon above Atlas despite Atlas's higher benchmark claim; Sage recovering between them;
    # Nova too new to rank.
    assert ranked == ["Beacon Research", "Sage Research", "Atlas Research", "Nova Research"]
    records = {r.listing.name: r for r in TrustRecord.objects.filter(category="").select_related("listing")}
    assert records["Nova Research"].rated is False
    assert records["Nova Research"].evidence_count == 1
    assert records["Sage Research"].evidence_count == 9
    # Atlas is under escalations; Sage's escalations from its rough start resolved as it recovered.
    open_events = EscalationEvent.objects.filter(status="open").values_list("listing__name", flat=True)
    assert set(open_events) == {"Atlas Research"}
    assert set(EscalationEvent.objects.filter(listing__name="Sage Research").values_list("status", flat=True)) == {
        "resolved"
    }
    assert TrustPolicy.objects.count() == 4
    # Sage's history goes back months; its early failures are old.
    assert TrustHistoryPoint.objects.filter(listing__name="Sage Research").count() > 100
