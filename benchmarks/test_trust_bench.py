"""The trust record at marketplace scale: 10,000 agents, 1,000,000 evaluation records.

Setup (once per module, committed to the throwaway benchmark database):
10,000 published listings (half in "research", half in "writing"), 1,000,000
judged jobs (100 per agent: engagement, deliverable and a finished evaluation
with its compliance, spread over the past year), inserted with set-based SQL;
each agent's trust records (agent-wide and per category) built from those rows
in one aggregate query with the same arithmetic as `trust.metrics`.

Measured (`make bench`):
- the leaderboard API, first page (50 rows), agent-wide and per category;
- the listing list API ranked by trust;
- one incremental update (a new finalized evaluation counted in its agent's
  record: the O(1) path every finalize takes, with the demo's four policies checked);
- the nightly refresh of one agent (a full recomputation from its 100 records).
"""

from __future__ import annotations

import datetime

import pytest
from django.db import connection
from django.test import Client
from django.utils import timezone

from core.models import User
from marketplace.models import AgentListing, Deliverable, Engagement, PactTemplate, PactVersion
from trust import metrics
from trust.models import EscalationEvent, Evaluation, TrustPolicy, TrustRecord

AGENTS = 10_000
JOBS_PER_AGENT = 100
HALF_LIFE_DAYS = 90.0

pytestmark = pytest.mark.skipif(connection.vendor != "postgresql", reason="set-based setup uses PostgreSQL SQL")


def _table(model) -> str:
    return connection.ops.quote_name(model._meta.db_table)


