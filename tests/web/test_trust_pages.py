"""The trust pages: badges on the listing cards, an agent's trust page, the leaderboard.

Agents, pacts and jobs come from the real services; trust records come either from
the real judge pipeline or, where a test needs many agents or chosen figures, from
TrustRecord rows whose derived figures are computed by trust.metrics.derive.
"""

from __future__ import annotations

import datetime
import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from marketplace import services
from tests.factories import TrustPolicyFactory, UserFactory
from tests.trust.conftest import active_engagement, deliver
from tests.trust.test_pipeline import run_all
from tests.trust.test_trust_record import T0
from tests.trust.test_trust_record import history as judged_history
from tests.trust.test_trust_record import make_listing as trust_listing
from tests.web.conftest import client_for
from tests.web.helpers import make_listing
from trust import metrics, policies
from trust import services as trust_services
from trust.models import EscalationEvent, TrustHistoryPoint, TrustPolicy, TrustRecord
from trust.scoring import wilson_interval
from trust.selectors import MEASURED, window_text
from web.templatetags.trust_widgets import DASH, history_plot, interval_bar, per_100, verified_ago

pytestmark = pytest.mark.django_db


def record(listing, *, kept: float, broken: float, jobs: int, category: str = "", days_ago: float = 3, **counts):
    """A trust record with r = kept, s = broken (already decayed to now) over `jobs` judged jobs."""
    now = timezone.now()
    rec = TrustRecord(
        listing=listing,
        category=category,
        r=kept,
        s=broken,
        decayed_to=now,
        evidence_count=jobs,
        last_verified_at=now - datetime.timedelta(days=days_ago, hours=1),
        **counts,
    )
    metrics.derive(rec)
    rec.save()
    return rec


def history(listing, points: list[tuple[int, float, float, float]]):
    today = timezone.localdate()
    for days_ago, mean, lower, upper in points:
        TrustHistoryPoint.objects.create(
            listing=listing,
            day=today - datetime.timedelta(days=days_ago),
            compliance_mean=mean,
            compliance_lower=lower,
            compliance_upper=upper,
            confidence=0.5,
            evidence_count=10,
        )


def low_compliance_policy(owner, **fields) -> TrustPolicy:
    defaults = {
        "name": "Low compliance flag",
        "metric": "compliance_lower",
        "comparator": "lt",
        "threshold": 0.5,
        "action": "flag_listing",
        "min_evidence": 5,
        "owner": owner,
        "next_review_at": timezone.now() + datetime.timedelta(days=90),
    }
    return TrustPolicy.objects.create(**{**defaults, **fields})


def _card_names(response) -> list[str]:
    return re.findall(r'<h2><a href="/agents/[^"]+/">([^<]+)</a></h2>', response.content.decode())


def _leaderboard_rows(response) -> list[tuple[str, str]]:
    """(rank cell text, agent name) per leaderboard row."""
    html = response.content.decode()
    rows = re.findall(
        r'<td class="num rank">(.*?)</td>\s*<th scope="row">\s*<a href="/agents/[^"]+/trust/[^"]*">([^<]+)</a>',
        html,
        re.S,
    )
    return [(re.sub(r"<[^>]+>", "", rank).strip(), name) for rank, name in rows]


@pytest.fixture
def staff_owner():
    return UserFactory.create(username="policy-owner", role="", is_staff=True)


# --- listing cards -------------------------------------------------------------------------------


def test_listings_rank_by_the_compliance_lower_bound_not_the_mean_or_the_benchmark(seller, other_seller):
    # Atlas: the better benchmark claim and a higher mean on little evidence (a wide interval).
    atlas = make_listing(other_seller, name="Atlas", claim_score=91.0)
    record(atlas, kept=9.9, broken=0.1, jobs=10)
    # Beacon: a lower claim, a slightly lower mean, but much more evidence (a narrow interval).
    beacon = make_listing(seller, name="Beacon", claim_score=84.0)
    record(beacon, kept=44.0, broken=6.0, jobs=50)
    # A fresh agent, the newest listing: unrated, listed last.
    fresh = make_listing(seller, name="Fresh")
    record(fresh, kept=2.0, broken=0.0, jobs=2)
    atlas_record = TrustRecord.objects.get(listing=atlas)
    beacon_record = TrustRecord.objects.get(listing=beacon)
    assert atlas_record.compliance_mean > beacon_record.compliance_mean
    assert atlas_record.compliance_lower < beacon_record.compliance_lower

    response = client_for().get("/agents/")

    assert _card_names(response) == ["Beacon", "Atlas", "Fresh"]
    html = response.content.decode()
    assert '<option value="trust" selected>Most reliable (compliance lower bound)</option>' in html
    # The other orderings stay.
    assert _card_names(client_for().get("/agents/?sort=recent")) == ["Fresh", "Beacon", "Atlas"]


