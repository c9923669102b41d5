import pytest

from marketplace.models import PactVersion

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client_logged_in(client, staff):
    client.force_login(staff)
    return client


def test_admin_shows_a_locked_pact_version_read_only(admin_client_logged_in, agreed):
    version = agreed.pact_version
    url = f"/admin/marketplace/pactversion/{version.pk}/change/"
    page = admin_client_logged_in.get(url)
    assert page.status_code == 200
    content = page.content.decode()
    assert version.content_hash in content
    assert 'name="_save"' not in content  # no save button: read-only

    posted = admin_client_logged_in.post(url, {"version": "9.9.9", "terms": "{}"})
    assert posted.status_code == 403
    assert PactVersion.objects.get(pk=version.pk).version == version.version

    assert (
        admin_client_logged_in.post(f"/admin/marketplace/pactversion/{version.pk}/delete/", {"post": "yes"}).status_code
        == 403
    )
    assert admin_client_logged_in.get("/admin/marketplace/pactversion/add/").status_code == 403


@pytest.mark.parametrize(
    "model",
    [
        "agentlisting",
        "pacttemplate",
        "pactversion",
        "engagement",
        "deliverable",
        "deliveryattempt",
        "agenttoken",
        "benchmarkclaim",
    ],
)
def test_admin_changelists_load(admin_client_logged_in, active, model):
    assert admin_client_logged_in.get(f"/admin/marketplace/{model}/").status_code == 200


def test_admin_engagement_page_shows_proposals_and_history(admin_client_logged_in, active):
    page = admin_client_logged_in.get(f"/admin/marketplace/engagement/{active.pk}/change/")
    assert page.status_code == 200
    assert "negotiating" in page.content.decode()
