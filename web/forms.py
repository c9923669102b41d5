from __future__ import annotations

import json
import re
from typing import Any

from django import forms
from django.contrib.auth.forms import UserCreationForm
from django.core.validators import URLValidator

from core.errors import DomainError
from core.models import User
from core.money import SUPPORTED_CURRENCIES, format_minor
from marketplace.models import AgentListing, Engagement, PactTemplate


class SignUpForm(UserCreationForm):
    email = forms.EmailField(max_length=254, help_text="For receipts and dispute notices.")
    role = forms.ChoiceField(
        choices=User.Role.choices,
        widget=forms.RadioSelect,
        initial=User.Role.BUYER,
        help_text="Buyers hire agents; sellers publish them.",
    )

    class Meta(UserCreationForm.Meta):
        model = User
        fields = ("username", "email", "role")

    def clean_username(self) -> str:
        username = self.cleaned_data["username"]
        if User.objects.filter(username__iexact=username).exists():
            raise forms.ValidationError("That username is taken.")
        return username


# --- marketplace forms -----------------------------------------------------------------
#
# Forms only parse what a person typed into the shapes the services take
# (strings -> lists, major units -> minor units, JSON text -> objects). Every
# business rule stays in the services; their errors come back through
# `add_service_error` / `add_pact_errors` and are shown beside the fields.

# Currencies whose minor unit is the unit itself (kept in step with core.money.format_minor).
ZERO_DECIMAL_CURRENCIES = frozenset({"jpy"})
MAX_PRICE_MAJOR = 1_000_000_000
_PRICE_RE = re.compile(r"^(?P<major>\d{1,10})(?:[.,](?P<minor>\d{1,2}))?$")
_LISTING_STATUS_CHOICES = [
    (AgentListing.Status.PUBLISHED, "Published: buyers can find and hire it"),
    (AgentListing.Status.DRAFT, "Draft: only you can see it"),
]
_CURRENCY_CHOICES = [(code, code.upper()) for code in sorted(SUPPORTED_CURRENCIES)]


def minor_to_major_text(amount: int, currency: str) -> str:
    """The form's text for an amount of minor units: 4950, usd -> '49.50'."""
    if currency.lower() in ZERO_DECIMAL_CURRENCIES:
        return str(amount)
    return f"{amount // 100}.{amount % 100:02d}"


def parse_price(text: str, currency: str) -> int:
    """'49.5' usd -> 4950 with integer arithmetic only; raises forms.ValidationError."""
    match = _PRICE_RE.match(text.strip().replace("\u00a0", "").replace(" ", ""))
    if match is None:
        raise forms.ValidationError("Enter an amount like 49.00 (digits, at most two decimals).")
    major, minor = int(match["major"]), match["minor"]
    if major > MAX_PRICE_MAJOR:
        raise forms.ValidationError(f"At most {MAX_PRICE_MAJOR:,}.")
    if currency.lower() in ZERO_DECIMAL_CURRENCIES:
        if minor is not None and int(minor) != 0:
            raise forms.ValidationError(f"{currency.upper()} has no decimals.")
        amount = major
    else:
        amount = major * 100 + (int(minor.ljust(2, "0")) if minor else 0)
    if amount <= 0:
        raise forms.ValidationError("The price must be more than zero.")
    return amount


def split_list(text: str, *, separator: str | None = None) -> list[str]:
    """Comma- or line-separated text -> list of non-empty stripped items."""
    parts = text.split(separator) if separator else text.splitlines()
    return [part.strip() for part in parts if part.strip()]


def _position_label(index: int, items: Any) -> tuple[str, Any]:
    submitted = items[index] if isinstance(items, list) and 0 <= index < len(items) else None
    label = str(index + 1)
    if isinstance(submitted, dict) and isinstance(submitted.get("key"), str) and submitted["key"]:
        label = f"{label} ({submitted['key']})"
    return label, submitted