def test_a_card_shows_compliance_with_its_interval_confidence_evidence_and_freshness(seller):
    listing = make_listing(seller, name="Beacon", claim_score=84.0)
    rec = record(listing, kept=46.0, broken=4.0, jobs=50)

    html = client_for().get("/agents/").content.decode()

    mean, lower, upper = (f"{100 * v:.1f}%" for v in (rec.compliance_mean, rec.compliance_lower, rec.compliance_upper))
    assert f"<strong>{mean}</strong>" in html
    assert f"95% interval {lower}{DASH}{upper}" in html
    # The drawn interval carries its text equivalent.
    assert f'aria-label="Pact compliance: {mean} (95% interval {lower}{DASH}{upper})"' in html
    assert '<svg class="interval-bar"' in html
    assert f"Confidence {100 * rec.confidence:.1f}% · 50 judged jobs" in html
    assert "verified 3 days ago" in html
    # The benchmark claim stands beside, labelled as a claim, not blended in.
    assert "Seller's benchmark claim" in html
    assert "DeepResearch Bench <strong>84</strong>" in html
    assert 'href="/agents/beacon/trust/"' in html


def test_an_agent_below_the_evidence_minimum_is_shown_unrated_with_its_count(seller):
    listing = make_listing(seller, name="Fresh")
    record(listing, kept=2.0, broken=1.0, jobs=3)
    make_listing(seller, name="Never judged")

    html = client_for().get("/agents/").content.decode()

    assert html.count(">Unrated</span>") == 2
    assert "3 of 5 judged jobs" in html
    assert "0 of 5 judged jobs" in html
    assert "not verified yet" in html


def test_a_flagged_agent_carries_the_flag_with_the_policy_name(seller, staff_owner):
    listing = make_listing(seller, name="Slipping")
    record(listing, kept=3.0, broken=5.0, jobs=8)
    low_compliance_policy(staff_owner)
    [event] = policies.policies_apply(listing_id=listing.pk)
    assert event.status == EscalationEvent.Status.OPEN

    html = client_for().get("/agents/").content.decode()

    assert '<span class="badge badge-bad" title="Low compliance flag">Flagged' in html


def test_cards_show_the_record_of_the_category_browsed(seller):
    listing = make_listing(seller, name="Beacon", categories=["research", "writing"], claim_score=84.0)
    record(listing, kept=40.0, broken=10.0, jobs=50)
    record(listing, kept=9.0, broken=1.0, jobs=10, category="research")

    html = client_for().get("/agents/?category=research").content.decode()

    assert "Pact compliance in research" in html
    assert "10 judged jobs" in html
    assert "Fit for research:" in html
    assert 'href="/agents/beacon/trust/?category=research"' in html


def test_the_index_runs_the_same_queries_for_one_and_a_hundred_agents(seller, staff_owner):
    low_compliance_policy(staff_owner)
    first = make_listing(seller, name="Agent 000", claim_score=50.0)
    record(first, kept=3.0, broken=5.0, jobs=8)
    policies.policies_apply(listing_id=first.pk)
    client = client_for()
    with CaptureQueriesContext(connection) as one:
        response = client.get("/agents/")
    assert len(_card_names(response)) == 1
    for i in range(1, 100):
        listing = make_listing(seller, name=f"Agent {i:03d}", claim_score=float(i), categories=[f"cat-{i % 7}"])
        if i % 5 and i % 2:
            record(listing, kept=float(i % 13), broken=1.0, jobs=i % 13)
        elif i % 5 == 0:
            record(listing, kept=1.0, broken=9.0, jobs=10)
            policies.policies_apply(listing_id=listing.pk)

    with CaptureQueriesContext(connection) as hundred:
        response = client.get("/agents/?page=2")

    assert len(_card_names(response)) == 20
    assert len(hundred) == len(one), [q["sql"] for q in hundred.captured_queries]


# --- the trust page ------------------------------------------------------------------------------


