"""Django admin: every model is there; disputes, their history and files are read-only."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.apps import apps
from django.contrib import admin
from django.core.files.uploadedfile import SimpleUploadedFile

from escrow import disputes
from tests.escrow.conftest import evaluated_engagement
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

# Shown as inlines of their parent (Evaluation), not on a page of their own.
INLINE_ONLY = {"trust.ClauseResult"}


def test_every_model_of_the_project_is_in_the_admin():
    missing = {
        f"{app}.{model.__name__}"
        for app in ("core", "marketplace", "trust", "escrow")
        for model in apps.get_app_config(app).get_models()
        if model not in admin.site._registry
    }
    assert missing <= INLINE_ONLY


@pytest.mark.parametrize(
    "model",
    [
        "escrow/dispute",
        "escrow/disputestatuschange",
        "escrow/disputeevidencefile",
        "escrow/escrowstatuschange",
        "marketplace/proposal",
        "marketplace/engagementstatuschange",
    ],
)
def test_dispute_records_are_read_only_in_the_admin(client, settings, tmp_path: Path, model):
    settings.MEDIA_ROOT = tmp_path
    engagement, _, _ = evaluated_engagement(good=True)
    disputes.dispute_open(
        engagement_id=engagement.pk,
        actor=engagement.buyer,
        reason="Invented sources.",
        files=[SimpleUploadedFile("a.txt", b"plain text")],
    )
    client.force_login(UserFactory.create(role="", is_staff=True, is_superuser=True))
    listing = client.get(f"/admin/{model}/")
    assert listing.status_code == 200
    assert client.get(f"/admin/{model}/add/").status_code == 403
    model_class = apps.get_model(*model.split("/"))
    obj = model_class.objects.first()
    change = client.get(f"/admin/{model}/{obj.pk}/change/")
    assert change.status_code == 200
    assert b'name="_save"' not in change.content
    assert client.post(f"/admin/{model}/{obj.pk}/delete/", {"post": "yes"}).status_code == 403
