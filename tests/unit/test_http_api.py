"""The HTTP surface through HttpApp with in-memory fakes: routing, auth, limits, envelopes."""

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.api.app import HttpApp
from core.api.auth import hash_key
from core.api.http import Headers, Request
from tests.fakes import FakeImggo, make_services

KEY_A, KEY_B = "key-tenant-a", "key-tenant-b"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32


@pytest.fixture
def app():
    services = make_services(
        imggo=FakeImggo(),
        api_key_hashes={hash_key(KEY_A): "a", hash_key(KEY_B): "b"},
        max_body_bytes=4096,
        max_image_bytes=2048,
    )
    return HttpApp(services)


def call(app, method, path, *, key=KEY_A, body=b"", ctype=None, headers=None, query=None):
    hdrs = Headers(headers or {})
    if key:
        hdrs["Authorization"] = f"Bearer {key}"
    if ctype:
        hdrs["Content-Type"] = ctype
    return app.handle(Request(method, path, hdrs, query or {}, body))


def submit_json(app, payload, **kw):
    return call(
        app, "POST", "/v1/jobs", body=json.dumps(payload).encode(), ctype="application/json", **kw
    )


def assert_envelope(response, status, code):
    assert response.status == status, response.body
    assert response.headers.get("content-type") == "application/json"
    error = response.json_body()["error"]
    assert error["code"] == code and error["message"] and isinstance(error["details"], dict)


def test_submit_json_returns_202_location_and_the_job(app):
    r = submit_json(app, {"pattern_id": "invoice", "image_url": "https://images.example/a.png"})
    assert r.status == 202
    job = r.json_body()
    assert r.headers.get("location") == f"/v1/jobs/{job['id']}"
    assert job["status"] == "queued" and "tenant" not in job and "fingerprint" not in job
    got = call(app, "GET", f"/v1/jobs/{job['id']}")
    assert got.status == 200 and got.json_body()["id"] == job["id"]


def test_idempotent_replay_is_200_and_conflict_is_409(app):
    payload = {"pattern_id": "invoice", "image_url": "https://images.example/a.png"}
    first = submit_json(app, payload, headers={"Idempotency-Key": "k1"})
    again = submit_json(app, payload, headers={"Idempotency-Key": "k1"})
    assert (first.status, again.status) == (202, 200)
    assert first.json_body()["id"] == again.json_body()["id"]
    other = submit_json(
        app, {**payload, "pattern_id": "receipt"}, headers={"Idempotency-Key": "k1"}
    )
    assert_envelope(other, 409, "idempotency_conflict")


def test_multipart_and_raw_uploads(app):
    boundary = "XyZ"
    form = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="pattern_id"\r\n\r\ninvoice\r\n'
            f'--{boundary}\r\nContent-Disposition: form-data; name="extras"\r\n\r\n{{"ref": 7}}\r\n'
            f'--{boundary}\r\nContent-Disposition: form-data; name="image"; filename="a.png"\r\n'
            f"Content-Type: image/png\r\n\r\n"
        ).encode()
        + PNG
        + f"\r\n--{boundary}--\r\n".encode()
    )
    r = call(app, "POST", "/v1/jobs", body=form, ctype=f"multipart/form-data; boundary={boundary}")
    assert r.status == 202, r.body
    job = r.json_body()
    assert job["source"]["filename"] == "a.png" and job["extras"] == {"ref": 7}
    raw = call(
        app, "POST", "/v1/jobs", body=PNG, ctype="image/png", query={"pattern_id": "invoice"}
    )
    assert raw.status == 202 and raw.json_body()["content_sha256"] == job["content_sha256"]


@pytest.mark.parametrize(
    "method,path,kw,status,code",
    [
        ("GET", "/v1/nope", {}, 404, "route_not_found"),
        ("DELETE", "/v1/jobs", {}, 405, "method_not_allowed"),
        ("GET", "/v1/jobs", {"key": None}, 401, "missing_credentials"),
        ("GET", "/v1/jobs", {"key": "wrong"}, 401, "invalid_credentials"),
        (
            "GET",
            "/v1/jobs",
            {"headers": {"Authorization": "Basic abc"}, "key": None},
            401,
            "invalid_credentials",
        ),
        ("POST", "/v1/jobs", {"body": b"{", "ctype": "application/json"}, 400, "invalid_json"),
        ("POST", "/v1/jobs", {"body": b"[]", "ctype": "application/json"}, 422, "invalid_body"),
        ("POST", "/v1/jobs", {"body": b"{}", "ctype": "application/json"}, 422, "missing_field"),
        ("POST", "/v1/jobs", {"body": b"x", "ctype": "text/plain"}, 415, "unsupported_media_type"),
        (
            "POST",
            "/v1/jobs",
            {"body": b"x" * 5000, "ctype": "application/json"},
            413,
            "payload_too_large",
        ),
        (
            "POST",
            "/v1/jobs",
            {"body": b"GIF89a" + b"0" * 3000, "ctype": "image/gif", "query": {"pattern_id": "p"}},
            413,
            "image_too_large",
        ),
        (
            "POST",
            "/v1/jobs",
            {"body": b"%PDF", "ctype": "image/png", "query": {"pattern_id": "p"}},
            415,
            "not_an_image",
        ),
        (
            "POST",
            "/v1/jobs",
            {"body": b"--x--", "ctype": "multipart/form-data"},
            400,
            "invalid_multipart",
        ),
        ("GET", "/v1/jobs", {"query": {"limit": "ten"}}, 422, "invalid_limit"),
        ("GET", "/v1/jobs", {"query": {"cursor": "garbage!"}}, 422, "invalid_cursor"),
        ("GET", "/v1/jobs/does-not-exist", {}, 404, "job_not_found"),
        ("GET", "/v1/batches/nope", {}, 404, "batch_not_found"),
        ("POST", "/v1/webhooks/imggo", {"key": None, "body": b"{}"}, 401, "signature_missing"),
    ],
)
def test_errors_are_enveloped_with_stable_codes(app, method, path, kw, status, code):
    assert_envelope(call(app, method, path, **kw), status, code)


