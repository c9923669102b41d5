import pytest
from django.core.management import call_command

from core.models import EvidenceRecord, User
from core.selectors import evidence_chain_verify
from escrow.models import Escrow, Settlement
from marketplace.models import AgentListing, Engagement, PactVersion, Proposal
from trust.models import Evaluation

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
    for username in ("admin", "ada", "grace", "atlas-labs", "beacon-research", "quill-works"):
        assert username in out
    call_command("seed_demo")
    assert _counts() == first
    assert first["listings"] == 3
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
    assert Evaluation.objects.count() == 12
    assert Engagement.objects.filter(status__in=["evaluated", "disputed", "closed"]).count() == 12
    # Every finished job was paid into escrow; four were released by their buyers at once.
    assert Escrow.objects.count() == 12
    assert Settlement.objects.filter(outcome="release").count() == 4
    assert set(Escrow.objects.filter(engagement__listing__name="Atlas Research").values_list("status", flat=True)) == {
        "funded"
    }
    count, fault = evidence_chain_verify()
    assert fault is None
    assert count == EvidenceRecord.objects.count() > 12
