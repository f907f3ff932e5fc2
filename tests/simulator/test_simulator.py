"""The ImgGo simulator over real HTTP: every test talks to a started SimulatorServer."""

from __future__ import annotations

import csv
import hashlib
import hmac
import http.client
import io
import json
import re
import socket
import time
import xml.etree.ElementTree as ET
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from imggo_simulator import BUILTIN_PATTERN_IDS, DEMO_API_KEY, SimulatorConfig, SimulatorServer
from imggo_simulator.formats import to_csv, to_text, to_xml, to_yaml
from imggo_simulator.patterns import PATTERNS_DIR
from tests.simulator.helpers import (
    EXAMPLE_PATTERNS,
    EXAMPLES,
    ISO_MS,
    OTHER_KEY,
    SSL_CONTEXT,
    WebhookReceiver,
    assert_error,
    eventually,
    upload,
    wait_for_job,
)

_TYPES: dict[str, type | tuple[type, ...]] = {
    "object": dict,
    "array": list,
    "string": str,
    "integer": int,
    "number": (int, float),
    "boolean": bool,
    "null": type(None),
}


def validate(value: Any, schema: dict[str, Any], root: dict[str, Any], path: str = "$") -> None:
    """A hand-rolled JSON-schema check of the keywords the patterns use (no jsonschema dep)."""
    if "$ref" in schema:
        target: Any = root
        for part in schema["$ref"].lstrip("#/").split("/"):
            target = target[part]
        validate(value, target, root, path)
        return
    types = schema.get("type")
    if types is not None:
        types = [types] if isinstance(types, str) else types
        ok = any(
            isinstance(value, _TYPES[t]) and not (isinstance(value, bool) and t != "boolean")
            for t in types
        )
        assert ok, f"{path}: {value!r} is not {types}"
    if "enum" in schema:
        assert value in schema["enum"], f"{path}: {value!r} not in enum"
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        assert value >= schema.get("minimum", value), f"{path}: below minimum"
        assert value <= schema.get("maximum", value), f"{path}: above maximum"
    if isinstance(value, str):
        if "pattern" in schema:
            assert re.search(schema["pattern"], value), f"{path}: {value!r} !~ {schema['pattern']}"
        if schema.get("format") == "date":
            assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", value), f"{path}: not a date"
    if isinstance(value, list):
        assert len(value) >= schema.get("minItems", 0), f"{path}: too few items"
        assert len(value) <= schema.get("maxItems", len(value)), f"{path}: too many items"
        for i, item in enumerate(value):
            validate(item, schema.get("items", {}), root, f"{path}[{i}]")
    if isinstance(value, dict):
        properties = schema.get("properties", {})
        for key in schema.get("required", []):
            assert key in value, f"{path}: missing required {key!r}"
        for key, item in value.items():
            if key in properties:
                validate(item, properties[key], root, f"{path}.{key}")
            elif schema.get("additionalProperties") is False:
                raise AssertionError(f"{path}: unexpected property {key!r}")
            elif isinstance(schema.get("additionalProperties"), dict):
                validate(item, schema["additionalProperties"], root, f"{path}.{key}")


def pattern_schema(client: httpx.Client, alias: str) -> dict[str, Any]:
    schema: dict[str, Any] = client.get(f"/api/patterns/{alias}").json()["data"]["json_schema"]
    return schema


# --------------------------------------------------------------------------- system, auth
def test_health_needs_no_auth_and_reports_rate_headers(sim: SimulatorServer) -> None:
    response = httpx.get(f"{sim.url}/api/_health", trust_env=False, verify=SSL_CONTEXT)
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "healthy"
    assert set(body["services"]) == {"database", "storage", "queue"}
    assert ISO_MS.match(body["timestamp"])
    for header in ("X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset"):
        assert int(response.headers[header]) >= 0


def test_auth_missing_or_wrong_key_is_401_envelope(sim: SimulatorServer) -> None:
    with httpx.Client(base_url=sim.url, trust_env=False, verify=SSL_CONTEXT) as anonymous:
        assert_error(anonymous.get("/api/patterns"), 401, "UNAUTHORIZED")
        wrong = anonymous.get("/api/patterns", headers={"Authorization": "Bearer imggo_test_nope"})
        assert_error(wrong, 401, "INVALID_API_KEY")
        basic = anonymous.get("/api/jobs/x", headers={"Authorization": f"Basic {DEMO_API_KEY}"})
        assert_error(basic, 401)
        assert "X-RateLimit-Limit" in wrong.headers