def test_405_names_the_allowed_methods(app):
    r = call(app, "PUT", "/v1/jobs/abc")
    assert r.status == 405 and r.headers.get("allow") == "GET"


def test_tenants_never_see_each_other(app):
    job = submit_json(
        app, {"pattern_id": "p", "image_url": "https://images.example/a.png"}
    ).json_body()
    assert_envelope(call(app, "GET", f"/v1/jobs/{job['id']}", key=KEY_B), 404, "job_not_found")
    listed = call(app, "GET", "/v1/jobs", key=KEY_B).json_body()
    assert listed["items"] == []
    mine = call(app, "GET", "/v1/jobs", key=KEY_A, query={"status": "queued"}).json_body()
    assert [j["id"] for j in mine["items"]] == [job["id"]]


def test_batch_round_trip(app):
    body = {
        "pattern_id": "p",
        "items": [{"image_url": "https://images.example/1.png"}, {"image_url": "ftp://nope"}],
    }
    r = call(app, "POST", "/v1/batches", body=json.dumps(body).encode(), ctype="application/json")
    assert r.status == 202
    batch = r.json_body()
    assert (
        batch["counts"]["invalid"] == 1
        and batch["items"][1]["error"]["code"] == "invalid_image_url"
    )
    got = call(app, "GET", batch["links"]["self"]).json_body()
    assert got["id"] == batch["id"] and got["total"] == 2
    assert call(app, "GET", batch["links"]["self"], key=KEY_B).status == 404


def test_health_ready_and_openapi_are_open(app):
    assert call(app, "GET", "/health", key=None).json_body()["status"] == "ok"
    assert call(app, "GET", "/health/ready", key=None).json_body()["checks"] == {
        "store": "ok",
        "imggo": "ok",
    }
    doc = call(app, "GET", "/openapi.json", key=None).json_body()
    assert doc["openapi"].startswith("3.1")
    routes = {(m.upper(), p) for p, ops in doc["paths"].items() for m in ops}
    assert ("POST", "/v1/jobs") in routes and ("GET", "/v1/batches/{batch_id}") in routes
    assert doc["paths"]["/v1/jobs"]["post"]["security"] == [{"bearer": []}]
    assert doc["paths"]["/health"]["get"]["security"] == []


def test_an_unexpected_bug_is_a_500_envelope_without_a_traceback(app):
    def boom(*_a, **_k):
        raise RuntimeError("secret internals")

    app.services.store.list_jobs = boom  # a fault injected into a fake, not into our code path
    r = call(app, "GET", "/v1/jobs")
    assert_envelope(r, 500, "internal_error")
    assert b"secret internals" not in r.body


METHODS = st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD"])
PATHS = st.one_of(
    st.sampled_from(
        [
            "/v1/jobs",
            "/v1/batches",
            "/v1/uploads",
            "/v1/webhooks/imggo",
            "/health",
            "/openapi.json",
            "/v1/jobs/x",
            "/v1/batches/y",
        ]
    ),
    st.text(min_size=0, max_size=30).map(lambda s: "/" + s),
)
CTYPES = st.sampled_from(
    [
        "application/json",
        "multipart/form-data; boundary=b",
        "image/png",
        "text/plain",
        "",
        "application/x-www-form-urlencoded",
        "image/jpeg",
    ]
)
JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=10,
)
BODIES = st.one_of(
    st.binary(max_size=300),
    JSONISH.map(lambda v: json.dumps(v).encode()),
    st.fixed_dictionaries(
        {
            "pattern_id": JSONISH,
            "image_url": st.one_of(JSONISH, st.text(max_size=40)),
            "extras": JSONISH,
            "items": JSONISH,
            "content_type": JSONISH,
            "size": JSONISH,
        }
    ).map(lambda v: json.dumps(v).encode()),
)


@settings(
    max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    method=METHODS,
    path=PATHS,
    ctype=CTYPES,
    body=BODIES,
    query=st.dictionaries(
        st.sampled_from(["status", "limit", "cursor", "format", "pattern_id"]),
        st.text(max_size=12),
        max_size=3,
    ),
    key=st.sampled_from([KEY_A, None, "bogus"]),
)
def test_malformed_input_never_gets_a_5xx(app, method, path, ctype, body, query, key):
    r = call(app, method, path, key=key, body=body, ctype=ctype, query=query)
    assert r.status < 500, (r.status, r.body)
    if r.status >= 400 and method != "HEAD":
        assert set(r.json_body()["error"]) == {"code", "message", "details"}
