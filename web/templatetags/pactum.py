"""Display helpers for the marketplace pages: money, badges, clauses, terms, diffs.

Presentation only: they format what the selectors returned and never query.
"""

from __future__ import annotations

import json
from typing import Any

from django import template

from core.money import format_minor
from marketplace.pacts import CLAUSE_KINDS
from trust.services import ALPHA_REVIEW_THRESHOLD
from web.forms import PATH_SEPARATOR

register = template.Library()

_STATUS_BADGES = {
    # listings
    "published": "badge-ok",
    "draft": "",
    "suspended": "badge-bad",
    # engagements
    "negotiating": "badge-warn",
    "agreed": "badge-info",
    "active": "badge-info",
    "delivered": "badge-info",
    "evaluated": "badge-info",  # neutral: the evaluation's outcome (passed or failed) decides the colour
    "closed": "badge-ok",
    "disputed": "badge-bad",
    "cancelled": "",
    "expired": "badge-bad",
}

_SETTLEMENTS = {"all_or_nothing": "All or nothing", "pro_rata": "Pro rata by clause weight"}

TERM_LABELS = {
    "price_minor": "Price",
    "currency": "Currency",
    "settlement": "Settlement",
    "delivery_deadline_hours": "Delivery deadline",
    "review_window_hours": "Review window",
    "dispute_response_window_hours": "Dispute response window",
    "platform_fee_bps": "Platform fee",
}

KIND_HELP = {
    "json_schema": "the output is JSON valid against a JSON Schema",
    "regex_required": "the output matches a pattern (RE2 syntax)",
    "regex_forbidden": "the output never matches a pattern (RE2 syntax)",
    "max_latency_ms": "the job takes at most this many milliseconds",
    "word_count": "the output's word count is within bounds",
    "citation_rate": "share of claim sentences that carry a citation, optionally from allowed domains only",
    "scope": "every action in the action log is allowed (and none forbidden)",
    "reference_overlap": "token overlap with a reference answer",
    "rubric": "criteria graded by a jury of independent judges",
}


@register.filter
def money(amount: int | None, currency: str) -> str:
    if amount is None or not currency:
        return "—"
    return format_minor(int(amount), currency)


@register.filter
def status_badge(status: str) -> str:
    return _STATUS_BADGES.get(status, "")


_OUTCOME_BADGES = {
    # evaluations, clauses and verdicts
    "passed": "badge-ok",
    "failed": "badge-bad",
    "inconclusive": "badge-warn",
    # evaluation and judge-run progress
    "pending": "",
    "running": "badge-info",
    "done": "badge-ok",
    "error": "badge-bad",
}

# Krippendorff's reading of alpha: >= 0.8 reliable, 0.667..0.8 tentative; below the
# review threshold (0.667, owned by trust) the evaluation is flagged for an admin.
ALPHA_GOOD = 0.8


@register.filter
def outcome_badge(outcome: str | None) -> str:
    return _OUTCOME_BADGES.get(outcome or "", "")


@register.filter
def percent(value: float | None) -> str:
    """A share 0..1 as a percentage: whole when exact, else one decimal ("75%", "77.8%")."""
    if value is None:
        return "—"
    text = f"{value * 100:.1f}"
    return (text[:-2] if text.endswith(".0") else text) + "%"


@register.filter
def alpha_band(alpha: float | None) -> dict[str, str] | None:
    """How to read an agreement alpha: {"label", "badge"}, or None when not measured."""
    if alpha is None:
        return None
    if alpha >= ALPHA_GOOD:
        return {"label": "good", "badge": "badge-ok"}
    if alpha >= ALPHA_REVIEW_THRESHOLD:
        return {"label": "tentative", "badge": "badge-warn"}
    return {"label": "review", "badge": "badge-bad"}


@register.simple_tag
def alpha_thresholds() -> dict[str, float]:
    return {"good": ALPHA_GOOD, "review": ALPHA_REVIEW_THRESHOLD}


@register.filter
def score(value: float | None) -> str:
    return "—" if value is None else f"{value:g}"