def _build(now: datetime.datetime) -> None:
    seller = User.objects.create_user("bench-seller", password="x", role="seller")
    buyer = User.objects.create_user("bench-buyer", password="x", role="buyer")
    first = AgentListing.objects.create(
        seller=seller, name="Bench template owner", slug="bench-owner", price_minor=100, currency="usd"
    )
    template = PactTemplate.objects.create(listing=first, name="Bench pact")
    version = PactVersion.objects.create(
        template=template, kind="published", version="1.0.0", clauses=[], terms={}, content_hash="0" * 64
    )
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            INSERT INTO {_table(AgentListing)}
              (created_at, updated_at, seller_id, name, slug, description, categories, price_minor, currency,
               endpoint_url, endpoint_secret, status)
            SELECT %s, %s, %s, 'Bench agent ' || g, 'bench-agent-' || g, '',
                   CASE WHEN g %% 2 = 0 THEN '["research"]'::jsonb ELSE '["writing"]'::jsonb END,
                   100 + g %% 900, 'usd', '', md5(g::text), 'published'
            FROM generate_series(1, %s) AS g
            """,
            [now, now, seller.pk, AGENTS - 1],
        )
        cursor.execute(
            f"""
            INSERT INTO {_table(Engagement)}
              (created_at, updated_at, buyer_id, listing_id, template_id, template_version_id, task, category,
               status, pact_version_id, activated_at, delivery_due_at)
            SELECT %s, %s, %s, l.id, %s, %s, '"bench task"'::jsonb, coalesce(l.categories->>0, ''),
                   'closed', NULL, NULL, NULL
            FROM {_table(AgentListing)} AS l CROSS JOIN generate_series(1, %s) AS j
            """,
            [now, now, buyer.pk, template.pk, version.pk, JOBS_PER_AGENT],
        )
        cursor.execute(
            f"""
            INSERT INTO {_table(Deliverable)}
              (engagement_id, output, citations, actions, latency_ms, content_hash, source, submitted_by_id,
               created_at)
            SELECT e.id, '"answer"'::jsonb, '[]'::jsonb, '[]'::jsonb, 1000, md5(e.id::text), 'seller', NULL, %s
            FROM {_table(Engagement)} AS e
            """,
            [now],
        )
        # Compliance and age vary by agent and job; about one job in six fails.
        cursor.execute(
            f"""
            INSERT INTO {_table(Evaluation)}
              (engagement_id, deliverable_id, pact_version_id, round, reason, status, outcome, compliance,
               hard_gates_passed, agreement_alpha, panel_alpha, flagged_for_review, review_reason,
               finalize_enqueued, created_at, finished_at)
            SELECT d.engagement_id, d.id, %s, 1, '', 'done',
                   CASE WHEN (d.id * 7919) %% 6 = 0 THEN 'failed' ELSE 'passed' END,
                   CASE WHEN (d.id * 7919) %% 6 = 0 THEN ((d.id %% 5) / 10.0) ELSE 1.0 END,
                   true, 1.0, NULL, false, '', true, %s,
                   %s - make_interval(hours => ((d.id * 104729) %% 8760)::int)
            FROM {_table(Deliverable)} AS d
            """,
            [version.pk, now, now],
        )
    _records(now)
    # The demo's default policies, so an update also checks real thresholds.
    from web.demo_trust import seed_policies

    seed_policies(owner=User.objects.create_user("bench-admin", password="x", is_staff=True))
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")


def _records(now: datetime.datetime) -> None:
    """Each agent's records from the evaluation rows: r and s summed with their decay in SQL."""
    half_life_s = HALF_LIFE_DAYS * 86_400
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            SELECT e.listing_id, e.category,
                   sum(power(2, -extract(epoch FROM (%s - v.finished_at)) / %s) * v.compliance),
                   sum(power(2, -extract(epoch FROM (%s - v.finished_at)) / %s) * (1 - v.compliance)),
                   count(*), max(v.finished_at)
            FROM {_table(Evaluation)} AS v JOIN {_table(Engagement)} AS e ON e.id = v.engagement_id
            GROUP BY e.listing_id, e.category
            """,
            [now, half_life_s, now, half_life_s],
        )
        rows = cursor.fetchall()
    batch = []
    for listing_id, category, r, s, count, last in rows:
        for cat in sorted({"", category}):
            record = TrustRecord(
                listing_id=listing_id,
                category=cat,
                r=float(r),
                s=float(s),
                decayed_to=now,
                evidence_count=count,
                last_verified_at=last,
                settled_tasks=count,
            )
            metrics.derive(record)
            batch.append(record)
    TrustRecord.objects.bulk_create(batch, batch_size=5000)


@pytest.fixture(scope="module")
def marketplace_at_scale(django_db_setup, django_db_blocker):
    with django_db_blocker.unblock():
        now = timezone.now()
        _build(now)
        assert Evaluation.objects.count() == AGENTS * JOBS_PER_AGENT
        assert AgentListing.objects.count() == AGENTS
        yield now
        with connection.cursor() as cursor:
            for model in (
                EscalationEvent,
                TrustPolicy,
                TrustRecord,
                Evaluation,
                Deliverable,
                Engagement,
                PactVersion,
                PactTemplate,
                AgentListing,
            ):
                cursor.execute(f"TRUNCATE {_table(model)} CASCADE")


@pytest.mark.django_db
@pytest.mark.parametrize("category", ["", "research"])
def test_leaderboard_first_page(benchmark, marketplace_at_scale, category):
    client = Client()

    def fetch():
        return client.get(f"/api/v1/leaderboard/?category={category}")

    response = benchmark(fetch)
    body = response.json()
    assert response.status_code == 200
    assert len(body["results"]) == 50
    lowers = [row["compliance"]["lower"] for row in body["results"] if row["rank"]]
    assert lowers == sorted(lowers, reverse=True)
    expected = AgentListing.objects.filter(categories__icontains=f'"{category}"') if category else AgentListing.objects
    assert body["count"] == expected.count()


@pytest.mark.django_db
def test_listing_list_ranked_by_trust(benchmark, marketplace_at_scale):
    client = Client()
    response = benchmark(lambda: client.get("/api/v1/agents/?ordering=trust&page_size=50"))
    assert response.status_code == 200
    assert len(response.json()["results"]) == 50


@pytest.mark.django_db
def test_one_incremental_update(benchmark, marketplace_at_scale):
    """A new finalized evaluation counted in an agent with 100 judged jobs."""
    listing = AgentListing.objects.filter(slug="bench-agent-42").get()
    engagements = list(Engagement.objects.filter(listing=listing).order_by("id")[:60])
    state = {"round": 1, "index": 0}

    def new_round():
        engagement = engagements[state["index"] % len(engagements)]
        state["index"] += 1
        evaluation = Evaluation.objects.create(
            engagement=engagement,
            deliverable_id=Deliverable.objects.values_list("pk", flat=True).get(engagement=engagement),
            pact_version=PactVersion.objects.get(template__name="Bench pact"),
            round=2,
            status="done",
            outcome="passed",
            compliance=1.0,
            finished_at=timezone.now(),
        )
        return (), {"evaluation": evaluation}

    benchmark.pedantic(metrics.trust_record_evaluation, setup=new_round, rounds=50)
    record = TrustRecord.objects.get(listing=listing, category="")
    assert record.evidence_count == JOBS_PER_AGENT  # re-evaluations replace their earlier round


@pytest.mark.django_db
def test_nightly_refresh_of_one_agent(benchmark, marketplace_at_scale):
    listing_id = AgentListing.objects.values_list("pk", flat=True).get(slug="bench-agent-7")
    benchmark(metrics.trust_refresh, listing_id=listing_id)
    assert TrustRecord.objects.get(listing_id=listing_id, category="").evidence_count == JOBS_PER_AGENT