def test_keep_alive_serves_many_requests_on_one_connection(sim: SimulatorServer) -> None:
    host, port = sim.url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=5)
    try:
        conn.connect()
        first_socket = conn.sock
        for _ in range(3):
            conn.request("GET", "/api/_health")
            response = conn.getresponse()
            assert response.status == 200
            assert int(response.headers["Content-Length"]) == len(response.read())
        assert conn.sock is first_socket  # never reconnected
    finally:
        conn.close()


def _raw_exchange(sim: SimulatorServer, head: bytes) -> tuple[int, bytes]:
    """Send `head` verbatim; the status code and the raw answer (head and body)."""
    host, port = sim.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        sock.sendall(head)
        reader = sock.makefile("rb")
        status_line = reader.readline()
        lines = [status_line]
        while lines[-1] not in (b"\r\n", b""):
            lines.append(reader.readline())
        found = re.search(rb"(?i)content-length: (\d+)", b"".join(lines))
        body = reader.read(int(found.group(1))) if found else b""
    return int(status_line.split(b" ", 2)[1]), b"".join(lines) + body


@pytest.mark.parametrize(
    ("head", "status"),
    [
        (b"GET /api/_health HTTP/1.1\r\nHost: x\r\n\r\n", 200),
        (b"GET //api/_health HTTP/1.1\r\nHost: x\r\n\r\n", 200),  # not a network path
        (b"GET /api/_health\r\n\r\n", 400),
        (b"GET /api/_health HTTP/x.y\r\n\r\n", 400),
        (b"GET /api/_health HTTP/2.0\r\n\r\n", 505),
        (b"GET /api/_health HTTP/1.1\r\nno colon\r\n\r\n", 400),
        (b"GET /api/_health HTTP/1.1\r\nX: " + b"a" * 70000 + b"\r\n\r\n", 431),
        (b"GET /api/_health HTTP/1.1\r\n" + b"X-A: b\r\n" * 101 + b"\r\n", 431),
    ],
    ids=["ok", "double-slash", "no-version", "bad-version", "http2", "header", "long", "many"],
)
def test_request_heads_are_checked(sim: SimulatorServer, head: bytes, status: int) -> None:
    code, answer = _raw_exchange(sim, head)
    assert code == status
    if status >= 400:
        assert b"Connection: close" in answer
        assert b'"success":false' in answer or b'"success": false' in answer


def test_expect_100_continue_then_the_answer_then_close(sim: SimulatorServer) -> None:
    host, port = sim.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        sock.sendall(
            b"GET /api/_health HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
            b"Connection: close\r\nContent-Length: 2\r\n\r\n"
        )
        reader = sock.makefile("rb")
        assert reader.readline().startswith(b"HTTP/1.1 100 ")
        assert reader.readline() == b"\r\n"
        sock.sendall(b"{}")
        rest = reader.read()  # the server closes after answering, as asked
    assert rest.startswith(b"HTTP/1.1 200 ")
    assert b'"status"' in rest


# --------------------------------------------------------------------------- patterns
def test_patterns_list_get_alias_and_404(client: httpx.Client) -> None:
    listing = client.get("/api/patterns").json()["data"]
    ids = {p["id"] for p in listing["data"]}
    assert set(BUILTIN_PATTERN_IDS.values()) <= ids
    assert listing["pagination"] == {"page": 1, "per_page": 20, "total": 4, "total_pages": 1}
    paged = client.get("/api/patterns", params={"page": 2, "per_page": 3}).json()["data"]
    assert len(paged["data"]) == 1 and paged["pagination"]["total_pages"] == 2
    assert_error(client.get("/api/patterns", params={"per_page": 0}), 400)

    by_alias = client.get("/api/patterns/invoice").json()["data"]
    by_id = client.get(f"/api/patterns/{BUILTIN_PATTERN_IDS['invoice']}").json()["data"]
    assert by_alias == by_id
    required = {"id", "user_id", "name", "format", "instructions", "model_profile", "version"}
    assert required | {"is_active", "created_at", "updated_at"} <= set(by_id)
    assert by_id["json_schema"]["type"] == "object"
    assert_error(client.get("/api/patterns/no-such-pattern"), 404, "PATTERN_NOT_FOUND")
    assert_error(client.post("/api/patterns/no-such-pattern/ingest", json={}), 404)


def test_builtin_pattern_ids_match_the_shipped_files() -> None:
    shipped = {}
    for path in PATTERNS_DIR.glob("*.json"):
        raw = json.loads(path.read_text())
        shipped[raw["alias"]] = raw["id"]
    assert shipped == BUILTIN_PATTERN_IDS