@register.filter
def top_claim(listing: Any) -> Any:
    """The listing's highest benchmark claim (the most recent on a tie), from the prefetched claims."""
    claims = list(listing.benchmark_claims.all())
    if not claims:
        return None
    return max(claims, key=lambda c: (c.score, c.measured_on, c.pk))


def _plain(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, str):
        return value
    if isinstance(value, list) and all(isinstance(v, (str, int, float)) for v in value):
        return ", ".join(_plain(v) for v in value) if value else "(none)"
    return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True)


def _is_block(value: Any) -> bool:
    return isinstance(value, dict) or (
        isinstance(value, list) and not all(isinstance(v, (str, int, float)) for v in value)
    )


@register.filter
def param_items(params: dict[str, Any] | None) -> list[dict[str, Any]]:
    """A clause's parameters as (name, text, block) rows; lists joined, objects pretty-printed."""
    return [
        {"name": name, "text": _plain(value), "block": _is_block(value)}
        for name, value in sorted((params or {}).items())
    ]


def term_text(name: str, value: Any, terms: dict[str, Any]) -> str:
    if value is None:
        return "—"
    if name == "price_minor":
        return format_minor(int(value), terms.get("currency") or "usd")
    if name == "currency":
        return str(value).upper()
    if name == "settlement":
        return _SETTLEMENTS.get(value, str(value))
    if name.endswith("_hours"):
        return f"{value} h"
    if name == "platform_fee_bps":
        whole, frac = divmod(int(value), 100)
        return f"{whole}.{frac:02d} % ({value} bps)"
    return _plain(value)


@register.filter
def term_items(terms: dict[str, Any] | None) -> list[dict[str, str]]:
    terms = terms or {}
    order = [name for name in TERM_LABELS if name in terms] + sorted(set(terms) - set(TERM_LABELS))
    return [
        {"name": name, "label": TERM_LABELS.get(name, name), "text": term_text(name, terms[name], terms)}
        for name in order
    ]


@register.filter
def task_text(task: Any) -> str:
    return task if isinstance(task, str) else json.dumps(task, indent=2, ensure_ascii=False)


@register.filter
def pretty_json(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True)


def _clause_summary(clause: dict[str, Any] | None) -> str:
    if clause is None:
        return ""
    params = "; ".join(f"{name} {_plain(value)}" for name, value in sorted(clause.get("params", {}).items()))
    return f"{clause.get('kind')}, {clause.get('severity')}, weight {clause.get('weight')}" + (
        f": {params}" if params else ""
    )


def _diff_lines(diff: dict[str, Any], previous: Any, current: Any) -> list[dict[str, str]]:
    before = {c["key"]: c for c in (previous.clauses if previous else [])}
    after = {c["key"]: c for c in current.clauses}
    lines: list[dict[str, str]] = []
    for key in diff["clauses_added"]:
        lines.append({"change": "added", "label": f"clause {key}", "text": _clause_summary(after.get(key))})
    for key in diff["clauses_removed"]:
        lines.append({"change": "removed", "label": f"clause {key}", "text": _clause_summary(before.get(key))})
    for changed in diff["clauses_changed"]:
        key = changed["key"]
        for field, values in changed["changes"].items():
            if field == "params" and isinstance(values["from"], dict) and isinstance(values["to"], dict):
                old, new = values["from"], values["to"]
                for name in sorted(old.keys() | new.keys()):
                    if old.get(name) == new.get(name):
                        continue
                    lines.append(
                        {
                            "change": "changed",
                            "label": f"clause {key}{PATH_SEPARATOR}{name}",
                            "from": _plain(old[name]) if name in old else "(not set)",
                            "to": _plain(new[name]) if name in new else "(not set)",
                        }
                    )
            else:
                lines.append(
                    {
                        "change": "changed",
                        "label": f"clause {key}{PATH_SEPARATOR}{field}",
                        "from": _plain(values["from"]),
                        "to": _plain(values["to"]),
                    }
                )
    for name, values in diff["terms_changed"].items():
        lines.append(
            {
                "change": "changed",
                "label": TERM_LABELS.get(name, name),
                "from": term_text(name, values["from"], previous.terms if previous else {}),
                "to": term_text(name, values["to"], current.terms),
            }
        )
    return lines