def error_lines(detail: Any, path: tuple[str, ...] = (), items: Any = None) -> list[tuple[tuple[str, ...], str]]:
    """Flatten DRF's nested error detail into (path, message) pairs.

    DRF reports errors of list items as a dict keyed by position (or as a list
    aligned with the input). Positions become 1-based numbers, with the clause
    key when the submitted item had one, so a seller can find clause "3 (no-secrets)".
    """
    if isinstance(detail, dict):
        lines = []
        for key, value in detail.items():
            if isinstance(key, int):
                label, submitted = _position_label(key, items)
                lines += error_lines(value, (*path, label), submitted)
            else:
                sub_items = items.get(key) if isinstance(items, dict) else None
                lines += error_lines(value, path if key == "non_field_errors" else (*path, str(key)), sub_items)
        return lines
    if isinstance(detail, list):
        if all(not isinstance(item, (dict, list)) for item in detail):
            return [(path, str(message)) for message in detail]
        lines = []
        for index, value in enumerate(detail):
            label, submitted = _position_label(index, items)
            lines += error_lines(value, (*path, label), submitted)
        return lines
    return [(path, str(detail))]


PATH_SEPARATOR = " \u203a "  # " > " as a typographic single angle quote


def format_error_line(path: tuple[str, ...], message: str) -> str:
    return f"{PATH_SEPARATOR.join(path)}: {message}" if path else message


class ServiceErrorsMixin:
    def add_service_error(self, exc: DomainError) -> None:
        self.add_error(None, exc.detail)  # type: ignore[attr-defined]


class PriceCurrencyMixin(forms.Form):
    """A price typed in major units next to its currency; cleaned_data gains `price_minor`."""

    price = forms.CharField(
        label="Price",
        max_length=20,
        help_text="In the currency's main unit with up to two decimals, e.g. 49.00 (stored exactly, in cents).",
        widget=forms.TextInput(attrs={"inputmode": "decimal", "autocomplete": "off"}),
    )
    currency = forms.ChoiceField(choices=_CURRENCY_CHOICES, initial="usd")

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if "price" in cleaned and "currency" in cleaned:
            try:
                cleaned["price_minor"] = parse_price(cleaned["price"], cleaned["currency"])
            except forms.ValidationError as exc:
                self.add_error("price", exc)
        return cleaned


class ListingSearchForm(forms.Form):
    SORT_CHOICES = [
        ("trust", "Most reliable (compliance lower bound)"),
        ("recent", "Newest"),
        ("price", "Price: low to high"),
        ("-price", "Price: high to low"),
    ]

    q = forms.CharField(label="Search", required=False, max_length=200)
    category = forms.ChoiceField(label="Category", required=False)
    sort = forms.ChoiceField(label="Sort by", required=False, choices=SORT_CHOICES)

    def __init__(self, data: Any = None, *, categories: list[str]) -> None:
        if data is not None and not data.get("sort"):
            # The default ordering, shown as chosen in the select.
            data = data.copy()
            data["sort"] = "trust"
        super().__init__(data)
        category = self.fields["category"]
        assert isinstance(category, forms.ChoiceField)
        category.choices = [("", "All categories")] + [(c, c) for c in categories]

    def filters(self) -> dict[str, str]:
        """The valid filters; a bad value falls back to its default rather than failing the page."""
        self.is_valid()
        cleaned = getattr(self, "cleaned_data", {})
        return {
            "q": cleaned.get("q") or "",
            "category": cleaned.get("category") or "",
            "ordering": cleaned.get("sort") or "trust",
        }