def test_created_pattern_is_private_and_drives_the_manifest(
    client: httpx.Client, sim: SimulatorServer
) -> None:
    schema = {
        "type": "object",
        "properties": {
            "title": {"type": "string", "maxLength": 12},
            "score": {"type": "integer", "minimum": 3, "maximum": 5},
            "tags": {"type": "array", "items": {"type": "string"}, "minItems": 2, "maxItems": 2},
            "width": {"type": "integer"},
            "meta": {
                "anyOf": [
                    {"type": "null"},
                    {"type": "object", "properties": {"ok": {"type": "boolean"}}},
                ]
            },
        },
        "required": ["title", "score", "tags", "width"],
        "additionalProperties": False,
    }
    created = client.post(
        "/api/patterns",
        json={"name": "My Pattern (v1)", "instructions": "Read it", "json_schema": schema},
    )
    assert created.status_code == 201, created.text
    pattern = created.json()["data"]
    assert pattern["version"] == 1 and pattern["is_active"] is True

    other = httpx.get(
        f"{sim.url}/api/patterns/{pattern['id']}",
        headers={"Authorization": f"Bearer {OTHER_KEY}"},
        trust_env=False,
        verify=SSL_CONTEXT,
    )
    assert_error(other, 404)

    job_id = upload(client, "receipt.png", pattern=pattern["id"]).json()["data"]["job_id"]
    job = wait_for_job(client, job_id)
    assert job["status"] == "succeeded"
    validate(job["manifest"], schema, schema)
    assert "_simulated" not in job["manifest"]  # additionalProperties: false is honoured
    assert job["manifest"]["width"] == 300  # a fact, read from the bytes

    bad_name = client.post("/api/patterns", json={"name": "bad/name", "instructions": "x"})
    assert_error(bad_name, 400, "VALIDATION_ERROR")
    bad_schema = client.post(
        "/api/patterns",
        json={"name": "x", "instructions": "x", "json_schema": {"properties": {"a b": {}}}},
    )
    assert assert_error(bad_schema, 400, "INVALID_SCHEMA")["details"]["field"] == "json_schema"
    assert_error(client.delete(f"/api/patterns/{pattern['id']}"), 403)


# --------------------------------------------------------------------------- ingest
def test_json_ingest_fetches_an_allowed_loopback_url(
    client: httpx.Client, static_server: str
) -> None:
    response = client.post(
        "/api/patterns/image-facts/ingest",
        json={"image_url": f"{static_server}/product.jpg", "extras": {"source": "test"}},
    )
    assert response.status_code == 202, response.text
    data = response.json()["data"]
    assert data["status"] == "queued" and data["message"]
    job = wait_for_job(client, data["job_id"])
    assert job["status"] == "succeeded", job["error"]
    assert job["image_url"] == f"{static_server}/product.jpg"
    assert job["extras"] == {"source": "test"}
    manifest = job["manifest"]
    validate(manifest, pattern_schema(client, "image-facts"), {})
    raw = (EXAMPLES / "product.jpg").read_bytes()
    with Image.open(io.BytesIO(raw)) as img:
        assert (manifest["width"], manifest["height"]) == img.size
    assert manifest["format"] == "JPEG" and manifest["mime_type"] == "image/jpeg"
    assert manifest["sha256"] == hashlib.sha256(raw).hexdigest()
    assert manifest["file_size_bytes"] == len(raw)
    assert manifest["exif"]["Make"] == "ImgGo Labs"
    assert manifest["exif"]["DateTimeOriginal"] == "2025:01:15 09:59:58"
    assert manifest["_simulated"] is True


def test_fetch_of_missing_url_fails_the_job(client: httpx.Client, static_server: str) -> None:
    url = f"{static_server}/nope.png"
    job_id = client.post("/api/patterns/invoice/ingest", json={"image_url": url}).json()["data"]
    job = wait_for_job(client, job_id["job_id"])
    assert job["status"] == "failed" and "HTTP 404" in job["error"]


