"""The dispute API: the representation, who sees what, bad input as a 4xx with `detail`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test.utils import CaptureQueriesContext

from core.evidence import GENESIS_HASH, record_hash
from core.models import EvidenceRecord
from escrow.models import Dispute, DisputeEvidenceFile, LedgerEntry, Settlement
from tests.escrow.conftest import evaluated_engagement
from tests.escrow.test_api import client_for
from tests.factories import BuyerFactory, SellerFactory, UserFactory

pytestmark = pytest.mark.django_db

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
PDF = b"%PDF-1.4\n1 0 obj\n<<>>\nendobj\n"


@pytest.fixture(autouse=True)
def media(settings, tmp_path: Path) -> Path:
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


@pytest.fixture
def staff():
    return UserFactory.create(role="", is_staff=True)


def open_over_api(engagement, user=None, **body):
    payload = {"reason": "Half the claims carry no source.", "evidence": "Claims 2 and 4.", **body}
    return client_for(user or engagement.buyer).post(
        f"/api/v1/engagements/{engagement.pk}/disputes/", payload, format="json"
    )


def test_the_buyer_opens_a_dispute_and_both_parties_see_it_in_the_engagement():
    engagement, _, _ = evaluated_engagement(good=True)
    response = open_over_api(engagement)
    assert response.status_code == 201, response.content
    body = response.json()
    assert {k: body[k] for k in ("engagement", "status", "opened_by", "reason", "evidence", "answer", "ruling")} == {
        "engagement": engagement.pk,
        "status": "open",
        "opened_by": "buyer",
        "reason": "Half the claims carry no source.",
        "evidence": "Claims 2 and 4.",
        "answer": None,
        "ruling": None,
    }
    for user in (engagement.buyer, engagement.listing.seller):
        detail = client_for(user).get(f"/api/v1/engagements/{engagement.pk}/").json()
        assert detail["status"] == "disputed"
        assert detail["dispute"]["id"] == body["id"]
        assert detail["escrow"]["status"] == "held"


def test_the_engagement_detail_has_no_dispute_until_one_is_opened():
    engagement, _, _ = evaluated_engagement(good=True)
    assert client_for(engagement.buyer).get(f"/api/v1/engagements/{engagement.pk}/").json()["dispute"] is None


def queries(client, url) -> int:
    with CaptureQueriesContext(connection) as captured:
        assert client.get(url).status_code == 200
    return len(captured.captured_queries)


def test_the_engagement_detail_reads_a_fixed_number_of_queries():
    engagement, _, _ = evaluated_engagement(good=True)
    dispute_id = open_over_api(engagement).json()["id"]
    client = client_for(engagement.listing.seller)
    url = f"/api/v1/engagements/{engagement.pk}/"
    client.get(url)
    before = queries(client, url)
    client.post(
        f"/api/v1/disputes/{dispute_id}/answer/",
        {
            "answer": "Every claim is cited.",
            "files": [SimpleUploadedFile("a.png", PNG), SimpleUploadedFile("b.pdf", PDF)],
        },
        format="multipart",
    )
    assert queries(client, url) == before


def test_answer_and_withdraw_over_the_api():
    engagement, _, _ = evaluated_engagement(good=True)
    dispute_id = open_over_api(engagement).json()["id"]
    answered = client_for(engagement.listing.seller).post(
        f"/api/v1/disputes/{dispute_id}/answer/", {"answer": "Every claim is cited."}, format="json"
    )
    assert answered.status_code == 200, answered.content
    assert (answered.json()["status"], answered.json()["answer"]) == ("answered", "Every claim is cited.")
    refused = client_for(engagement.listing.seller).post(f"/api/v1/disputes/{dispute_id}/withdraw/", {}, format="json")
    assert refused.status_code == 403
    assert refused.json()["detail"]
    withdrawn = client_for(engagement.buyer).post(
        f"/api/v1/disputes/{dispute_id}/withdraw/", {"note": "Fair enough."}, format="json"
    )
    assert withdrawn.status_code == 200
    assert withdrawn.json()["status"] == "withdrawn"


def test_only_staff_see_the_queue_and_rule(staff):
    engagement, escrow, _ = evaluated_engagement(good=True)
    dispute_id = open_over_api(engagement).json()["id"]
    for user in (engagement.buyer, engagement.listing.seller, BuyerFactory.create()):
        listing = client_for(user).get("/api/v1/disputes/")
        assert listing.status_code == 403
        assert listing.json()["detail"]
    assert client_for(None).get("/api/v1/disputes/").status_code == 401
    ruling = {"outcome": "split", "seller_share_bps": 5000, "rationale": "Half."}
    for user in (engagement.buyer, engagement.listing.seller):
        response = client_for(user).post(f"/api/v1/disputes/{dispute_id}/rule/", ruling, format="json")
        assert response.status_code == 403
    assert (
        client_for(BuyerFactory.create())
        .post(f"/api/v1/disputes/{dispute_id}/rule/", ruling, format="json")
        .status_code
        == 404
    )
    assert not Settlement.objects.exists()

    queue = client_for(staff).get("/api/v1/disputes/")
    assert queue.status_code == 200
    assert [d["id"] for d in queue.json()["results"]] == [dispute_id]
    response = client_for(staff).post(f"/api/v1/disputes/{dispute_id}/rule/", ruling, format="json")
    assert response.status_code == 200, response.content
    ruled = response.json()
    assert ruled["status"] == "ruled"
    assert ruled["ruling"]["outcome"] == "split"
    assert ruled["ruling"]["seller_share_bps"] == 5000
    assert ruled["ruling"]["rationale"] == "Half."
    assert ruled["ruling"]["ruled_by"] == staff.username
    assert ruled["ruling"]["ruled_at"]
    settlement = Settlement.objects.get(escrow=escrow)
    assert (settlement.seller_gross_minor, settlement.buyer_refund_minor) == (2500, 2500)
    # The active queue is empty now; the ruled dispute is there under its status.
    assert client_for(staff).get("/api/v1/disputes/").json()["count"] == 0
    assert client_for(staff).get("/api/v1/disputes/?status=ruled").json()["count"] == 1
    assert client_for(staff).get("/api/v1/disputes/?status=bogus").status_code == 400


def test_the_queue_reads_a_fixed_number_of_queries(staff):
    for _ in range(2):
        engagement, _, _ = evaluated_engagement(good=True)
        open_over_api(engagement)
    client = client_for(staff)
    client.get("/api/v1/disputes/")  # warm
    n = queries(client, "/api/v1/disputes/")
    for _ in range(3):
        engagement, _, _ = evaluated_engagement(good=True)
        open_over_api(engagement)
        client_for(engagement.listing.seller).post(
            f"/api/v1/disputes/{Dispute.objects.latest('id').pk}/answer/",
            {"answer": "No.", "files": [SimpleUploadedFile("a.png", PNG)]},
            format="multipart",
        )
    assert queries(client, "/api/v1/disputes/") == n
    assert client.get("/api/v1/disputes/").json()["count"] == 5


def test_each_party_sees_only_its_own_disputes():
    mine, _, _ = evaluated_engagement(good=True)
    theirs, _, _ = evaluated_engagement(good=True)
    mine_id = open_over_api(mine).json()["id"]
    theirs_id = open_over_api(theirs).json()["id"]
    assert client_for(mine.buyer).get(f"/api/v1/disputes/{mine_id}/").status_code == 200
    assert client_for(mine.listing.seller).get(f"/api/v1/disputes/{mine_id}/").status_code == 200
    for url in (f"/api/v1/disputes/{theirs_id}/", f"/api/v1/engagements/{theirs.pk}/"):
        response = client_for(mine.buyer).get(url)
        assert response.status_code == 404
        assert response.json()["detail"]
    assert client_for(SellerFactory.create()).get(f"/api/v1/disputes/{mine_id}/").status_code == 404
    # Nor can anyone else open, answer or withdraw it.
    stranger = client_for(mine.buyer)
    assert stranger.post(f"/api/v1/disputes/{theirs_id}/answer/", {"answer": "x"}, format="json").status_code == 404
    assert stranger.post(f"/api/v1/disputes/{theirs_id}/withdraw/", {}, format="json").status_code == 404
    assert open_over_api(theirs, user=mine.buyer).status_code == 404


def test_evidence_files_are_served_only_to_the_parties_and_staff(staff, media):
    engagement, _, _ = evaluated_engagement(good=True)
    response = client_for(engagement.buyer).post(
        f"/api/v1/engagements/{engagement.pk}/disputes/",
        {"reason": "See the screenshot.", "files": [SimpleUploadedFile("shot.png", PNG, content_type="image/png")]},
        format="multipart",
    )
    assert response.status_code == 201, response.content
    (file_row,) = response.json()["files"]
    assert (file_row["name"], file_row["content_type"], file_row["size"]) == ("shot.png", "image/png", len(PNG))
    url = file_row["url"]
    for user in (engagement.buyer, engagement.listing.seller, staff):
        download = client_for(user).get(url)
        assert download.status_code == 200
        assert b"".join(download.streaming_content) == PNG  # type: ignore[attr-defined]
        assert download["Content-Disposition"].startswith("attachment")
        assert download["X-Content-Type-Options"] == "nosniff"
    for user in (BuyerFactory.create(), SellerFactory.create()):
        assert client_for(user).get(url).status_code == 404
    assert client_for(None).get(url).status_code == 401
    # Another dispute's path does not reach it either.
    other, _, _ = evaluated_engagement(good=True)
    other_id = open_over_api(other).json()["id"]
    file_id = file_row["id"]
    assert client_for(other.buyer).get(f"/api/v1/disputes/{other_id}/files/{file_id}/").status_code == 404
    # The stored name is random, and no public URL serves the media folder.
    stored = DisputeEvidenceFile.objects.get(pk=file_id)
    assert "shot" not in str(stored.file.name)
    assert client_for(None).get(f"/media/{stored.file.name}").status_code == 404


@pytest.mark.parametrize(
    ("name", "content", "status", "code"),
    [
        ("photo.png", PDF, 415, "disguised_file"),
        ("report.pdf", b"MZ\x90\x00binary program", 415, "unsupported_file"),
        ("big.png", PNG + b"\x00" * 2000, 413, "file_too_large"),
    ],
)
def test_a_bad_file_is_a_4xx_with_detail_and_nothing_moves(settings, media, name, content, status, code):
    settings.DISPUTE_FILE_MAX_BYTES = 1000
    engagement, escrow, _ = evaluated_engagement(good=True)
    response = client_for(engagement.buyer).post(
        f"/api/v1/engagements/{engagement.pk}/disputes/",
        {"reason": "See the file.", "files": [SimpleUploadedFile(name, content)]},
        format="multipart",
    )
    assert response.status_code == status
    assert response.json()["code"] == code
    assert name in response.json()["detail"]
    assert not Dispute.objects.exists()
    escrow.refresh_from_db()
    assert escrow.status == "funded"
    assert not any(p.is_file() for p in media.rglob("*"))


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({"outcome": "split", "seller_share_bps": 10_001, "rationale": "r"}, 400, "seller_share_bps"),
        ({"outcome": "split", "seller_share_bps": -1, "rationale": "r"}, 400, "seller_share_bps"),
        ({"outcome": "split", "seller_share_bps": 2.5, "rationale": "r"}, 400, "seller_share_bps"),
        ({"outcome": "split", "seller_share_bps": "half", "rationale": "r"}, 400, "seller_share_bps"),
        ({"outcome": "split", "rationale": "r"}, 400, "seller_share_bps"),
        ({"outcome": "release", "seller_share_bps": 4000, "rationale": "r"}, 400, "seller_share_bps"),
        ({"outcome": "split", "seller_share_bps": 5000, "rationale": ""}, 400, "rationale"),
        ({"outcome": "split", "seller_share_bps": 5000, "rationale": "   "}, 400, "rationale"),
        ({"outcome": "split", "seller_share_bps": 5000}, 400, "rationale"),
        ({"outcome": "keep", "seller_share_bps": 5000, "rationale": "r"}, 400, "outcome"),
        ([1, 2], 400, ""),
    ],
)
def test_bad_rulings_are_400_and_move_nothing(staff, body, status, field):
    engagement, _, _ = evaluated_engagement(good=True)
    dispute_id = open_over_api(engagement).json()["id"]
    entries = LedgerEntry.objects.count()
    response = client_for(staff).post(f"/api/v1/disputes/{dispute_id}/rule/", body, format="json")
    assert response.status_code == status, response.content
    assert field in response.json()["detail"]
    assert LedgerEntry.objects.count() == entries
    assert Dispute.objects.get(pk=dispute_id).status == "open"


def test_ruling_an_already_ruled_dispute_is_409(staff):
    engagement, _, _ = evaluated_engagement(good=True)
    dispute_id = open_over_api(engagement).json()["id"]
    ruling = {"outcome": "refund", "rationale": "Nothing was cited."}
    assert client_for(staff).post(f"/api/v1/disputes/{dispute_id}/rule/", ruling, format="json").status_code == 200
    entries = LedgerEntry.objects.count()
    again = client_for(staff).post(
        f"/api/v1/disputes/{dispute_id}/rule/", {"outcome": "release", "rationale": "Changed my mind."}, format="json"
    )
    assert again.status_code == 409
    assert again.json()["code"] == "already_ruled"
    assert again.json()["detail"]
    assert LedgerEntry.objects.count() == entries


def test_opening_refusals_are_4xx_with_detail():
    engagement, _, _ = evaluated_engagement(good=True)
    assert open_over_api(engagement, reason="").status_code == 400
    assert open_over_api(engagement, reason="x" * 501).status_code == 400
    seller = open_over_api(engagement, user=engagement.listing.seller)
    assert seller.status_code == 403
    assert "failed" in seller.json()["detail"]
    assert open_over_api(engagement).status_code == 201
    again = open_over_api(engagement)
    assert again.status_code == 409
    assert again.json()["code"] == "dispute_open"
    malformed = client_for(engagement.buyer).post(
        f"/api/v1/engagements/{engagement.pk}/disputes/", "{not json", content_type="application/json"
    )
    assert malformed.status_code == 400


def test_staff_ask_for_a_re_evaluation_over_the_api(staff):
    engagement, _, _ = evaluated_engagement(good=True)
    dispute_id = open_over_api(engagement).json()["id"]
    assert client_for(engagement.buyer).post(f"/api/v1/disputes/{dispute_id}/reevaluate/").status_code == 403
    response = client_for(staff).post(f"/api/v1/disputes/{dispute_id}/reevaluate/")
    assert response.status_code == 202
    assert response.json()["round"] == 2
    assert client_for(staff).post(f"/api/v1/disputes/{dispute_id}/reevaluate/").status_code == 409


def test_the_evidence_bundle_verifies_record_by_record(staff):
    engagement, _, _ = evaluated_engagement(good=True)
    open_over_api(engagement)
    for user in (engagement.buyer, engagement.listing.seller, staff):
        assert client_for(user).get(f"/api/v1/engagements/{engagement.pk}/evidence/").status_code == 200
    assert client_for(BuyerFactory.create()).get(f"/api/v1/engagements/{engagement.pk}/evidence/").status_code == 404
    bundle = client_for(engagement.buyer).get(f"/api/v1/engagements/{engagement.pk}/evidence/").json()
    kinds = [r["kind"] for r in bundle["records"]]
    assert kinds[-1] == "dispute.opened"
    assert "escrow.funded" in kinds
    assert "evaluation.finalized" in kinds
    for record in bundle["records"]:
        recomputed = record_hash(
            prev_hash=record["prev_hash"],
            seq=record["seq"],
            kind=record["kind"],
            subject=record["subject"],
            payload=record["payload"],
        )
        assert recomputed == record["hash"]
    first = EvidenceRecord.objects.order_by("seq").first()
    assert first.prev_hash == GENESIS_HASH


def test_staff_rule_a_held_escrow_over_the_api(staff):
    from escrow import services as escrow_services

    engagement, escrow, _ = evaluated_engagement(good=True)
    escrow_services.escrow_decide(engagement_id=engagement.pk, outcome="inconclusive")
    body = {"outcome": "split", "seller_share_bps": 7000, "rationale": "The rubric split the jury."}
    assert (
        client_for(engagement.buyer).post(f"/api/v1/escrows/{escrow.pk}/rule/", body, format="json").status_code == 403
    )
    response = client_for(staff).post(f"/api/v1/escrows/{escrow.pk}/rule/", body, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["settlement"]["seller_gross_minor"] == 3500
    again = client_for(staff).post(f"/api/v1/escrows/{escrow.pk}/rule/", body, format="json")
    assert again.status_code == 409


def test_the_schema_documents_the_dispute_endpoints():
    schema = client_for(None).get("/api/schema/?format=json")
    assert schema.status_code == 200
    paths = schema.json()["paths"]
    for path in (
        "/api/v1/engagements/{id}/disputes/",
        "/api/v1/disputes/",
        "/api/v1/disputes/{id}/rule/",
        "/api/v1/engagements/{id}/evidence/",
    ):
        assert path in paths, sorted(paths)


JUNK = [
    {},
    [],
    "text",
    {"reason": None, "answer": None, "outcome": None, "rationale": None, "note": None},
    {"reason": ["a"], "answer": {"x": 1}, "outcome": 5, "seller_share_bps": {"a": 1}, "rationale": ["r"], "note": 7},
    {"reason": "x" * 100_000, "answer": "x" * 100_000, "rationale": "x" * 100_000, "note": "x" * 10_000},
    {"outcome": "split", "seller_share_bps": 10**30, "rationale": "r"},
]


def test_no_dispute_request_is_a_500(staff):
    engagement, escrow, _ = evaluated_engagement(good=True)
    dispute_id = open_over_api(engagement).json()["id"]
    urls = [
        f"/api/v1/engagements/{engagement.pk}/disputes/",
        f"/api/v1/disputes/{dispute_id}/answer/",
        f"/api/v1/disputes/{dispute_id}/withdraw/",
        f"/api/v1/disputes/{dispute_id}/rule/",
        f"/api/v1/disputes/{dispute_id}/reevaluate/",
        f"/api/v1/escrows/{escrow.pk}/rule/",
        "/api/v1/disputes/999999/rule/",
    ]
    for user in (engagement.buyer, engagement.listing.seller, staff, BuyerFactory.create()):
        client = client_for(user)
        for url in urls:
            for body in JUNK:
                response = client.post(url, body, format="json")
                assert response.status_code < 500, (url, body, response.content)
                if response.status_code >= 400:
                    assert response.json()["detail"]
        for query in ("?status=x", "?page=0", "?page=abc", "?page_size=100000"):
            assert client.get(f"/api/v1/disputes/{query}").status_code < 500
    assert not Settlement.objects.exists()


def test_a_multipart_dispute_with_an_idempotency_key_is_replayed_not_repeated(media):
    engagement, _, _ = evaluated_engagement(good=True)
    client = client_for(engagement.buyer)
    body = {"reason": "See the file.", "files": [SimpleUploadedFile("a.png", PNG)]}
    first = client.post(
        f"/api/v1/engagements/{engagement.pk}/disputes/", body, format="multipart", HTTP_IDEMPOTENCY_KEY="d-1"
    )
    assert first.status_code == 201, first.content
    body = {"reason": "See the file.", "files": [SimpleUploadedFile("a.png", PNG)]}
    again = client.post(
        f"/api/v1/engagements/{engagement.pk}/disputes/", body, format="multipart", HTTP_IDEMPOTENCY_KEY="d-1"
    )
    assert again["Idempotent-Replayed"] == "true"
    assert again.json()["id"] == first.json()["id"]
    assert Dispute.objects.count() == 1
    assert DisputeEvidenceFile.objects.count() == 1


def test_a_large_file_sent_with_an_idempotency_key_is_accepted(media):
    """The idempotency layer reads the whole body; the body cap leaves room for a 4 MB file."""
    engagement, _, _ = evaluated_engagement(good=True)
    client = client_for(engagement.buyer)
    big = PNG + b"\0" * (4 * 1024 * 1024)
    body = {"reason": "See the screenshot.", "files": [SimpleUploadedFile("shot.png", big)]}
    response = client.post(
        f"/api/v1/engagements/{engagement.pk}/disputes/", body, format="multipart", HTTP_IDEMPOTENCY_KEY="big-1"
    )
    assert response.status_code == 201, response.content
    assert DisputeEvidenceFile.objects.get().size == len(big)


def _multipart(boundary: str, fields: dict[str, str], files: list[tuple[str, str, bytes]]) -> Any:
    """A multipart body as a real client sends it, with its own boundary."""
    parts = []
    for name, value in fields.items():
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode())
    for name, filename, content in files:
        head = (
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; filename="{filename}"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n"
        )
        parts.append(head.encode() + content + b"\r\n")
    return b"".join(parts) + f"--{boundary}--\r\n".encode()


def test_a_multipart_retry_with_a_new_boundary_is_a_replay(media):
    """Clients pick a new multipart boundary per send; the retry is still the same request."""
    engagement, _, _ = evaluated_engagement(good=True)
    client = client_for(engagement.buyer)
    url = f"/api/v1/engagements/{engagement.pk}/disputes/"
    statuses = []
    for boundary in ("----first-boundary-1111", "----second-boundary-2222"):
        body = _multipart(boundary, {"reason": "See the file."}, [("files", "a.png", PNG)])
        response = client.generic(
            "POST", url, body, content_type=f"multipart/form-data; boundary={boundary}", HTTP_IDEMPOTENCY_KEY="mp-1"
        )
        statuses.append(response.status_code)
    assert statuses == [201, 201]
    assert response["Idempotent-Replayed"] == "true"
    assert Dispute.objects.count() == 1
    # Another file under the same key is another request.
    body = _multipart("----third", {"reason": "See the file."}, [("files", "a.png", PNG + b"x")])
    response = client.generic(
        "POST", url, body, content_type="multipart/form-data; boundary=----third", HTTP_IDEMPOTENCY_KEY="mp-1"
    )
    assert response.status_code == 422


def test_a_body_over_the_cap_with_an_idempotency_key_is_a_json_413(settings, media):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1024 * 1024
    engagement, _, _ = evaluated_engagement(good=True)
    client = client_for(engagement.buyer)
    big = PNG + b"\0" * (2 * 1024 * 1024)
    response = client.post(
        f"/api/v1/engagements/{engagement.pk}/disputes/",
        {"reason": "Big.", "files": [SimpleUploadedFile("big.png", big)]},
        format="multipart",
        HTTP_IDEMPOTENCY_KEY="too-big",
    )
    assert response.status_code == 413
    assert response.json()["code"] == "request_too_large"
    assert not Dispute.objects.exists()