class HireForm(ServiceErrorsMixin, forms.Form):
    pact = forms.ChoiceField(
        label="Pact",
        widget=forms.RadioSelect,
        help_text="The pact the negotiation starts from; you can counter its terms.",
    )
    task = forms.CharField(
        label="Task",
        max_length=50_000,
        widget=forms.Textarea(attrs={"rows": 5}),
        help_text="What the agent should do. The seller sees it before accepting.",
    )
    category = forms.ChoiceField(
        label="Kind of job",
        required=False,
        help_text="The agent's trust record keeps evidence per kind of job.",
    )

    def __init__(
        self,
        data: Any = None,
        *,
        templates: list[PactTemplate],
        categories: list[str] | None = None,
        prefix: str | None = None,
    ) -> None:
        super().__init__(data, prefix=prefix)
        category = self.fields["category"]
        assert isinstance(category, forms.ChoiceField)
        category.choices = [(c, c) for c in categories or []]
        if len(category.choices) < 2:
            category.widget = forms.HiddenInput()
        self.templates = {str(t.pk): t for t in templates}
        pact = self.fields["pact"]
        assert isinstance(pact, forms.ChoiceField)
        pact.choices = [(str(t.pk), _template_label(t)) for t in templates]
        if templates:
            pact.initial = str(templates[0].pk)

    def clean_pact(self) -> PactTemplate:
        return self.templates[self.cleaned_data["pact"]]


def _template_label(template: PactTemplate) -> str:
    versions = getattr(template, "published_versions", None) or []
    if not versions:
        return template.name
    latest = versions[0]
    return f"{template.name} v{latest.version} · {format_minor(latest.terms['price_minor'], latest.terms['currency'])}"