def test_fetch_refused_for_a_host_not_allowed_without_resolving_it(
    client: httpx.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    looked_up: list[str] = []
    real_getaddrinfo = socket.getaddrinfo

    def spy(host: Any, *args: Any, **kwargs: Any) -> Any:
        looked_up.append(str(host))
        return real_getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", spy)
    response = client.post(
        "/api/patterns/invoice/ingest", json={"image_url": "http://example.invalid/invoice.png"}
    )
    assert response.status_code == 202
    job = wait_for_job(client, response.json()["data"]["job_id"])
    assert job["status"] == "failed"
    assert job["manifest"] is None
    assert "fetch refused: host not allowed" in job["error"]
    assert not [h for h in looked_up if "invalid" in h]


@pytest.mark.parametrize("name", sorted(EXAMPLE_PATTERNS))
def test_multipart_ingest_of_each_example_conforms_to_its_pattern(
    client: httpx.Client, name: str
) -> None:
    response = upload(client, name)
    assert response.status_code == 202, response.text
    job = wait_for_job(client, response.json()["data"]["job_id"])
    assert job["status"] == "succeeded", job["error"]
    alias = EXAMPLE_PATTERNS[name][0]
    schema = pattern_schema(client, alias)
    validate(job["manifest"], schema, schema)
    assert job["manifest"]["_simulated"] is True
    assert job["pattern_id"] == BUILTIN_PATTERN_IDS[alias]  # the canonical id, not the alias
    assert job["image_url"].endswith(f"/{name}")


def test_product_manifest_reads_camera_exif_and_colours(client: httpx.Client) -> None:
    job = wait_for_job(client, upload(client, "product.jpg").json()["data"]["job_id"])
    manifest = job["manifest"]
    assert manifest["camera"] == {
        "make": "ImgGo Labs",
        "model": "SimCam 3000",
        "datetime": "2025:01:15 09:59:58",
    }
    assert manifest["source_image"]["width"] == 480
    assert all(re.fullmatch(r"#[0-9a-f]{6}", c) for c in manifest["dominant_colors"])


def test_gif_facts_see_the_animation(client: httpx.Client) -> None:
    job = wait_for_job(client, upload(client, "sunset.gif").json()["data"]["job_id"])
    assert job["manifest"]["animated"] is True and job["manifest"]["frame_count"] == 4
    assert job["manifest"]["exif"] == {}


def test_multipart_fields_idempotency_and_extras(
    client: httpx.Client, sim: SimulatorServer
) -> None:
    data = {"idempotency_key": "form-key-1", "extras": json.dumps({"batch": 7})}
    first = upload(client, "invoice.png", data=data)
    again = upload(client, "invoice.png", data=data)
    assert (first.status_code, again.status_code) == (202, 200)
    assert first.json()["data"]["job_id"] == again.json()["data"]["job_id"]
    job = wait_for_job(client, first.json()["data"]["job_id"])
    assert job["extras"] == {"batch": 7} and job["idempotency_key"] == "form-key-1"


def test_undecodable_bytes_fail_the_job_clearly(client: httpx.Client) -> None:
    files = {"image": ("fake.png", b"this is not a png at all", "image/png")}
    response = client.post("/api/patterns/invoice/ingest", files=files)
    assert response.status_code == 202
    job = wait_for_job(client, response.json()["data"]["job_id"])
    assert job["status"] == "failed"
    assert "could not be decoded" in job["error"]
    assert job["manifest"] is None and job["completed_at"] is not None


# --------------------------------------------------------------------------- idempotency, lifecycle
def test_idempotency_key_returns_the_same_job_with_200(
    client: httpx.Client, sim: SimulatorServer
) -> None:
    headers = {"Idempotency-Key": "order-42_a"}
    first = upload(client, "invoice.png", headers=headers)
    second = upload(client, "invoice.png", headers=headers)
    assert first.status_code == 202 and second.status_code == 200
    assert first.json()["data"]["job_id"] == second.json()["data"]["job_id"]
    assert sim.ingest_count() == 1 and sim.ingest_calls() == 2

    body_key = {"image_url": "http://127.0.0.1:9/x.png", "idempotency_key": "body-key"}
    a = client.post("/api/patterns/invoice/ingest", json=body_key)
    b = client.post("/api/patterns/invoice/ingest", json=body_key)
    assert (a.status_code, b.status_code) == (202, 200)
    assert a.json()["data"]["job_id"] == b.json()["data"]["job_id"]

    # Keys are scoped per API key: another tenant's identical key is a different job.
    other = upload(
        client, "invoice.png", headers={**headers, "Authorization": f"Bearer {OTHER_KEY}"}
    )
    assert other.status_code == 202
    assert other.json()["data"]["job_id"] != first.json()["data"]["job_id"]
    assert sim.ingest_count() == 3 and sim.ingest_calls() == 5


def test_job_lifecycle_and_fields(client: httpx.Client, sim: SimulatorServer) -> None:
    sim.config.processing_s = 0.3
    job_id = upload(client, "receipt.png").json()["data"]["job_id"]
    seen = [client.get(f"/api/jobs/{job_id}").json()["data"]["status"]]
    deadline = time.monotonic() + 5
    while seen[-1] not in ("succeeded", "failed") and time.monotonic() < deadline:
        time.sleep(0.02)
        status = client.get(f"/api/jobs/{job_id}").json()["data"]["status"]
        if status != seen[-1]:
            seen.append(status)
    assert seen == ["queued", "running", "succeeded"]
    job = client.get(f"/api/jobs/{job_id}").json()["data"]
    assert set(job) == {
        "id", "pattern_id", "image_url", "status", "manifest", "error", "latency_ms",
        "created_at", "updated_at", "started_at", "completed_at", "idempotency_key",
        "requested_by", "extras",
    }  # fmt: skip
    assert job["error"] is None and job["idempotency_key"] is None and job["extras"] is None
    for field in ("created_at", "updated_at", "started_at", "completed_at"):
        assert ISO_MS.match(job[field]), field
    assert job["created_at"] < job["started_at"] < job["completed_at"] == job["updated_at"]
    assert 250 <= job["latency_ms"] <= 1000
    assert re.fullmatch(r"[0-9a-f-]{36}", job["requested_by"])
    assert [j["id"] for j in sim.jobs()] == [job_id]


def test_jobs_of_another_key_are_404(client: httpx.Client, sim: SimulatorServer) -> None:
    job_id = upload(client, "receipt.png").json()["data"]["job_id"]
    other = httpx.get(
        f"{sim.url}/api/jobs/{job_id}",
        headers={"Authorization": f"Bearer {OTHER_KEY}"},
        trust_env=False,
        verify=SSL_CONTEXT,
    )
    assert_error(other, 404, "JOB_NOT_FOUND")
    assert_error(client.get("/api/jobs/00000000-0000-4000-8000-000000000000"), 404)


def test_complete_now_finishes_pending_jobs(client: httpx.Client, sim: SimulatorServer) -> None:
    sim.config.processing_s = 60
    job_id = upload(client, "invoice.png").json()["data"]["job_id"]
    assert client.get(f"/api/jobs/{job_id}").json()["data"]["status"] == "queued"
    sim.complete_now()
    assert client.get(f"/api/jobs/{job_id}").json()["data"]["status"] == "succeeded"


def test_manifests_are_deterministic(client: httpx.Client, sim: SimulatorServer) -> None:
    def manifest(name: str, pattern: str, key: str) -> dict[str, Any]:
        headers = {"Authorization": f"Bearer {key}"}
        job_id = upload(client, name, pattern=pattern, headers=headers).json()["data"]["job_id"]
        with httpx.Client(
            base_url=sim.url, headers=headers, trust_env=False, verify=SSL_CONTEXT
        ) as c:
            result: dict[str, Any] = wait_for_job(c, job_id)["manifest"]
            return result

    first = manifest("invoice.png", "invoice", DEMO_API_KEY)
    assert manifest("invoice.png", "invoice", OTHER_KEY) == first
    assert manifest("receipt.png", "invoice", DEMO_API_KEY) != first
    assert manifest("invoice.png", "product", DEMO_API_KEY).keys() != first.keys()


# --------------------------------------------------------------------------- formats
def test_manifest_rendered_in_every_format(client: httpx.Client) -> None:
    job = wait_for_job(client, upload(client, "invoice.png").json()["data"]["job_id"])
    manifest = job["manifest"]
    url = f"/api/jobs/{job['id']}"

    csv_response = client.get(url, params={"format": "csv"})
    assert csv_response.headers["content-type"].startswith("text/csv")
    header, row = list(csv.reader(io.StringIO(csv_response.text)))
    flat = dict(zip(header, row, strict=True))
    assert flat["invoice_number"] == manifest["invoice_number"]
    assert flat["line_items.0.quantity"] == str(manifest["line_items"][0]["quantity"])

    yaml_response = client.get(url, params={"format": "yaml"})
    assert "yaml" in yaml_response.headers["content-type"]
    assert f"invoice_number: {manifest['invoice_number']}" in yaml_response.text
    assert "line_items:\n  - description:" in yaml_response.text

    xml_response = client.get(url, params={"format": "xml"})
    assert "xml" in xml_response.headers["content-type"]
    root = ET.fromstring(xml_response.content)
    assert root.tag == "manifest"
    assert root.findtext("vendor/name") == manifest["vendor"]["name"]
    assert len(root.findall("line_items/item")) == len(manifest["line_items"])

    text_response = client.get(url, params={"format": "text"})
    assert text_response.headers["content-type"].startswith("text/plain")
    assert f"total: {manifest['total']}" in text_response.text

    as_json = client.get(url, params={"format": "json"})
    assert as_json.json()["data"]["manifest"] == manifest
    assert_error(client.get(url, params={"format": "pdf"}), 400, "INVALID_FORMAT")


def test_format_of_an_unfinished_job_returns_the_job(
    client: httpx.Client, sim: SimulatorServer
) -> None:
    sim.config.processing_s = 60
    job_id = upload(client, "invoice.png").json()["data"]["job_id"]
    response = client.get(f"/api/jobs/{job_id}", params={"format": "csv"})
    assert response.status_code == 200
    assert response.json()["data"]["status"] == "queued"


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=60, deadline=None)
@given(st.dictionaries(st.text(max_size=10), json_values, max_size=6))
def test_renderers_accept_any_json_manifest(manifest: dict[str, Any]) -> None:
    ET.fromstring(to_xml(manifest).encode("utf-8"))  # always well-formed
    rows = list(csv.reader(io.StringIO(to_csv(manifest))))
    assert len(rows) == 2 and len(rows[0]) == len(rows[1])
    assert isinstance(to_yaml(manifest), str) and isinstance(to_text(manifest), str)


