"""End to end on loopback, through functions-framework's real server (gunicorn):
submit -> ImgGo simulator -> signed webhook -> Firestore; a direct upload through a V4
signed PUT, its finalize CloudEvent, the simulator fetching a V4 signed GET; a batch
through the Pub/Sub emulator with a poisoned message; a transient failure redelivered;
reconcile from its scheduler topic; Cloud Logging JSON with the request's trace."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from core.domain.job import JobStatus
from tests.gcp.emulators import PROJECT
from tests.gcp.eventarc import deliver, pubsub_event, pull_and_deliver, storage_event
from tests.gcp.stack import BUCKET, GcpStack, auth, gcp_stack
from tests.support.images import png

pytestmark = pytest.mark.slow

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"


@pytest.fixture(scope="module")
def stack(
    firestore_host: str,
    pubsub_host: str,
    repo_root: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[GcpStack]:
    with gcp_stack(repo_root, tmp_path_factory.mktemp("gcp-e2e")) as built:
        yield built


@pytest.fixture
def fresh(stack: GcpStack) -> GcpStack:
    stack.simulator.config.error_rate = 0.0
    return stack


def test_health_and_error_envelope(fresh: GcpStack) -> None:
    r = fresh.client.get("/health")
    assert r.status_code == 200 and r.json()["status"] == "ok"
    assert fresh.client.get("/v1/jobs").status_code == 401
    missing = fresh.client.get("/v1/nothing-here", headers=auth())
    assert missing.status_code == 404 and missing.json()["error"]["code"]
    head = fresh.client.head("/health")
    assert head.status_code == 200 and head.content == b""


def test_submit_webhook_lands_in_firestore_with_trace_in_logs(fresh: GcpStack) -> None:
    r = fresh.client.post(
        "/v1/jobs",
        headers={**auth(), "traceparent": f"00-{TRACE_ID}-00f067aa0ba902b7-01"},
        data={"pattern_id": "image-facts"},
        files={"image": ("cat.png", png(41), "image/png")},
    )
    assert r.status_code == 202, r.text
    job_id = r.json()["id"]
    job = fresh.wait_for_job(job_id)  # moved by the simulator's signed webhook alone
    assert job.status is JobStatus.SUCCEEDED, job
    assert job.manifest is not None and job.manifest["format"] == "PNG"
    # The multipart image went into GCS (JSON API) and ImgGo fetched it by signed GET.
    assert any(n.startswith("fn/uploads/tenant-a/") for n in fresh.gcs.names(BUCKET))
    assert any(
        m == "GET" and p.startswith(f"/{BUCKET}/fn/uploads/") and s == 200
        for m, p, s in fresh.gcs.requests
    )
    api = fresh.client.get(f"/v1/jobs/{job_id}", headers=auth()).json()
    assert api["status"] == "succeeded" and api["manifest"] == job.manifest

    entry = fresh.servers["http_api"].wait_for_log(
        lambda e: (
            e.get("httpRequest", {}).get("requestUrl") == "/v1/jobs"
            and e.get("logging.googleapis.com/trace") == f"projects/{PROJECT}/traces/{TRACE_ID}"
        )
    )
    assert entry["severity"] == "INFO"
    assert entry["logging.googleapis.com/spanId"] == "00f067aa0ba902b7"
    assert entry["logging.googleapis.com/trace_sampled"] is True
    assert entry["httpRequest"]["status"] == 202
    # X-Cloud-Trace-Context works too (decimal span id, 16 hex digits in the entry).
    fresh.client.get("/health", headers={"X-Cloud-Trace-Context": f"{TRACE_ID[::-1]}/17;o=0"})
    cloud = fresh.servers["http_api"].wait_for_log(
        lambda e: e.get("logging.googleapis.com/trace", "").endswith(TRACE_ID[::-1])
    )
    assert cloud["logging.googleapis.com/spanId"] == "0000000000000011"
    # Secrets never reach the logs.
    assert "imggo_test_simulator" not in fresh.servers["http_api"].output()


def test_direct_upload_through_signed_urls_and_finalize_event(fresh: GcpStack) -> None:
    image = png(42, size=40)
    r = fresh.client.post(
        "/v1/uploads",
        headers=auth(),
        json={"pattern_id": "image-facts", "content_type": "image/png", "size": len(image)},
    )
    assert r.status_code == 201, r.text
    job_id, upload = r.json()["job"]["id"], r.json()["upload"]
    assert upload["method"] == "PUT"
    signed = parse_qs(urlsplit(upload["url"]).query)
    assert signed["X-Goog-SignedHeaders"] == ["content-type;host;x-goog-content-length-range"]
    assert upload["headers"]["x-goog-content-length-range"] == f"{len(image)},{len(image)}"

    wrong_size = httpx.put(upload["url"], headers=upload["headers"], content=image + b"!!")
    assert wrong_size.status_code == 400
    put = httpx.put(upload["url"], headers=upload["headers"], content=image)
    assert put.status_code == 200, put.text

    name = f"fn/incoming/tenant-a/{job_id}"
    event = storage_event(fresh.gcs.object_resource(BUCKET, name))
    assert deliver(fresh.url("storage_finalized"), event, "binary").status_code == 200
    job = fresh.wait_for_job(job_id)
    assert job.status is JobStatus.SUCCEEDED and job.source.kind == "upload"
    assert job.manifest is not None and job.manifest["width"] == 40
    fetched = [p for m, p, s in fresh.gcs.requests if m == "GET" and p == f"/{BUCKET}/{name}"]
    assert fetched, "ImgGo never fetched the upload through its signed GET URL"
    # A repeated event (at-least-once delivery) changes nothing.
    again = deliver(fresh.url("storage_finalized"), event, "structured")
    assert again.status_code == 200
    assert fresh.store.get(job_id) == job
    # An object outside the store's prefix is ignored, acknowledged.
    other = {**fresh.gcs.object_resource(BUCKET, name), "name": "elsewhere/x.png"}
    assert deliver(fresh.url("storage_finalized"), storage_event(other)).status_code == 200


def test_upload_that_does_not_match_its_declaration_is_rejected(fresh: GcpStack) -> None:
    r = fresh.client.post(
        "/v1/uploads",
        headers=auth(),
        json={"pattern_id": "image-facts", "content_type": "image/png", "size": 1234},
    )
    job_id = r.json()["job"]["id"]
    # Written around the signed URL (which would have refused it): another size.
    name = f"fn/incoming/tenant-a/{job_id}"
    fresh.gcs.put_object(BUCKET, name, png(43), "image/png")
    event = storage_event(fresh.gcs.object_resource(BUCKET, name))
    assert deliver(fresh.url("storage_finalized"), event).status_code == 200
    job = fresh.wait_for_job(job_id)
    assert job.status is JobStatus.REJECTED
    assert job.error is not None and job.error.code == "upload_mismatch"


def test_batch_via_pubsub_with_a_poisoned_item(fresh: GcpStack) -> None:
    fresh.drain()
    items = [{"image_url": fresh.images.url(i)} for i in range(50, 53)]
    r = fresh.client.post(
        "/v1/batches",
        headers={**auth(), "Idempotency-Key": "gcp-batch-1"},
        json={"pattern_id": "image-facts", "items": items},
    )
    assert r.status_code == 202, r.text
    batch = r.json()
    # Poison: not our message format; and a well-formed message for a job that is gone.
    fresh.publisher.publish(fresh.topic, b"\x00not json at all").result()
    fresh.publisher.publish(
        fresh.topic, json.dumps({"v": 1, "job_id": "no-such-job"}).encode()
    ).result()

    outcomes = pull_and_deliver(
        fresh.subscriber, fresh.subscription, fresh.topic, fresh.url("pubsub_work"), expect=5
    )
    assert [status for _, status in outcomes] == [200] * 5  # all acknowledged
    for item in batch["items"]:
        assert fresh.wait_for_job(item["job_id"]).status is JobStatus.SUCCEEDED
    view = fresh.client.get(batch["links"]["self"], headers=auth()).json()
    assert view["complete"] and view["counts"]["succeeded"] == 3, view
    worker = fresh.servers["pubsub_work"]
    poison = worker.wait_for_log(lambda e: e.get("outcome") == "poison")
    assert poison["severity"] == "ERROR"
    assert worker.wait_for_log(lambda e: e.get("code") == "job_missing")["job_id"] == (
        "no-such-job"
    )
    # Nothing is left to redeliver.
    assert not fresh.subscriber.pull(
        subscription=fresh.subscription, max_messages=10, timeout=2
    ).received_messages


def test_transient_failure_is_redelivered_until_it_succeeds(fresh: GcpStack) -> None:
    fresh.drain()
    fresh.simulator.config.error_rate = 1.0  # ImgGo answers 5xx to everything
    r = fresh.client.post(
        "/v1/batches",
        headers=auth(),
        json={"pattern_id": "image-facts", "items": [{"image_url": fresh.images.url(60)}]},
    )
    assert r.status_code == 202, r.text
    job_id = r.json()["items"][0]["job_id"]
    first = pull_and_deliver(
        fresh.subscriber, fresh.subscription, fresh.topic, fresh.url("pubsub_work"), expect=1
    )
    assert first[0][1] == 500  # raised: Pub/Sub keeps the message
    job = fresh.store.get(job_id)
    assert job is not None and job.status is JobStatus.ACCEPTED and job.attempts >= 1

    fresh.simulator.config.error_rate = 0.0
    second = pull_and_deliver(
        fresh.subscriber, fresh.subscription, fresh.topic, fresh.url("pubsub_work"), expect=1
    )
    assert second == [(first[0][0], 200)]  # the same message, redelivered and acknowledged
    assert fresh.wait_for_job(job_id).status is JobStatus.SUCCEEDED


def test_wrong_event_type_is_acknowledged_not_retried(fresh: GcpStack) -> None:
    event = pubsub_event(fresh.topic, b"{}")
    event["type"] = "google.cloud.storage.object.v1.finalized"
    assert deliver(fresh.url("pubsub_work"), event).status_code == 200
    garbled = pubsub_event(fresh.topic, b"x")
    garbled.data = {"message": {"data": "%%% not base64"}}
    assert deliver(fresh.url("pubsub_work"), garbled, "structured").status_code == 200


def test_reconcile_from_the_scheduler_topic(fresh: GcpStack) -> None:
    # A job accepted but never dispatched: its queue message is lost (we drop it).
    r = fresh.client.post(
        "/v1/batches",
        headers=auth(),
        json={"pattern_id": "image-facts", "items": [{"image_url": fresh.images.url(70)}]},
    )
    job_id = r.json()["items"][0]["job_id"]
    fresh.drain()
    assert fresh.store.get(job_id).status is JobStatus.ACCEPTED  # type: ignore[union-attr]

    # What Cloud Scheduler publishes to the reconcile topic, as Eventarc delivers it.
    tick = pubsub_event(
        f"projects/{PROJECT}/topics/imggo-reconcile",
        b'{"source":"cloud-scheduler"}',
        traceparent=f"00-{TRACE_ID}-00f067aa0ba902b8-00",
    )
    assert deliver(fresh.url("pubsub_reconcile"), tick, "structured").status_code == 200
    assert fresh.wait_for_job(job_id).status is JobStatus.SUCCEEDED
    report = fresh.servers["pubsub_reconcile"].wait_for_log(lambda e: "report" in e)
    assert report["report"]["dispatched"] >= 1
    assert report["logging.googleapis.com/trace"] == f"projects/{PROJECT}/traces/{TRACE_ID}"


def test_no_function_tried_a_dns_lookup(stack: GcpStack) -> None:
    for server in stack.servers.values():
        assert "stay on loopback" not in server.output(), server.target