class ListingForm(ServiceErrorsMixin, PriceCurrencyMixin):
    name = forms.CharField(max_length=120)
    description = forms.CharField(required=False, max_length=10_000, widget=forms.Textarea(attrs={"rows": 5}))
    categories = forms.CharField(
        required=False,
        max_length=600,
        help_text="Comma-separated, e.g. research, summaries. Stored as lowercase slugs; at most 10.",
    )
    endpoint_url = forms.URLField(
        label="Endpoint URL",
        required=False,
        max_length=500,
        assume_scheme="https",
        validators=[URLValidator(schemes=["http", "https"])],
        help_text="Optional. Pactum calls it with an HMAC-signed request when an engagement is funded.",
    )
    status = forms.ChoiceField(choices=_LISTING_STATUS_CHOICES, widget=forms.RadioSelect, initial="published")

    field_order = ["name", "description", "categories", "price", "currency", "endpoint_url", "status"]

    def __init__(self, *args: Any, lock_status: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if lock_status:
            # A suspended listing's status is Pactum's to change, not the seller's.
            del self.fields["status"]

    @classmethod
    def initial_for(cls, listing: AgentListing) -> dict[str, Any]:
        return {
            "name": listing.name,
            "description": listing.description,
            "categories": ", ".join(listing.categories),
            "price": minor_to_major_text(listing.price_minor, listing.currency),
            "currency": listing.currency,
            "endpoint_url": listing.endpoint_url,
            "status": listing.status,
        }

    def clean_categories(self) -> list[str]:
        categories = split_list(self.cleaned_data["categories"], separator=",")
        if any(len(c) > 50 for c in categories):
            raise forms.ValidationError("Each category is at most 50 characters.")
        return categories

    def service_kwargs(self) -> dict[str, Any]:
        data = self.cleaned_data
        return {
            "name": data["name"],
            "description": data["description"],
            "categories": data["categories"],
            "price_minor": data["price_minor"],
            "currency": data["currency"],
            "endpoint_url": data["endpoint_url"],
            **({"status": data["status"]} if "status" in data else {}),
        }


class BenchmarkClaimForm(ServiceErrorsMixin, forms.Form):
    benchmark = forms.CharField(max_length=120, help_text="The benchmark's public name, e.g. SWE-bench Verified.")
    score = forms.FloatField(min_value=-1e9, max_value=1e9, help_text="As the benchmark reports it (e.g. 62.4).")
    measured_on = forms.DateField(label="Measured on", widget=forms.DateInput(attrs={"type": "date"}))
    source_url = forms.URLField(
        label="Source URL",
        required=False,
        max_length=500,
        assume_scheme="https",
        help_text="Where buyers can check the claim (leaderboard, paper, report).",
    )
    categories = forms.CharField(required=False, max_length=600, help_text="Comma-separated, e.g. coding, research.")

    def clean_categories(self) -> list[str]:
        return split_list(self.cleaned_data["categories"], separator=",")


class AgentTokenForm(ServiceErrorsMixin, forms.Form):
    name = forms.CharField(max_length=100, help_text="What this token is for, e.g. production worker.")


EXAMPLE_CLAUSES: list[dict[str, Any]] = [
    {
        "key": "cites-sources",
        "kind": "citation_rate",
        "params": {"min_rate": 0.9, "allowed_domains": ["arxiv.org", "nature.com"]},
        "weight": 3,
        "severity": "major",
    },
    {"key": "fast", "kind": "max_latency_ms", "params": {"max_ms": 30000}, "weight": 1, "severity": "minor"},
    {
        "key": "no-secrets",
        "kind": "regex_forbidden",
        "params": {"pattern": "(?i)(api[_-]?key|password)\\s*[:=]"},
        "weight": 2,
        "severity": "critical",
    },
    {
        "key": "quality",
        "kind": "rubric",
        "params": {"criteria": ["Answers the question asked", "Every claim names its source"], "min_score": 0.7},
        "weight": 2,
        "severity": "major",
    },
]


class PactContentForm(ServiceErrorsMixin, PriceCurrencyMixin):
    """Clauses as JSON text plus the terms as one field each."""

    clauses = forms.CharField(
        label="Clauses (JSON)",
        widget=forms.Textarea(attrs={"rows": 18, "class": "code", "spellcheck": "false"}),
        help_text="A JSON list of clauses: key, kind, params, weight (1-1000), severity (critical, major, minor).",
    )
    settlement = forms.ChoiceField(
        initial="all_or_nothing",
        choices=[
            ("all_or_nothing", "All or nothing"),
            ("pro_rata", "Pro rata by clause weight"),
        ],
        help_text="A failed critical clause always refunds in full.",
    )
    review_window_hours = forms.IntegerField(label="Review window (hours)", initial=72)
    delivery_deadline_hours = forms.IntegerField(label="Delivery deadline (hours)", initial=48)
    dispute_response_window_hours = forms.IntegerField(
        label="Dispute reply window (hours)", initial=48, help_text="How long the other side has to answer a dispute."
    )
    platform_fee_bps = forms.IntegerField(
        label="Platform fee (basis points)", initial=1000, help_text="100 bps = 1 %. Taken from the seller's share."
    )

    TERM_FIELDS = (
        "settlement",
        "review_window_hours",
        "delivery_deadline_hours",
        "dispute_response_window_hours",
        "platform_fee_bps",
    )

    @classmethod
    def initial_for(cls, clauses: list[dict[str, Any]], terms: dict[str, Any]) -> dict[str, Any]:
        shown = [{k: v for k, v in clause.items() if k != "method"} for clause in clauses]
        initial = {"clauses": json.dumps(shown, indent=2, ensure_ascii=False)}
        initial["price"] = minor_to_major_text(terms["price_minor"], terms["currency"])
        initial["currency"] = terms["currency"]
        initial.update({name: terms[name] for name in cls.TERM_FIELDS if name in terms})
        return initial

    def term_fields(self) -> list[forms.BoundField]:
        return [self["price"], self["currency"], *(self[name] for name in self.TERM_FIELDS)]

    def clean_clauses(self) -> Any:
        try:
            value = json.loads(self.cleaned_data["clauses"])
        except json.JSONDecodeError as exc:
            raise forms.ValidationError(f"Not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno}).") from exc
        if not isinstance(value, list):
            raise forms.ValidationError("Clauses are a JSON list: [ {…}, {…} ].")
        return value

    def terms(self) -> dict[str, Any]:
        data = self.cleaned_data
        return {
            "price_minor": data["price_minor"],
            "currency": data["currency"],
            **{name: data[name] for name in self.TERM_FIELDS},
        }

    def add_pact_errors(self, detail: Any) -> None:
        """Show normalize_pact's nested errors beside the clauses field and the term fields."""
        detail = detail if isinstance(detail, dict) else {"non_field_errors": detail}
        submitted = {"clauses": self.cleaned_data.get("clauses")}
        for path, message in error_lines({"clauses": detail.get("clauses", [])}, items=submitted):
            self.add_error("clauses", format_error_line(path, message))
        for path, message in error_lines(detail.get("terms", {})):
            field = {"price_minor": "price"}.get(path[0], path[0]) if path else None
            if field in self.fields:
                self.add_error(field, message)
            else:
                self.add_error(None, format_error_line(("terms", *path), message))
        for key, value in detail.items():
            if key not in ("clauses", "terms"):
                for path, message in error_lines(value, (key,) if key != "non_field_errors" else ()):
                    self.add_error(None, format_error_line(path, message))


class PactForm(PactContentForm):
    name = forms.CharField(
        label="Pact name",
        max_length=120,
        help_text="Publishing under an existing pact's name adds a new version of it.",
    )

    field_order = ["name", "clauses", "price", "currency", *PactContentForm.TERM_FIELDS]


class ProposalForm(PactContentForm):
    note = forms.CharField(
        required=False,
        max_length=1000,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="Optional: why you propose this.",
    )

    field_order = ["clauses", "price", "currency", *PactContentForm.TERM_FIELDS, "note"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("prefix", "proposal")
        super().__init__(*args, **kwargs)


class AcceptForm(ServiceErrorsMixin, forms.Form):
    proposal = forms.IntegerField(min_value=1, widget=forms.HiddenInput)


class CancelForm(ServiceErrorsMixin, forms.Form):
    reason = forms.CharField(label="Reason (optional)", required=False, max_length=300)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("prefix", "cancel")
        super().__init__(*args, **kwargs)


class ReleaseForm(ServiceErrorsMixin, forms.Form):
    """Release now. After a failed evaluation the buyer must tick that they know it failed."""

    CONFIRM_LABEL = "I know the job failed and still want to pay the seller"
    CONFIRM_MISSING = "The judges found this job failed. Tick the box to confirm you still want to pay the seller."

    confirm_failed = forms.BooleanField(label=CONFIRM_LABEL, required=False)

    def __init__(self, *args: Any, failed: bool = False, **kwargs: Any) -> None:
        kwargs.setdefault("prefix", "release")
        super().__init__(*args, **kwargs)
        self.failed = failed
        if not failed:
            del self.fields["confirm_failed"]

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if self.failed and not cleaned.get("confirm_failed"):
            self.add_error("confirm_failed", self.CONFIRM_MISSING)
        return cleaned


class DeliverForm(ServiceErrorsMixin, forms.Form):
    output = forms.CharField(widget=forms.Textarea(attrs={"rows": 8}), max_length=200_000)
    output_is_json = forms.BooleanField(
        label="The output is JSON", required=False, help_text="Tick when a json_schema clause checks the output."
    )
    citations = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="One URL or reference per line.",
    )
    actions = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="The agent's action log, one action name per line (e.g. search).",
    )
    latency_ms = forms.IntegerField(
        label="Latency (ms)", required=False, min_value=0, max_value=86_400_000, help_text="How long the job took."
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("prefix", "deliver")
        super().__init__(*args, **kwargs)

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if cleaned.get("output_is_json") and "output" in cleaned:
            try:
                cleaned["output"] = json.loads(cleaned["output"])
            except json.JSONDecodeError as exc:
                self.add_error("output", f"Not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno}).")
        return cleaned

    def service_kwargs(self) -> dict[str, Any]:
        data = self.cleaned_data
        return {
            "output": data["output"],
            "citations": split_list(data["citations"]),
            "actions": split_list(data["actions"]),
            "latency_ms": data["latency_ms"],
        }


class EngagementFilterForm(forms.Form):
    status = forms.ChoiceField(label="Status", required=False, choices=[("", "Any status"), *Engagement.Status.choices])

    def status_filter(self) -> str:
        return self.cleaned_data.get("status", "") if self.is_valid() else ""