# --------------------------------------------------------------------------- rate limits
def test_rate_limit_429_with_retry_after_and_headers(
    client: httpx.Client, sim: SimulatorServer
) -> None:
    sim.config.rate_limit_per_minute = 3
    answers = [client.get("/api/patterns") for _ in range(4)]
    assert [r.status_code for r in answers] == [200, 200, 200, 429]
    assert [r.headers["X-RateLimit-Remaining"] for r in answers] == ["2", "1", "0", "0"]
    assert all(r.headers["X-RateLimit-Limit"] == "3" for r in answers)
    reset = int(answers[0].headers["X-RateLimit-Reset"])
    assert time.time() < reset <= time.time() + 61
    limited = answers[-1]
    assert_error(limited, 429, "RATE_LIMIT_EXCEEDED")
    assert 1 <= int(limited.headers["Retry-After"]) <= 60
    # Limits are per API key: another tenant is unaffected.
    other = client.get("/api/patterns", headers={"Authorization": f"Bearer {OTHER_KEY}"})
    assert other.status_code == 200


# --------------------------------------------------------------------------- webhooks
def test_webhook_delivery_is_signed_over_the_raw_body(
    client: httpx.Client, webhook_receiver: WebhookReceiver
) -> None:
    secret = "s3cret-s3cret-s3cret"
    created = client.post(
        "/api/webhooks",
        json={"url": webhook_receiver.url, "events": ["job.succeeded"], "secret": secret},
    )
    assert created.status_code == 201, created.text
    hook = created.json()["data"]
    assert hook["events"] == ["job.succeeded"] and hook["is_active"] is True
    job_id = upload(client, "receipt.png").json()["data"]["job_id"]

    headers, body = webhook_receiver.next()
    expected = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(headers["x-imggo-signature"], f"sha256={expected}")
    assert headers["content-type"] == "application/json"
    assert headers["user-agent"] == "ImgGo-Webhook/1.0"
    payload = json.loads(body)
    assert list(payload) == ["event", "job_id", "pattern_id", "manifest", "error", "timestamp"]
    assert payload["event"] == "job.succeeded" and payload["job_id"] == job_id
    assert payload["pattern_id"] == BUILTIN_PATTERN_IDS["receipt"]
    assert payload["error"] is None and payload["manifest"]["source_image"]["width"] == 300
    assert ISO_MS.match(payload["timestamp"])
    assert wait_for_job(client, job_id)["manifest"] == payload["manifest"]

    # Failed jobs are not sent to a hook subscribed only to job.succeeded.
    files = {"image": ("bad.png", b"garbage", "image/png")}
    wait_for_job(
        client, client.post("/api/patterns/invoice/ingest", files=files).json()["data"]["job_id"]
    )
    listed = client.get("/api/webhooks").json()["data"]
    assert [h["id"] for h in listed] == [hook["id"]]
    eventually(
        lambda: client.get("/api/webhooks").json()["data"][0]["last_triggered_at"] is not None
    )
    time.sleep(0.05)
    assert webhook_receiver.received.empty()


