"""GET /v1/jobs/{id}/image: the bytes of an uploaded image, to its own tenant only."""

from dataclasses import replace

import pytest

from core.adapters.blobs import MemoryBlobStore
from core.api.app import HttpApp
from core.api.auth import hash_key
from core.api.http import Headers, Request
from tests.fakes import FakeImggo, make_services

KEY_A, KEY_B = "key-tenant-a", "key-tenant-b"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x01" * 40


@pytest.fixture
def services():
    return make_services(
        imggo=FakeImggo(), api_key_hashes={hash_key(KEY_A): "a", hash_key(KEY_B): "b"}
    )


def call(app, method, path, *, key=KEY_A, body=b"", ctype=None, query=None):
    headers = Headers({"Authorization": f"Bearer {key}"} if key else {})
    if ctype:
        headers["Content-Type"] = ctype
    return app.handle(Request(method, path, headers, query or {}, body))


def upload(app):
    response = call(
        app, "POST", "/v1/jobs", body=PNG, ctype="image/png", query={"pattern_id": "invoice"}
    )
    assert response.status == 202, response.body
    return response.json_body()


def assert_error(response, status, code):
    assert response.status == status, response.body
    assert response.json_body()["error"]["code"] == code


def test_an_uploaded_image_is_served_back_to_its_tenant(services):
    app = HttpApp(services)
    job = upload(app)
    assert job["links"]["image"] == f"/v1/jobs/{job['id']}/image"
    got = call(app, "GET", job["links"]["image"])
    assert got.status == 200 and got.body == PNG
    assert got.headers.get("content-type") == "image/png"
    assert got.headers.get("x-content-type-options") == "nosniff"
    assert "private" in (got.headers.get("cache-control") or "")
    # The listing carries the same link, so a client never builds the path itself.
    listed = call(app, "GET", "/v1/jobs").json_body()["items"]
    assert listed[0]["links"]["image"] == job["links"]["image"]


def test_the_image_needs_the_key_of_its_tenant(services):
    app = HttpApp(services)
    job = upload(app)
    assert_error(call(app, "GET", job["links"]["image"], key=None), 401, "missing_credentials")
    assert_error(call(app, "GET", job["links"]["image"], key=KEY_B), 404, "job_not_found")


def test_a_url_job_has_no_stored_image(services):
    app = HttpApp(services)
    created = call(
        app,
        "POST",
        "/v1/jobs",
        body=b'{"pattern_id": "p", "image_url": "https://images.example/a.png"}',
        ctype="application/json",
    ).json_body()
    assert "image" not in created["links"]
    assert_error(call(app, "GET", f"/v1/jobs/{created['id']}/image"), 404, "image_not_stored")


def test_an_image_past_retention_is_a_404_not_a_500(services):
    job = upload(HttpApp(services))
    # The blob store's lifecycle rule removed the bytes; the job record is still there.
    forgetful = HttpApp(replace(services, blobs=MemoryBlobStore()))
    assert_error(call(forgetful, "GET", job["links"]["image"]), 404, "image_gone")


def test_only_get_and_head(services):
    app = HttpApp(services)
    job = upload(app)
    assert_error(call(app, "DELETE", job["links"]["image"]), 405, "method_not_allowed")
    head = call(app, "HEAD", job["links"]["image"])
    assert head.status == 200 and head.body == b""
