"""The demo marketplace seeded by `manage.py seed_demo`.

Built only through the real services, idempotently: running it twice leaves
the same data. The story (see the design notes): among the research agents,
Atlas posts the best public benchmark score and Beacon trails it a little;
Quill is a writing agent. Each listing points at a demo agent served by the app
itself in development (`/demo-agents/<name>/`), so engagements that get funded
are delivered by a real signed HTTP call.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass

from django.conf import settings
from django.db import transaction

from core import services as core_services
from core.models import User
from marketplace import services
from marketplace.models import AgentListing, Engagement, PactTemplate
from web import demo_disputes, demo_trust

DEMO_PASSWORD = "pactum-demo-2026"


@dataclass(frozen=True)
class DemoLogin:
    username: str
    role: str
    password: str


DEMO_ADMIN = "admin"
DEMO_BUYERS = ("ada", "grace")
DEMO_SELLERS = ("atlas-labs", "beacon-research", "quill-works", "sage-labs", "nova-ai")

RESEARCH_CLAUSES = [
    {
        "key": "cites-sources",
        "kind": "citation_rate",
        "params": {"min_rate": 0.9, "allowed_domains": ["arxiv.org", "acm.org", "nature.com", "wikipedia.org"]},
        "weight": 3,
        "severity": "major",
    },
    {"key": "answers-fast", "kind": "max_latency_ms", "params": {"max_ms": 1000}, "weight": 1, "severity": "minor"},
    {
        "key": "stays-in-scope",
        "kind": "scope",
        "params": {"allowed_actions": ["search", "read", "summarise"], "forbidden_actions": ["payments"]},
        "weight": 2,
        "severity": "critical",
    },
    {
        "key": "no-secrets",
        "kind": "regex_forbidden",
        "params": {"pattern": r"(?i)(api[_-]?key|password)\s*[:=]"},
        "weight": 1,
        "severity": "critical",
    },
    {
        "key": "useful-answer",
        "kind": "rubric",
        "params": {
            "criteria": ["answers the question asked", "names the sources it relies on", "states its uncertainty"],
            "min_score": 0.6,
        },
        "weight": 3,
        "severity": "major",
    },
]

WRITING_CLAUSES = [
    {"key": "length", "kind": "word_count", "params": {"min": 80, "max": 400}, "weight": 2, "severity": "major"},
    {"key": "answers-fast", "kind": "max_latency_ms", "params": {"max_ms": 8000}, "weight": 1, "severity": "minor"},
    {
        "key": "on-brief",
        "kind": "rubric",
        "params": {"criteria": ["follows the brief", "clear structure", "plain language"], "min_score": 0.6},
        "weight": 3,
        "severity": "major",
    },
]


@dataclass(frozen=True)
class DemoAgent:
    seller: str
    agent: str  # the demo agent endpoint name
    name: str
    description: str
    categories: tuple[str, ...]
    price_minor: int
    pact_name: str
    clauses: list
    benchmarks: tuple[tuple[str, float, datetime.date, tuple[str, ...]], ...]


DEMO_LISTINGS = (
    DemoAgent(
        seller="atlas-labs",
        agent="atlas",
        name="Atlas Research",
        description="Research answers with sources, from the agent with the top public benchmark score.",
        categories=("research",),
        price_minor=6000,
        pact_name="Cited research answer",
        clauses=RESEARCH_CLAUSES,
        benchmarks=(("GAIA (validation)", 0.74, datetime.date(2026, 9, 1), ("research", "web-browsing")),),
    ),
    DemoAgent(
        seller="beacon-research",
        agent="beacon",
        name="Beacon Research",
        description="Careful research answers: every claim carries its source, answers in seconds.",
        categories=("research",),
        price_minor=5000,
        pact_name="Cited research answer",
        clauses=RESEARCH_CLAUSES,
        benchmarks=(("GAIA (validation)", 0.69, datetime.date(2026, 8, 15), ("research", "web-browsing")),),
    ),
    DemoAgent(
        seller="quill-works",
        agent="quill",
        name="Quill Writer",
        description="Short, clear briefs and summaries in plain language.",
        categories=("writing", "summarisation"),
        price_minor=3000,
        pact_name="Plain-language brief",
        clauses=WRITING_CLAUSES,
        benchmarks=(("WritingBench", 0.81, datetime.date(2026, 5, 20), ("writing",)),),
    ),
    DemoAgent(
        seller="sage-labs",
        agent="beacon",
        name="Sage Research",
        description="Research answers with sources. Rebuilt this summer after a rough start.",
        categories=("research",),
        price_minor=4500,
        pact_name="Cited research answer",
        clauses=RESEARCH_CLAUSES,
        benchmarks=(("GAIA (validation)", 0.58, datetime.date(2025, 11, 2), ("research",)),),
    ),
    DemoAgent(
        seller="nova-ai",
        agent="beacon",
        name="Nova Research",
        description="A new research agent: cited answers in seconds.",
        categories=("research", "summarisation"),
        price_minor=3500,
        pact_name="Cited research answer",
        clauses=RESEARCH_CLAUSES,
        benchmarks=(("GAIA (validation)", 0.71, datetime.date(2026, 10, 20), ("research", "web-browsing")),),
    ),
)

TERMS = {
    "currency": "usd",
    "settlement": "all_or_nothing",
    "review_window_hours": 72,
    "delivery_deadline_hours": 48,
    "platform_fee_bps": 1000,
}


def _user(username: str, role: str) -> User:
    user = User.objects.filter(username=username).first()
    if user is None:
        user, _ = core_services.user_register(
            username=username, email=f"{username}@pactum.invalid", password=DEMO_PASSWORD, role=role
        )
    return user


def _listing(spec: DemoAgent) -> AgentListing:
    seller = User.objects.get(username=spec.seller)
    listing = AgentListing.objects.filter(seller=seller, name=spec.name).first()
    if listing is None:
        listing = services.listing_create(
            seller=seller,
            name=spec.name,
            description=spec.description,
            categories=list(spec.categories),
            price_minor=spec.price_minor,
            currency="usd",
            endpoint_url=f"{settings.PACTUM_BASE_URL}/demo-agents/{spec.agent}/",
        )
        for benchmark, score, measured_on, categories in spec.benchmarks:
            services.benchmark_claim_create(
                listing=listing,
                actor=seller,
                benchmark=benchmark,
                score=score,
                measured_on=measured_on,
                source_url="https://example.org/leaderboards",
                categories=list(categories),
            )
    services.pact_publish(
        listing=listing,
        actor=seller,
        name=spec.pact_name,
        clauses=spec.clauses,
        terms={**TERMS, "price_minor": spec.price_minor},
    )
    return listing


def _engagements() -> None:
    """A negotiation with a counter-proposal, and an agreed pact waiting for funding."""
    ada, grace = User.objects.get(username="ada"), User.objects.get(username="grace")
    beacon = AgentListing.objects.get(name="Beacon Research")
    atlas = AgentListing.objects.get(name="Atlas Research")
    if not Engagement.objects.filter(buyer=ada, listing=beacon).exists():
        template = PactTemplate.objects.get(listing=beacon)
        engagement = services.engagement_create(
            buyer=ada,
            listing=beacon,
            template=template,
            task="What are the known failure modes of regular-expression engines on adversarial input? Cite sources.",
        )
        proposal = engagement.proposals.get()
        counter_terms = {**proposal.terms, "price_minor": 5500, "delivery_deadline_hours": 24}
        services.proposal_create(
            engagement_id=engagement.pk,
            actor=beacon.seller,
            clauses=proposal.clauses,
            terms=counter_terms,
            note="A 24-hour deadline costs a little more.",
        )
    if not Engagement.objects.filter(buyer=grace, listing=atlas).exists():
        template = PactTemplate.objects.get(listing=atlas)
        engagement = services.engagement_create(
            buyer=grace,
            listing=atlas,
            template=template,
            task="Summarise the evidence on retrieval-augmented generation reducing hallucinations.",
        )
        services.proposal_accept(engagement_id=engagement.pk, actor=atlas.seller)


RESEARCH_TASKS = (
    "How do regular-expression engines fail on adversarial input, and how do linear-time engines avoid it?",
    "What does the evidence say about retrieval-augmented generation reducing hallucinations?",
    "Summarise the known attacks on machine-learning model supply chains.",
    "How reliable are automatic citation checkers for scientific claims?",
    "What are the trade-offs between optimistic and pessimistic locking in databases?",
)
WRITING_TASKS = (
    "Write a plain-language brief on how escrow protects buyers of online services.",
    "Write a short brief for a team on why code review catches defects.",
)


def run_demo_job(*, agent: str, listing: AgentListing, buyer: User, task: str, release: bool = False) -> Engagement:
    """One finished job: hired, funded through escrow (local gateway), delivered with
    the demo agent's own answer and judged by the real pipeline, run inline so the
    demo is ready at once (the queued tasks then find the work done)."""
    from escrow import services as escrow_services
    from trust import services as trust_services
    from web.demo_agents import answer

    engagement = services.engagement_create(
        buyer=buyer, listing=listing, template=PactTemplate.objects.get(listing=listing), task=task
    )
    services.proposal_accept(engagement_id=engagement.pk, actor=listing.seller)
    escrow_services.escrow_fund(engagement_id=engagement.pk, actor=buyer)
    reply = answer(agent, task)
    deliverable = services.deliverable_submit(
        engagement_id=engagement.pk,
        actor=listing.seller,
        output=reply.output,
        citations=reply.citations,
        actions=reply.actions,
        latency_ms=int(reply.delay_s * 1000),
    )
    evaluation = trust_services.evaluation_start(deliverable_id=deliverable.pk)
    for run_id in evaluation.judge_runs.values_list("id", flat=True):
        trust_services.judge_run_execute(judge_run_id=run_id)
    evaluation = trust_services.evaluation_finalize(evaluation_id=evaluation.pk)
    # The finalize signal schedules the money (release or refund after the review window).
    if release and evaluation.outcome == "passed":
        escrow_services.escrow_release(engagement_id=engagement.pk, actor=buyer)
    return engagement


def _evaluated_jobs() -> None:
    """Finished jobs per demo agent; on the first three passed jobs the buyer releases at once."""
    jobs = [("atlas", "Atlas Research", "ada", t) for t in RESEARCH_TASKS]
    jobs += [("beacon", "Beacon Research", "grace", t) for t in RESEARCH_TASKS]
    jobs += [("quill", "Quill Writer", "ada", t) for t in WRITING_TASKS]
    for agent, listing_name, buyer_name, task in jobs:
        listing = AgentListing.objects.get(name=listing_name)
        buyer = User.objects.get(username=buyer_name)
        if Engagement.objects.filter(listing=listing, buyer=buyer, task=task).exists():
            continue
        run_demo_job(
            agent=agent,
            listing=listing,
            buyer=buyer,
            task=task,
            release=task in RESEARCH_TASKS[:3] + WRITING_TASKS[:1],
        )


def seed_demo() -> list[DemoLogin]:
    logins: list[DemoLogin] = []
    with transaction.atomic():
        if not User.objects.filter(username=DEMO_ADMIN).exists():
            User.objects.create_superuser(DEMO_ADMIN, f"{DEMO_ADMIN}@pactum.invalid", DEMO_PASSWORD)
        logins.append(DemoLogin(DEMO_ADMIN, "admin", DEMO_PASSWORD))
        for role, names in ((User.Role.BUYER, DEMO_BUYERS), (User.Role.SELLER, DEMO_SELLERS)):
            for name in names:
                _user(name, role)
                logins.append(DemoLogin(name, role.value, DEMO_PASSWORD))
        for spec in DEMO_LISTINGS:
            _listing(spec)
        # Trust policies first, so the jobs below cross their thresholds as they happen.
        demo_trust.seed_policies(owner=User.objects.get(username=DEMO_ADMIN))
    # Engagement services are their own (durable) transactions.
    _engagements()
    _evaluated_jobs()
    demo_trust.seed_trust_story()
    demo_disputes.seed_disputes()
    return logins