def test_webhook_for_failed_job_and_drop_chaos(
    client: httpx.Client, sim: SimulatorServer, webhook_receiver: WebhookReceiver
) -> None:
    client.post("/api/webhooks", json={"url": webhook_receiver.url, "secret": "x" * 16})
    files = {"image": ("bad.png", b"garbage", "image/png")}
    client.post("/api/patterns/invoice/ingest", files=files)
    _, body = webhook_receiver.next()
    payload = json.loads(body)
    assert payload["event"] == "job.failed" and payload["manifest"] is None
    assert "could not be decoded" in payload["error"]

    sim.config.webhook_drop_rate = 1.0
    job_id = client.post("/api/patterns/invoice/ingest", files=files).json()["data"]["job_id"]
    wait_for_job(client, job_id)
    eventually(lambda: sim.webhook_stats()["dropped"] == 1)
    assert webhook_receiver.received.empty()


def test_webhook_registration_validation_and_delete(client: httpx.Client) -> None:
    assert_error(
        client.post("/api/webhooks", json={"url": "http://127.0.0.1/h", "secret": "short"}), 400
    )
    assert_error(client.post("/api/webhooks", json={"url": "not a url", "secret": "x" * 16}), 400)
    bad_events = {"url": "http://127.0.0.1/h", "events": ["job.created"], "secret": "x" * 16}
    assert_error(client.post("/api/webhooks", json=bad_events), 400)
    assert_error(
        client.post("/api/webhooks", json={"url": "http://127.0.0.1/h", "events": []}), 400
    )
    generated = client.post("/api/webhooks", json={"url": "http://127.0.0.1/h"}).json()["data"]
    assert len(generated["secret"]) >= 16
    assert generated["events"] == ["job.succeeded", "job.failed"]
    deleted = client.delete(f"/api/webhooks/{generated['id']}")
    assert deleted.status_code == 200 and deleted.json()["data"]["message"]
    assert_error(client.delete(f"/api/webhooks/{generated['id']}"), 404, "WEBHOOK_NOT_FOUND")
    assert client.get("/api/webhooks").json()["data"] == []