@register.simple_tag
def negotiation_rows(proposals: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """selectors.proposals_with_diffs rows, each with display lines for its diff."""
    rows = []
    previous = None
    for index, row in enumerate(proposals):
        proposal = row["proposal"]
        rows.append(
            {
                "proposal": proposal,
                "first": previous is None,
                "latest": index == len(proposals) - 1,
                "lines": [] if previous is None else _diff_lines(row["diff"], previous, proposal),
            }
        )
        previous = proposal
    return rows


@register.simple_tag
def clause_kinds() -> list[dict[str, Any]]:
    """The clause kinds a pact may use, with their parameters (from marketplace.pacts.CLAUSE_KINDS)."""
    kinds = []
    for kind, (params_cls, method) in sorted(CLAUSE_KINDS.items()):
        fields = params_cls().fields
        kinds.append(
            {
                "kind": kind,
                "method": method,
                "help": KIND_HELP.get(kind, ""),
                "params": [{"name": name, "required": field.required} for name, field in fields.items()],
            }
        )
    return kinds


@register.filter
def iso_datetime(value: str | None) -> Any:
    """An ISO 8601 string from a report dict, as a datetime for the `date` filter."""
    import datetime

    try:
        return datetime.datetime.fromisoformat(value) if value else None
    except (TypeError, ValueError):
        return None


# --- escrow ----------------------------------------------------------------------------------

_ESCROW_BADGES = {
    "awaiting_funds": "badge-warn",
    "funded": "badge-info",
    "held": "badge-warn",
    "settled": "badge-ok",
    "cancelled": "",
    # settlement payouts and refunds
    "pending": "badge-info",
    "paid": "badge-ok",
    "failed": "badge-bad",
    "not_applicable": "",
}


def _escrow_choices() -> dict[str, dict[str, str]]:
    from escrow.models import Escrow, LedgerAccount, Settlement

    return {
        "status": dict(Escrow.Status.choices),
        "outcome": dict(Settlement.Outcome.choices),
        "reason": dict(Settlement.Reason.choices),
        "payout": dict(Settlement.PayoutStatus.choices),
        "account": dict(LedgerAccount.Kind.choices),
    }


@register.filter
def escrow_badge(status: str | None) -> str:
    return _ESCROW_BADGES.get(status or "", "")


@register.filter
def escrow_label(value: str | None, field: str) -> str:
    """The display label of an escrow report's code: status, outcome, reason, payout or account kind."""
    if not value:
        return "—"
    return _escrow_choices().get(field, {}).get(value, value.replace("_", " "))


@register.filter
def ledger_transactions(entries: list[dict[str, Any]] | None) -> list[dict[str, Any]]:
    """An escrow report's ledger legs grouped by transaction, in order, each with the sum of its
    legs (zero for every balanced transaction) and each leg's account kind."""
    kinds = _escrow_choices()["account"]
    transactions: dict[str, dict[str, Any]] = {}
    for entry in entries or []:
        txn = transactions.setdefault(
            entry["transaction"],
            {
                "key": entry["transaction"],
                "kind": entry["kind"],
                "at": entry["at"],
                "currency": entry["currency"],
                "legs": [],
                "sum": 0,
            },
        )
        kind = entry["account"].split(":", 1)[0]
        txn["legs"].append({**entry, "account_label": kinds.get(kind, kind)})
        txn["sum"] += entry["amount_minor"]
    return list(transactions.values())


@register.filter
def pending_timers(timers: list[dict[str, Any]] | None) -> list[dict[str, Any]]:
    """An escrow report's timers still to fire, each with its due time as a datetime."""
    return [{**t, "due": iso_datetime(t["due_at"])} for t in timers or [] if t["status"] == "pending"]
