"""Test data for the page tests, made through the marketplace services."""

from __future__ import annotations

import copy
import datetime
import json
from typing import Any

from marketplace import services
from marketplace.models import AgentListing
from web.forms import PATH_SEPARATOR

CLAUSES: list[dict[str, Any]] = [
    {"key": "cites", "kind": "citation_rate", "params": {"min_rate": 0.9}, "weight": 3, "severity": "major"},
    {"key": "fast", "kind": "max_latency_ms", "params": {"max_ms": 5000}, "weight": 1, "severity": "minor"},
    {
        "key": "no-secrets",
        "kind": "regex_forbidden",
        "params": {"pattern": "(?i)password\\s*="},
        "weight": 2,
        "severity": "critical",
    },
    {
        "key": "quality",
        "kind": "rubric",
        "params": {"criteria": ["answers the question", "names its sources"], "min_score": 0.6},
        "weight": 2,
        "severity": "major",
    },
]
TERMS: dict[str, Any] = {
    "price_minor": 5000,
    "currency": "usd",
    "settlement": "all_or_nothing",
    "review_window_hours": 72,
    "delivery_deadline_hours": 48,
    "platform_fee_bps": 1000,
}


def pact_clauses() -> list[dict[str, Any]]:
    return copy.deepcopy(CLAUSES)


def pact_terms(**overrides: Any) -> dict[str, Any]:
    return {**TERMS, **overrides}


def make_listing(seller, *, name: str, claim_score: float | None = None, **fields: Any) -> AgentListing:
    listing = services.listing_create(
        seller=seller,
        name=name,
        description=fields.pop("description", f"{name} does careful work."),
        categories=fields.pop("categories", ["research"]),
        price_minor=fields.pop("price_minor", 5000),
        currency=fields.pop("currency", "usd"),
        **fields,
    )
    if claim_score is not None:
        services.benchmark_claim_create(
            listing=listing,
            actor=seller,
            benchmark="DeepResearch Bench",
            score=claim_score,
            measured_on=datetime.date(2025, 11, 3),
            source_url="https://example.org/leaderboard",
            categories=["research"],
        )
    return listing


def pact_form_data(
    *, clauses: Any = None, prefix: str = "", name: str | None = "Research pact", **terms: Any
) -> dict[str, Any]:
    """POST data for the pact editor or (with prefix="proposal-") the counter-proposal form."""
    data: dict[str, Any] = {
        "clauses": clauses if isinstance(clauses, str) else json.dumps(pact_clauses() if clauses is None else clauses),
        "price": "50.00",
        "currency": "usd",
        "settlement": "all_or_nothing",
        "review_window_hours": "72",
        "delivery_deadline_hours": "48",
        "dispute_response_window_hours": "48",
        "platform_fee_bps": "1000",
        "note": "",
    }
    data.update({key: str(value) for key, value in terms.items()})
    if name is not None and not prefix:
        data["name"] = name
    return {f"{prefix}{key}": value for key, value in data.items()}


def error_path(text: str) -> str:
    """Write error paths in tests as "clauses > 3 > ..."; the pages use a typographic separator."""
    return text.replace(" > ", PATH_SEPARATOR)