def test_webhook_to_a_host_not_allowed_is_not_sent(
    client: httpx.Client, sim: SimulatorServer
) -> None:
    client.post("/api/webhooks", json={"url": "http://hooks.example.invalid/x", "secret": "x" * 16})
    wait_for_job(client, upload(client, "receipt.png").json()["data"]["job_id"])
    eventually(lambda: sim.webhook_stats()["refused"] == 1)
    assert sim.webhook_stats() == {"sent": 0, "dropped": 0, "refused": 1, "failed": 0}


# --------------------------------------------------------------------------- bad input
def test_bad_inputs_get_400_envelopes(client: httpx.Client) -> None:
    ingest = "/api/patterns/invoice/ingest"
    raw_json = {"Content-Type": "application/json"}
    assert_error(client.post(ingest, content=b"{not json", headers=raw_json), 400, "INVALID_JSON")
    assert_error(client.post(ingest, content=b"", headers=raw_json), 400, "INVALID_JSON")
    assert_error(client.post(ingest, json=["a"]), 400)
    assert_error(client.post(ingest, json={}), 400)
    assert_error(client.post(ingest, json={"image_url": "ftp://127.0.0.1/x.png"}), 400)
    assert_error(
        client.post(ingest, json={"image_url": "http://127.0.0.1/x.png", "extras": [1]}), 400
    )
    for key in ("", "has space", "x" * 256, "semi;colon"):
        body = {"image_url": "http://127.0.0.1/x.png", "idempotency_key": key}
        error = assert_error(client.post(ingest, json=body), 400)
        assert error["details"]["field"] == "idempotency_key"
    bad_header = client.post(
        ingest, json={"image_url": "http://127.0.0.1/x.png"}, headers={"Idempotency-Key": "a b"}
    )
    assert_error(bad_header, 400)
    assert_error(client.post(ingest, content=b"x", headers={"Content-Type": "text/plain"}), 400)

    png = (EXAMPLES / "invoice.png").read_bytes()
    for files in (
        {"image": ("invoice.png", png, "application/octet-stream")},  # not image/*
        {"image": ("invoice.tiff", png, "image/png")},  # extension not allowed
        {"picture": ("invoice.png", png, "image/png")},  # wrong field name
        {"image": ("invoice.png", b"", "image/png")},  # empty
    ):
        assert_error(client.post(ingest, files=files), 400)
    big = b"\x89PNG" + b"\0" * (10 * 1024 * 1024)
    assert_error(
        client.post(ingest, files={"image": ("big.png", big, "image/png")}), 400, "FILE_TOO_LARGE"
    )
    bad_extras = client.post(
        ingest, files={"image": ("a.png", png, "image/png")}, data={"extras": "{"}
    )
    assert_error(bad_extras, 400)
    broken = client.post(
        ingest,
        content=b"--b\r\nno headers",
        headers={"Content-Type": "multipart/form-data; boundary=b"},
    )
    assert_error(broken, 400, "INVALID_MULTIPART")


