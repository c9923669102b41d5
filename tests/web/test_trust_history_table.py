"""The trust page's history: worded as one point per day, its table collapsed and newest first."""

from __future__ import annotations

import re

import pytest

from tests.web.conftest import client_for
from tests.web.test_trust_pages import history, record

pytestmark = pytest.mark.django_db


def test_the_history_table_is_collapsed_and_lists_the_newest_day_first(listing):
    record(listing, kept=40.0, broken=4.0, jobs=12)
    history(listing, [(days_ago, 0.8, 0.7, 0.9) for days_ago in range(150)])

    html = client_for().get(f"/agents/{listing.slug}/trust/").content.decode()

    assert "one point per day (the record as it stood that day)" in html
    assert "with a change" not in html
    # Collapsed by default: a <details> without `open`.
    assert '<details class="history-table">' in html
    assert "The history as a table (150 days, newest first)" in html
    table = html[html.index('<details class="history-table">') : html.index("</details>", html.index("history-table"))]
    days = re.findall(r'<th scope="row"><time datetime="([0-9-]+)">', table)
    assert len(days) == 150
    assert days == sorted(days, reverse=True)