def test_a_judged_job_shows_on_the_trust_page_with_its_clauses_and_a_history_point():
    engagement = active_engagement()
    deliverable = deliver(engagement, latency_ms=9000)  # misses the 5 s latency clause
    run_all(trust_services.evaluation_start(deliverable_id=deliverable.pk))
    listing = engagement.listing

    response = client_for().get(f"/agents/{listing.slug}/trust/")

    assert response.status_code == 200
    html = response.content.decode()
    assert "1 of 5 judged jobs needed to rank" in html
    assert "verified just now" in html
    clauses = re.findall(r'<code class="clause-key">([^<]+)</code>', html)
    assert clauses[0] == "fast"  # the missed obligation first
    assert set(clauses) == {"cites", "fast", "scope", "quality"}
    # One history point: a dot with its interval as an error bar, no band.
    assert '<svg class="history-plot"' in html
    assert html.count('<circle class="hp-dot"') == 1
    assert '<line class="hp-errorbar"' in html
    assert '<polygon class="hp-band"' not in html


def test_the_trust_page_shows_each_measure_separately_with_intervals(seller, staff_owner):
    listing = make_listing(seller, name="Beacon", categories=["research", "writing"], claim_score=84.0)
    rec = record(listing, kept=40.0, broken=10.0, jobs=50, settled_tasks=40, disputes_upheld=3, disputes_rejected=1)
    history(listing, [(30, 0.7, 0.55, 0.82), (15, 0.75, 0.65, 0.84), (0, rec.compliance_mean, 0.7, 0.86)])
    low_compliance_policy(staff_owner)

    html = client_for().get("/agents/beacon/trust/").content.decode()

    mean, lower, upper = (f"{100 * v:.1f}%" for v in (rec.compliance_mean, rec.compliance_lower, rec.compliance_upper))
    assert f'<p class="metric-figure">{mean}</p>' in html
    assert f"95% credible interval <strong>{lower}{DASH}{upper}</strong>" in html
    assert f'<p class="metric-figure">{100 * rec.confidence:.1f}%</p>' in html
    assert "From <strong>50</strong> judged jobs" in html
    assert "verified 3 days ago" in html
    # Disputes: 4 of 40 settled tasks, Wilson interval, split upheld / rejected.
    low, high = wilson_interval(4, 40)
    assert '<p class="metric-figure">10</p>' in html
    assert (
        f"95% Wilson interval <strong>{per_100(100 * low)}{DASH}{per_100(100 * high)}</strong> per 100;"
        " 3 upheld, 1 rejected of 40 settled tasks."
    ) in html
    assert html.count('<svg class="interval-bar"') == 3  # compliance, disputes, production panel
    # The history plot: band, mean line, labelled axes, accessible title and description.
    assert '<polygon class="hp-band"' in html
    assert '<polyline class="hp-mean"' in html
    assert html.count('<circle class="hp-dot"') == 3
    assert '<title id="hp-title">Pact compliance history of Beacon</title>' in html
    assert "3 daily points from" in html
    assert ">100%</text>" in html
    assert ">0%</text>" in html
    # Policies with the agent's current value; how to read the page.
    assert "Low compliance flag" in html
    assert "Pact compliance, lower bound (0..1) &lt; 0.5 -&gt; flag the listing (badge)" in html
    assert f"This agent: {rec.compliance_lower:.3f}".rstrip("0") in html
    assert MEASURED.replace("'", "&#x27;") in html
    assert window_text() in html


def test_benchmarks_and_production_are_shown_side_by_side_as_two_kinds_of_evidence(seller):
    listing = make_listing(seller, name="Atlas", categories=["research", "writing"])
    services.benchmark_claim_create(
        listing=listing,
        actor=seller,
        benchmark="WritingBench",
        score=88.0,
        measured_on=timezone.localdate() - datetime.timedelta(days=20),
        categories=["writing"],
    )
    record(listing, kept=8.0, broken=2.0, jobs=10)
    record(listing, kept=8.0, broken=2.0, jobs=10, category="research")

    html = client_for().get("/agents/atlas/trust/?category=research").content.decode()

    assert "Benchmarks vs production" in html
    assert "Two different kinds of evidence" in html
    assert "reported by the seller" in html
    assert "measured by Pactum" in html
    assert '<option value="research" selected>research</option>' in html
    # A writing benchmark says little about research jobs: medium fit, with the reason and age.
    assert '<span class="badge badge-warn">medium</span> measured on writing tasks, not research; 20 days old' in html
    assert "Judged jobs under this agent's pacts in research." in html


def test_open_and_past_escalations_are_listed(seller, staff_owner):
    listing = make_listing(seller, name="Slipping")
    record(listing, kept=3.0, broken=5.0, jobs=8)
    policy = low_compliance_policy(staff_owner, name="Old flag")
    [old] = policies.policies_apply(listing_id=listing.pk)
    policies.escalation_resolve(event_id=old.pk, actor=staff_owner, note="Seller fixed the prompt.")
    policy.active = False
    policy.save()
    low_compliance_policy(staff_owner)
    policies.policies_apply(listing_id=listing.pk)

    html = client_for().get("/agents/slipping/trust/").content.decode()

    open_part, past_part = html.split("<h3>Past</h3>")[0], html.split("<h3>Past</h3>")[1].split("</section>")[0]
    assert "Low compliance flag</strong>: Flag the listing (badge)" in open_part.split("<h3>Open</h3>")[1]
    assert "Old flag</strong>" in past_part
    assert "resolved" in past_part
    assert "In force for this agent:" in html