def test_unknown_route_404_and_wrong_method_405(client: httpx.Client, sim: SimulatorServer) -> None:
    assert_error(client.get("/api/nothing-here"), 404, "NOT_FOUND")
    assert_error(client.get("/"), 404)
    wrong = client.put("/api/jobs/abc")
    assert_error(wrong, 405, "METHOD_NOT_ALLOWED")
    assert wrong.headers["Allow"] == "GET"
    assert_error(client.get("/api/patterns/invoice/ingest"), 405)
    assert sim.ingest_count() == 0


# --------------------------------------------------------------------------- chaos
def test_chaos_errors_happen_before_any_state_change(
    client: httpx.Client, sim: SimulatorServer
) -> None:
    sim.config.error_rate = 1.0
    response = upload(client, "invoice.png", headers={"Idempotency-Key": "chaos-1"})
    assert response.status_code in (500, 502, 503)
    assert_error(response, response.status_code)
    assert sim.ingest_count() == 0 and sim.ingest_calls() == 1

    sim.config.error_rate = 0.0
    sim.config.rate_limited_rate = 1.0
    limited = upload(client, "invoice.png", headers={"Idempotency-Key": "chaos-1"})
    assert_error(limited, 429, "RATE_LIMIT_EXCEEDED")
    assert limited.headers["Retry-After"] == "1"
    assert sim.ingest_count() == 0

    sim.config.rate_limited_rate = 0.0
    sim.config.accepted_then_error_rate = 1.0
    accepted = upload(client, "invoice.png", headers={"Idempotency-Key": "chaos-1"})
    assert_error(accepted, 500)
    assert sim.ingest_count() == 1  # the job exists although the answer was an error
    sim.config.accepted_then_error_rate = 0.0
    retried = upload(client, "invoice.png", headers={"Idempotency-Key": "chaos-1"})
    assert retried.status_code == 200
    assert retried.json()["data"]["job_id"] == sim.jobs()[0]["id"]
    assert sim.ingest_count() == 1 and sim.ingest_calls() == 4


def test_timeout_chaos_stalls_then_answers(client: httpx.Client, sim: SimulatorServer) -> None:
    sim.config.timeout_rate = 1.0
    sim.config.timeout_sleep_s = 0.3
    assert client.get("/api/patterns/invoice", timeout=0.2).status_code == 200  # no chaos here
    with pytest.raises(httpx.ReadTimeout):
        client.get("/api/jobs/x", timeout=0.1)  # job reads stall
    started = time.monotonic()
    assert client.get("/api/jobs/x").status_code == 404
    assert time.monotonic() - started >= 0.3


def test_fail_rate_fails_jobs_deterministically(client: httpx.Client, sim: SimulatorServer) -> None:
    sim.config.fail_rate = 1.0
    job = wait_for_job(client, upload(client, "invoice.png").json()["data"]["job_id"])
    assert job["status"] == "failed" and "simulated" in job["error"]


def test_seeded_chaos_is_reproducible() -> None:
    def statuses(seed: int) -> list[int]:
        config = SimulatorConfig(error_rate=0.5, seed=seed)
        with (
            SimulatorServer(config) as server,
            httpx.Client(
                base_url=server.url,
                headers={"Authorization": f"Bearer {DEMO_API_KEY}"},
                trust_env=False,
                verify=SSL_CONTEXT,
            ) as c,
        ):
            return [c.get("/api/jobs/none").status_code for _ in range(12)]

    assert statuses(7) == statuses(7)
    assert set(statuses(7)) - {404}  # some chaos happened


def test_stopped_server_refuses_connections() -> None:
    server = SimulatorServer().start()
    url = server.url
    with httpx.Client(base_url=url, trust_env=False, verify=SSL_CONTEXT) as c:
        assert c.get("/api/_health").status_code == 200
        server.stop()
        with pytest.raises(httpx.TransportError):
            c.get("/api/_health")
    with pytest.raises(RuntimeError):
        server.start()
