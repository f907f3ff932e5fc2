"""The GCP handlers without any emulator: functions-framework's create_app() test client
over an in-memory store, the event parsers, Cloud Logging formatting, and what a cold
start imports."""

from __future__ import annotations

import hashlib
import hmac
import io
import json
import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from functions_framework import create_app

from core.api.auth import hash_key
from handlers_gcp import runtime as gcp_runtime
from handlers_gcp.cloud_logging import (
    CloudLoggingFormatter,
    TraceContext,
    invocation,
    parse_cloud_trace_context,
    parse_traceparent,
    uninstall,
)
from handlers_gcp.events import BadEventError, pubsub_message, storage_object

KEY = "unit-test-key"


@pytest.fixture
def client(monkeypatch: pytest.MonkeyPatch, repo_root: Path) -> Iterator[object]:
    monkeypatch.setenv("IMGGO_FN_STORE_URL", "memory://")
    monkeypatch.setenv("IMGGO_API_KEY", "imggo_test_unit")
    monkeypatch.setenv("IMGGO_BASE_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("IMGGO_FN_API_KEYS", f"tenant-a={hash_key(KEY)}")
    monkeypatch.setenv("IMGGO_WEBHOOK_SECRET", "a-webhook-secret-123456")
    gcp_runtime.reset_for_tests()
    app = create_app("http_api", str(repo_root / "main.py"))
    root_level = logging.getLogger().level
    yield app.test_client()
    gcp_runtime.reset_for_tests()
    uninstall()  # the handler installed its stdout JSON handler in this process
    logging.getLogger().setLevel(root_level)


def test_http_function_translates_both_ways(client) -> None:  # type: ignore[no-untyped-def]
    r = client.get("/health")
    assert r.status_code == 200 and r.get_json()["status"] == "ok"
    assert r.headers["Content-Type"] == "application/json"
    assert r.headers["X-Request-Id"]
    # Query as sent (first value wins), headers case-insensitively, auth from them.
    listed = client.get(
        "/v1/jobs?limit=1&limit=7&status=queued", headers={"AUTHORIZATION": f"Bearer {KEY}"}
    )
    assert listed.status_code == 200, listed.get_data()
    assert listed.get_json()["items"] == []
    bad = client.get("/v1/jobs?limit=abc", headers={"Authorization": f"Bearer {KEY}"})
    assert bad.status_code in (400, 422) and bad.get_json()["error"]["code"]
    echo = client.get("/health", headers={"X-Request-Id": "req-123"})
    assert echo.headers["X-Request-Id"] == "req-123"


def test_webhook_body_reaches_the_core_byte_for_byte(client) -> None:  # type: ignore[no-untyped-def]
    # Signed over these exact bytes (odd spacing included): the core checks the HMAC, so
    # getting past it (to "unknown job") proves body and header arrived untouched.
    stamp = datetime.now(UTC).isoformat()
    body = (
        '{"event":"job.succeeded", "job_id":"imggo-x","pattern_id":"p",'
        f'"manifest":null,"error":null,"timestamp":"{stamp}"}}'
    ).encode()
    digest = hmac.new(b"a-webhook-secret-123456", body, hashlib.sha256).hexdigest()
    headers = {"Content-Type": "application/json", "X-ImgGo-Signature": f"sha256={digest}"}
    r = client.post("/v1/webhooks/imggo", data=body, headers=headers)
    assert r.status_code == 404 and r.get_json()["error"]["code"] == "unknown_job", r.get_data()
    tampered = client.post("/v1/webhooks/imggo", data=body.replace(b", ", b","), headers=headers)
    assert tampered.status_code == 401


def test_head_has_no_body_and_unknown_route_is_enveloped(client) -> None:  # type: ignore[no-untyped-def]
    head = client.head("/health")
    assert head.status_code == 200 and head.get_data() == b""
    missing = client.post("/nope", data=b"x")
    assert missing.status_code in (404, 405)
    assert missing.get_json()["error"]["code"]


def test_pubsub_envelope_parsing() -> None:
    message = pubsub_message(
        {
            "message": {
                "data": "eyJ2IjoxfQ==",
                "attributes": {"job_id": "j"},
                "messageId": "42",
                "publishTime": "2024-01-01T00:00:00Z",
            },
            "subscription": "projects/p/subscriptions/s",
        }
    )
    assert message.data == b'{"v":1}' and message.message_id == "42"
    assert message.attributes == {"job_id": "j"} and message.delivery_attempt is None
    counted = {"message": {"data": ""}, "deliveryAttempt": 4}
    assert pubsub_message(counted).delivery_attempt == 4
    for odd in (0, -1, "4", True, 2.5):  # not a count: as if there were none
        assert pubsub_message({**counted, "deliveryAttempt": odd}).delivery_attempt is None
    assert pubsub_message(json.dumps({"message": {"data": ""}})).data == b""
    for bad in ({}, {"message": "x"}, {"message": {"data": "***"}}, "not json", [1]):
        with pytest.raises(BadEventError):
            pubsub_message(bad)


def test_storage_object_parsing() -> None:
    obj = storage_object(
        {"bucket": "b", "name": "fn/incoming/t/j", "size": "123", "contentType": "image/png"}
    )
    assert (obj.bucket, obj.name, obj.size, obj.content_type) == (
        "b",
        "fn/incoming/t/j",
        123,
        "image/png",
    )
    assert storage_object({"bucket": "b", "name": "n", "size": 5}).size == 5
    for bad in (
        {"bucket": "b", "name": "n"},
        {"bucket": "b", "size": "1"},
        {"name": "n"},
        {"bucket": "b", "name": "n", "size": "many"},
        {"bucket": "b", "name": "n", "size": True},
    ):
        with pytest.raises(BadEventError):
            storage_object(bad)


def test_trace_header_parsing() -> None:
    tp = parse_traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
    assert tp == TraceContext("4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7", True)
    assert parse_traceparent("00-" + "0" * 32 + "-00f067aa0ba902b7-01") is None
    assert parse_traceparent("garbage") is None and parse_traceparent(None) is None
    ct = parse_cloud_trace_context("105445AA7843BC8BF206B12000100000/1;o=1")
    assert ct == TraceContext("105445aa7843bc8bf206b12000100000", "0000000000000001", True)
    assert parse_cloud_trace_context("105445aa7843bc8bf206b12000100000") == TraceContext(
        "105445aa7843bc8bf206b12000100000"
    )
    assert parse_cloud_trace_context("nope/1") is None


def test_log_lines_are_cloud_logging_json(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", "proj-1")
    root_level = logging.getLogger().level
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(CloudLoggingFormatter())
    logger = logging.getLogger("imggo.test.cloudlogging")
    logger.addHandler(handler)
    logger.propagate = False
    logger.setLevel(logging.INFO)
    trace = TraceContext("4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7", True)
    with invocation(trace, {"execution_id": "exec-1", "empty": ""}):
        logger.warning("careful %s", "now", extra={"job_id": "j-1"})
        try:
            raise RuntimeError("boom")
        except RuntimeError:
            logger.exception("failed")
    logger.info("outside")
    uninstall()
    logging.getLogger().setLevel(root_level)
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    first, second, third = lines
    assert first["severity"] == "WARNING" and first["message"] == "careful now"
    assert first["job_id"] == "j-1" and first["logger"] == "imggo.test.cloudlogging"
    assert first["logging.googleapis.com/trace"] == (
        "projects/proj-1/traces/4bf92f3577b34da6a3ce929d0e0e4736"
    )
    assert first["logging.googleapis.com/spanId"] == "00f067aa0ba902b7"
    assert first["logging.googleapis.com/labels"] == {"execution_id": "exec-1"}
    assert second["severity"] == "ERROR" and "RuntimeError: boom" in second["message"]
    assert "logging.googleapis.com/trace" not in third


def test_cold_import_builds_nothing_and_loads_no_cloud_sdk(repo_root: Path) -> None:
    """Importing main.py (what functions-framework does before forking workers) and
    answering /health must not import the heavy Google clients or build services; a
    JSON submission with Pub/Sub and GCS configured loads neither of them."""
    code = """
import sys
from functions_framework import create_app
import handlers_gcp.runtime as rt
client = create_app("http_api", "main.py").test_client()
heavy = ("google.cloud.firestore", "google.cloud.pubsub_v1", "google.cloud.storage",
         "google.cloud.secretmanager", "grpc")
assert not [m for m in heavy if m in sys.modules], [m for m in heavy if m in sys.modules]
assert not rt.host.started
assert client.get("/health").status_code == 200
assert not rt.host().runtime.built
r = client.post("/v1/jobs", json={"pattern_id": "invoice", "image_url": "http://127.0.0.1:9/a.png"},
                headers={"Authorization": "Bearer k"})
assert r.status_code in (202, 422, 503), r.get_data()
loaded = [m for m in heavy[1:4] if m in sys.modules]
assert not loaded, loaded
print("ok")
"""
    env = {
        "PATH": "/usr/bin:/bin",
        "PYTHONPATH": os.environ["PYTHONPATH"],  # the DNS guard
        "IMGGO_FN_STORE_URL": "memory://",
        "IMGGO_FN_BLOB_URL": "gs://some-bucket/fn",
        "IMGGO_FN_QUEUE_URL": "pubsub://projects/demo-imggo/topics/work",
        "IMGGO_API_KEY": "imggo_test_x",
        "IMGGO_BASE_URL": "http://127.0.0.1:9",
        "IMGGO_TIMEOUT_S": "0.5",
        "IMGGO_FN_SUBMIT_DEADLINE_S": "0.5",
        "IMGGO_FN_SSRF_ALLOW": "127.0.0.1",
        "IMGGO_FN_API_KEYS": f"t={hash_key('k')}",
        "NO_GCE_CHECK": "True",
        "GCE_METADATA_HOST": "127.0.0.1:9",
        "GCE_METADATA_IP": "127.0.0.1:9",
    }
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=repo_root,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr + done.stdout
    assert done.stdout.strip().endswith("ok")


def test_the_dns_guard_is_on_here_and_in_child_processes(repo_root: Path) -> None:
    import socket

    with pytest.raises(OSError, match="refused"):
        socket.getaddrinfo("metadata.google.internal", 80)
    assert socket.getaddrinfo("127.0.0.1", 80)
    child = subprocess.run(
        [sys.executable, "-c", "import socket; socket.getaddrinfo('example.invalid', 80)"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert child.returncode != 0 and "refused" in child.stderr


def test_missing_emulator_is_an_error_with_instructions(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from tests.gcp.emulators import EmulatorMissingError, firestore_emulator

    monkeypatch.setenv("IMGGO_GCLOUD_SDK_ROOT", str(tmp_path))
    with pytest.raises(EmulatorMissingError, match="cloud-firestore-emulator"):
        firestore_emulator()
