import pytest

from config.celery import app as celery_app

pytestmark = pytest.mark.django_db


def test_healthz_is_200_when_database_and_broker_answer(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json()["database"]["ok"] is True
    assert response.json()["broker"]["ok"] is True
    assert response.json()["status"] == "ok"


def test_healthz_is_503_when_the_broker_stops(client, redis_server, monkeypatch):
    # Point the app at a Redis of this test's own (Celery resolves the write URL at start-up).
    monkeypatch.setattr(celery_app.conf, "broker_url", redis_server.url)
    monkeypatch.setattr(celery_app.conf, "broker_write_url", redis_server.url)
    assert client.get("/healthz").status_code == 200

    redis_server.stop()

    response = client.get("/healthz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["database"]["ok"] is True
    assert body["broker"]["ok"] is False
    assert "onnection" in body["broker"]["detail"]


def test_healthz_is_public_and_not_cached(client):
    response = client.get("/healthz")
    assert "no-cache" in response["Cache-Control"]


def test_api_docs_and_schema_are_served_offline(client):
    schema = client.get("/api/schema/")
    assert schema.status_code == 200
    assert b"/api/v1/auth/register" in schema.content
    docs = client.get("/api/docs/")
    assert docs.status_code == 200
    html = docs.content.decode()
    # Swagger UI comes from the app's own static files, not a CDN.
    assert "/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js" in html
    assert "cdn" not in html.lower()


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", "/api/v1/agents/abc/trust/"),
        ("get", "/api/v1/disputes/abc/"),
        ("post", "/api/v1/engagements/abc/disputes/"),
        ("get", "/api/v1/nonexistent/"),
        ("delete", "/api/nothing"),
    ],
)
def test_unknown_api_paths_are_json_404s(client, method, path):
    response = getattr(client, method)(path)
    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert response.json()["detail"] == "Not found."


@pytest.mark.parametrize("path", ["/api/v1/agents", "/api/docs", "/api/schema", "/api/v1/leaderboard"])
def test_a_real_api_path_without_its_slash_redirects(client, path):
    response = client.get(path + "?page=2")
    assert response.status_code == 301
    assert response["Location"] == path + "/?page=2"


def test_a_post_without_the_slash_names_the_endpoint(client):
    response = client.post("/api/v1/engagements", {}, content_type="application/json")
    assert response.status_code == 404
    assert "/api/v1/engagements/ (with a trailing slash)" in response.json()["detail"]