def test_a_trust_page_with_no_evidence_says_so(seller):
    make_listing(seller, name="Fresh")

    html = client_for().get("/agents/fresh/trust/").content.decode()

    assert "No history yet" in html
    assert '<svg class="history-plot"' not in html
    assert "No judged jobs yet." in html
    assert "0 of 5 judged jobs needed to rank" in html
    assert "not verified yet" in html
    assert "No settled tasks yet." in html


def test_an_unknown_category_is_reported_and_all_jobs_are_shown(seller):
    make_listing(seller, name="Beacon", categories=["research"])
    response = client_for().get("/agents/beacon/trust/?category=cooking")
    assert response.status_code == 200
    html = response.content.decode()
    assert 'role="alert"' in html
    assert "all jobs" in html


def test_a_draft_agent_has_no_public_trust_page(seller):
    make_listing(seller, name="Hidden", status="draft")
    assert client_for().get("/agents/hidden/trust/").status_code == 404
    assert client_for(seller).get("/agents/hidden/trust/").status_code == 200


def test_the_trust_page_runs_the_same_queries_however_much_it_shows(seller, other_seller, staff_owner):
    small = make_listing(seller, name="Small", categories=["research"], claim_score=50.0)
    record(small, kept=3.0, broken=1.0, jobs=4)
    history(small, [(0, 0.6, 0.3, 0.85)])
    client = client_for()
    with CaptureQueriesContext(connection) as one:
        assert client.get("/agents/small/trust/").status_code == 200

    big = make_listing(other_seller, name="Big", categories=["research", "writing", "legal"], claim_score=70.0)
    for i in range(5):
        services.benchmark_claim_create(
            listing=big,
            actor=other_seller,
            benchmark=f"Bench {i}",
            score=50.0 + i,
            measured_on=datetime.date(2026, 1, i + 1),
        )
    for category in ("", "research", "writing", "legal"):
        record(big, kept=3.0, broken=5.0, jobs=8, category=category, settled_tasks=8, disputes_upheld=1)
    history(big, [(d, 0.5, 0.3, 0.7) for d in range(0, 90, 3)])
    low_compliance_policy(staff_owner)
    low_compliance_policy(staff_owner, name="Second flag", action="require_manual_release")
    policies.policies_apply(listing_id=big.pk)

    with CaptureQueriesContext(connection) as many:
        response = client.get("/agents/big/trust/?category=research")

    assert response.status_code == 200
    assert response.content.decode().count('<circle class="hp-dot"') == 30
    assert len(many) == len(one), [q["sql"] for q in many.captured_queries]


def test_the_detail_page_links_a_compact_trust_summary(seller):
    listing = make_listing(seller, name="Beacon")
    record(listing, kept=40.0, broken=10.0, jobs=50, settled_tasks=20, disputes_upheld=1)

    html = client_for().get("/agents/beacon/").content.decode()

    assert '<h2 id="trust-heading">Trust record</h2>' in html
    assert "50 judged jobs" in html
    assert "Disputes: 5 per 100 settled tasks (1 upheld, 0 rejected)" in html
    assert 'href="/agents/beacon/trust/"' in html


# --- leaderboard ---------------------------------------------------------------------------------


def test_the_leaderboard_ranks_rated_agents_and_lists_the_unrated_after_without_a_rank(seller, staff_owner):
    low_compliance_policy(staff_owner)
    for name, kept, broken, jobs in (
        ("Solid", 46.0, 4.0, 50),
        ("Lucky", 5.6, 0.4, 6),
        ("Slipping", 3.0, 5.0, 8),
        ("Fresh", 3.0, 0.0, 3),
    ):
        listing = make_listing(seller, name=name)
        record(listing, kept=kept, broken=broken, jobs=jobs)
        policies.policies_apply(listing_id=listing.pk)
    make_listing(seller, name="Unjudged")

    response = client_for().get("/leaderboard/")

    assert response.status_code == 200
    assert _leaderboard_rows(response) == [
        ("1", "Solid"),
        ("2", "Lucky"),
        ("3", "Slipping"),
        ("unrated", "Fresh"),  # unrated agents follow by the same order, unranked
        ("unrated", "Unjudged"),
    ]
    html = response.content.decode()
    assert MEASURED.replace("'", "&#x27;") in html
    assert window_text() in html
    assert "What each signal triggers: 1 policy in force" in html
    assert "Pact compliance, lower bound (0..1) &lt; 0.5 -&gt; flag the listing (badge)" in html
    # The flagged agent's row says what is in force for it.
    slipping_row = html.split(">Slipping</a>")[1].split("</tr>")[0]
    assert 'title="Low compliance flag">Flagged</span> Flag the listing (badge)' in slipping_row
    assert "3 of 5 judged jobs" in html
    assert '<a href="/leaderboard/" aria-current="page">Leaderboard</a>' in html


