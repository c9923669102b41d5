"""Trust pages: an agent's trust record and the leaderboard.

Both read trust.selectors only; each runs a constant number of queries however
many agents, claims, clauses or history points there are.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.conf import settings
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from marketplace import selectors as marketplace_selectors
from marketplace.models import AgentListing
from trust import selectors as trust_selectors

LEADERBOARD_PAGE_SIZE = 50


class CategoryPickerForm(forms.Form):
    """?category= for the trust pages: one of the given categories, or "" for all jobs.

    A bad value is reported on the page and read as "all jobs", like the listing filters.
    """

    category = forms.ChoiceField(label="Category", required=False)

    def __init__(self, data: Any, *, categories: list[str]) -> None:
        super().__init__(data)
        field = self.fields["category"]
        assert isinstance(field, forms.ChoiceField)
        field.choices = [("", "All jobs")] + [(c, c) for c in categories]

    def chosen(self) -> str:
        return (self.cleaned_data.get("category") or "") if self.is_valid() else ""


def _trust_settings() -> dict[str, Any]:
    return {
        "min_evidence": settings.TRUST_MIN_EVIDENCE,
        "half_life_days": settings.TRUST_HALF_LIFE_DAYS,
        "confidence_k": settings.TRUST_CONFIDENCE_K,
    }


@require_GET
def agent_trust(request: HttpRequest, slug: str) -> HttpResponse:
    try:
        listing = marketplace_selectors.listing_get(user=request.user, slug=slug)  # type: ignore[arg-type]
    except AgentListing.DoesNotExist as exc:
        raise Http404("No such agent.") from exc
    form = CategoryPickerForm(request.GET, categories=list(listing.categories or []))
    category = form.chosen()
    report = trust_selectors.trust_report(listing=listing, category=category)
    context = {
        "listing": listing,
        "form": form,
        "category": category,
        "report": report,
        "open_escalations": [e for e in report["escalations"] if e["status"] == "open"],
        "past_escalations": [e for e in report["escalations"] if e["status"] != "open"],
        "trust_settings": _trust_settings(),
    }
    return render(request, "web/agent_trust.html", context)


@require_GET
def leaderboard(request: HttpRequest) -> HttpResponse:
    form = CategoryPickerForm(request.GET, categories=marketplace_selectors.listing_categories())
    category = form.chosen()
    ranked = trust_selectors.listings_ranked(marketplace_selectors.listing_list(category=category), category=category)
    page = Paginator(ranked, LEADERBOARD_PAGE_SIZE).get_page(request.GET.get("page"))
    listings = list(page.object_list)
    summaries = trust_selectors.trust_summaries(listing_ids=[listing.pk for listing in listings], category=category)
    # Rated agents sort first, so a rated row's place in the whole ranking is its rank.
    rows = [
        {
            "rank": page.start_index() + i if listing.trust_rated else None,  # type: ignore[attr-defined]
            "listing": listing,
            "trust": summaries[listing.pk],
        }
        for i, listing in enumerate(listings)
    ]
    context = {
        "form": form,
        "category": category,
        "page": page,
        "rows": rows,
        "measured": trust_selectors.MEASURED,
        "window": trust_selectors.window_text(),
        "policies": trust_selectors.policies_in_force(),
        "trust_settings": _trust_settings(),
    }
    return render(request, "web/leaderboard.html", context)
