"""A rejected dispute form lands on the dispute panel: the forms post to `...#dispute`, and the
panel opens with a summary of what to fix, linked to the fields."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from escrow import disputes
from escrow.models import Dispute
from tests.escrow.conftest import evaluated_engagement
from tests.web.conftest import client_for

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def media(settings, tmp_path: Path) -> Path:
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


def panel_of(body: str) -> str:
    start = body.index('<section class="card dispute-panel" id="dispute"')
    return body[start : body.index("</section>", start)]


def test_the_open_form_posts_to_the_panels_fragment():
    engagement, _, _ = evaluated_engagement(good=True)
    body = client_for(engagement.buyer).get(f"/engagements/{engagement.pk}/").content.decode()
    assert f'action="/engagements/{engagement.pk}/disputes/#dispute"' in panel_of(body)
    assert 'id="dispute-errors"' not in body


def test_a_blank_reason_is_summarised_at_the_top_of_the_panel_and_linked_to_its_field():
    engagement, _, _ = evaluated_engagement(good=True)

    response = client_for(engagement.buyer).post(f"/engagements/{engagement.pk}/disputes/", {"reason": ""})

    assert response.status_code == 400
    panel = panel_of(response.content.decode())
    summary = panel.index('id="dispute-errors"')
    assert summary < panel.index("<form")  # above the form, right under the heading
    assert "Your dispute was not opened." in panel
    assert '<a href="#id_reason">Reason: This field is required.</a>' in panel
    assert '<details class="dispute-open" open>' in panel
    assert not Dispute.objects.exists()


def test_a_refused_file_is_summarised_too():
    engagement, _, _ = evaluated_engagement(good=True)

    response = client_for(engagement.buyer).post(
        f"/engagements/{engagement.pk}/disputes/",
        {"reason": "See the file.", "attachments": [SimpleUploadedFile("photo.png", b"%PDF-1.4 not a picture")]},
    )

    assert response.status_code == 415
    panel = panel_of(response.content.decode())
    summary = panel[panel.index('id="dispute-errors"') : panel.index("</div>", panel.index('id="dispute-errors"'))]
    assert "the content is application/pdf" in summary
    assert not Dispute.objects.exists()


def test_a_blank_answer_is_summarised_and_the_answer_form_posts_to_the_fragment():
    engagement, _, _ = evaluated_engagement(good=True)
    dispute = disputes.dispute_open(
        engagement_id=engagement.pk, actor=engagement.buyer, reason="Invented citations.", evidence="", files=[]
    )
    seller = client_for(engagement.listing.seller)
    page = seller.get(f"/engagements/{engagement.pk}/").content.decode()
    assert f'action="/disputes/{dispute.pk}/answer/#dispute"' in page

    response = seller.post(f"/disputes/{dispute.pk}/answer/", {"answer": ""})

    assert response.status_code == 400
    panel = panel_of(response.content.decode())
    assert "Your answer was not sent." in panel
    assert '<a href="#id_answer">Your answer: This field is required.</a>' in panel