def test_the_leaderboard_ranks_within_the_category_chosen(seller):
    writer = make_listing(seller, name="Writer", categories=["research", "writing"])
    record(writer, kept=46.0, broken=4.0, jobs=50)
    record(writer, kept=2.0, broken=6.0, jobs=8, category="research")
    researcher = make_listing(seller, name="Researcher", categories=["research"])
    record(researcher, kept=30.0, broken=10.0, jobs=40)
    record(researcher, kept=28.0, broken=2.0, jobs=30, category="research")
    make_listing(seller, name="Coder", categories=["coding"])

    everything = _leaderboard_rows(client_for().get("/leaderboard/"))
    research = _leaderboard_rows(client_for().get("/leaderboard/?category=research"))

    assert everything == [("1", "Writer"), ("2", "Researcher"), ("unrated", "Coder")]
    assert research == [("1", "Researcher"), ("2", "Writer")]


def test_the_leaderboard_runs_the_same_queries_for_one_and_a_hundred_agents(seller, staff_owner):
    low_compliance_policy(staff_owner)
    first = make_listing(seller, name="Agent 000")
    record(first, kept=3.0, broken=5.0, jobs=8)
    policies.policies_apply(listing_id=first.pk)
    client = client_for()
    with CaptureQueriesContext(connection) as one:
        response = client.get("/leaderboard/")
    assert len(_leaderboard_rows(response)) == 1
    for i in range(1, 100):
        listing = make_listing(seller, name=f"Agent {i:03d}")
        slipping = i % 10 == 0
        record(
            listing,
            kept=1.0 if slipping else float(5 + i % 17),
            broken=9.0 if slipping else float(1 + i % 5),
            jobs=3 + i % 9,
            settled_tasks=i,
            disputes_upheld=i % 3,
        )
        if slipping:
            policies.policies_apply(listing_id=listing.pk)

    with CaptureQueriesContext(connection) as hundred:
        response = client.get("/leaderboard/?page=2")

    rows = _leaderboard_rows(response)
    assert len(rows) == 50
    assert rows[0][0] == "51"  # ranks continue across pages
    assert "Page 2 of 2" in response.content.decode()
    assert len(hundred) == len(one), [q["sql"] for q in hundred.captured_queries]


# --- the drawings --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (None, "not verified yet"),
        (5, "verified just now"),
        (60, "verified 1 minute ago"),
        (7200, "verified 2 hours ago"),
        (3 * 86_400 + 3600, "verified 3 days ago"),
        (86_400 * 90, "verified 3 months ago"),
    ],
)
def test_freshness_reads_as_verified_ago(seconds, text):
    assert verified_ago(seconds) == text


def test_the_interval_bar_draws_the_band_and_the_mean_on_a_zero_to_one_track():
    svg = interval_bar({"mean": 0.5, "lower": 0.25, "upper": 0.75}, width=200, label="Compliance")
    assert f'aria-label="Compliance: 50% (95% interval 25%{DASH}75%)"' in svg
    assert '<rect class="ib-band" x="50.0" y="2" width="100.0"' in svg
    assert 'x1="100.0" x2="100.0"' in svg


def test_the_history_plot_draws_nothing_without_points():
    assert history_plot([]) == ""


def test_the_trust_page_shows_a_staff_override(client):
    staff = UserFactory.create(is_staff=True)
    TrustPolicyFactory.create(name="Weak agents are flagged", threshold=0.5, min_evidence=3, owner=staff)
    listing, template = trust_listing()
    judged_history(listing, template, [0.0, 0.0, 0.0], start=T0, step_days=1)
    page = client.get(f"/agents/{listing.slug}/trust/").content.decode()
    assert "triggered" in page
    event = EscalationEvent.objects.get(listing=listing)
    trust_services.escalation_resolve(event_id=event.pk, actor=staff, note="Reviewed; the seller fixed it.")
    page = client.get(f"/agents/{listing.slug}/trust/").content.decode()
    assert "overridden by staff" in page
