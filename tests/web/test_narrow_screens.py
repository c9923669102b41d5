"""Wide tables on the trust page and the leaderboard scroll inside their card with a hint, and
the history plot marks the ticks a narrow screen may drop."""

from __future__ import annotations

import re

import pytest

from tests.trust.conftest import active_engagement, deliver
from tests.trust.test_pipeline import run_all
from tests.web.conftest import client_for
from tests.web.test_trust_pages import history, record
from trust import services as trust_services
from web.templatetags.trust_widgets import history_plot

pytestmark = pytest.mark.django_db

HINT = '<p class="scroll-hint" aria-hidden="true">Scroll sideways for more columns →</p>'


def wrapped(html: str, table_class: str) -> bool:
    """Whether the table sits directly inside a horizontally scrolling wrapper."""
    return re.search(rf'<div class="table-wrap">\s*<table class="{table_class}">', html) is not None


def test_the_trust_pages_clause_table_scrolls_with_a_hint():
    engagement = active_engagement()
    run_all(trust_services.evaluation_start(deliverable_id=deliver(engagement).pk))

    html = client_for().get(f"/agents/{engagement.listing.slug}/trust/").content.decode()

    assert wrapped(html, "clause-stats")
    assert HINT + '\n    <div class="table-wrap">\n      <table class="clause-stats">' in html


def test_the_leaderboard_table_scrolls_inside_its_card_with_a_hint(listing):
    record(listing, kept=40.0, broken=4.0, jobs=12)

    html = client_for().get("/leaderboard/").content.decode()

    assert wrapped(html, "leaderboard")
    assert '<div class="card leaderboard-card">\n    ' + HINT in html


def test_the_history_plot_marks_the_minor_ticks():
    points = [
        {"day": f"2026-03-{d:02d}", "mean": 0.8, "lower": 0.7, "upper": 0.9, "confidence": 0.5} for d in range(1, 31)
    ]
    svg = str(history_plot(points, name="Beacon"))
    minor = re.findall(r'<text class="hp-label hp-minor"[^>]*>([^<]+)</text>', svg)
    assert minor == ["25%", "75%", "16 Mar 2026"]
    major = re.findall(r'<text class="hp-label"[^>]*>([^<]+)</text>', svg)
    assert major == ["0%", "50%", "100%", "1 Mar 2026", "30 Mar 2026"]


def test_the_trust_page_keeps_the_plot(listing):
    record(listing, kept=40.0, broken=4.0, jobs=12)
    history(listing, [(2, 0.7, 0.6, 0.8), (1, 0.75, 0.65, 0.84), (0, 0.8, 0.7, 0.86)])
    html = client_for().get(f"/agents/{listing.slug}/trust/").content.decode()
    assert '<svg class="history-plot"' in html
