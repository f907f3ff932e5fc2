"""End to end over real HTTP: our server + SQLite + the simulator + signed webhooks."""

from __future__ import annotations

import time

from core.service.reconcile import reconcile
from imggo_simulator import SimulatorConfig
from tests.integration.conftest import OTHER_KEY, auth, close_stack, make_stack
from tests.support.images import png


def test_upload_is_processed_and_arrives_by_webhook(tmp_path):
    # poll-through disabled: only the signed webhook can move the job
    stack = make_stack(tmp_path, SimulatorConfig(processing_s=0.05), poll_after_s=3600)
    try:
        r = stack.client.post(
            "/v1/jobs",
            headers=auth(),
            data={"pattern_id": "image-facts"},
            files={"image": ("cat.png", png(1), "image/png")},
        )
        assert r.status_code == 202, r.text
        job_id = r.json()["id"]
        assert r.headers["location"] == f"/v1/jobs/{job_id}"
        job = stack.wait_for(job_id)
        assert job["status"] == "succeeded", job
        manifest = job["manifest"]
        assert (manifest["width"], manifest["height"], manifest["format"]) == (24, 24, "PNG")
        assert manifest["sha256"] == job["content_sha256"]
        # The simulator counts a delivery once our answer to it is back, which may be
        # just after the job it moved is visible.
        give_up = time.monotonic() + 5.0
        while stack.simulator.webhook_stats()["sent"] < 1 and time.monotonic() < give_up:
            time.sleep(0.01)
        assert stack.simulator.webhook_stats()["sent"] >= 1
    finally:
        close_stack(stack)


def test_url_submission_list_export_and_tenant_isolation(stack, image_host):
    r = stack.client.post(
        "/v1/jobs",
        headers=auth(),
        json={"pattern_id": "image-facts", "image_url": image_host.url(7)},
    )
    assert r.status_code == 202, r.text
    job = stack.wait_for(r.json()["id"])
    assert job["status"] == "succeeded", job
    csv = stack.client.get(f"/v1/jobs/{job['id']}", params={"format": "csv"}, headers=auth())
    assert csv.status_code == 200 and csv.headers["content-type"].startswith("text/")
    listed = stack.client.get("/v1/jobs", params={"status": "succeeded"}, headers=auth()).json()
    assert job["id"] in [j["id"] for j in listed["items"]]
    assert stack.client.get(f"/v1/jobs/{job['id']}", headers=auth(OTHER_KEY)).status_code == 404


def test_ssrf_guard_refuses_before_imggo_is_called(stack):
    before = stack.simulator.ingest_calls()
    r = stack.client.post(
        "/v1/jobs",
        headers=auth(),
        json={"pattern_id": "invoice", "image_url": "http://169.254.169.254/latest"},
    )
    assert r.status_code == 422 and r.json()["error"]["code"] == "forbidden_image_url"
    assert stack.simulator.ingest_calls() == before


def test_unknown_pattern_is_a_422_with_the_job_id(stack):
    r = stack.client.post(
        "/v1/jobs",
        headers=auth(),
        data={"pattern_id": "no-such-pattern"},
        files={"image": ("a.png", png(2), "image/png")},
    )
    assert r.status_code == 422, r.text
    error = r.json()["error"]
    assert error["code"] == "imggo_rejected" and error["details"]["job_id"]


def test_batch_through_the_local_queue(stack, image_host):
    items = [{"image_url": image_host.url(i)} for i in range(10, 16)] + [
        {"image_url": "gopher://x"}
    ]
    r = stack.client.post(
        "/v1/batches",
        headers={**auth(), "Idempotency-Key": "batch-1"},
        json={"pattern_id": "image-facts", "items": items},
    )
    assert r.status_code == 202, r.text
    batch = r.json()
    assert batch["counts"]["invalid"] == 1
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        # reading the jobs triggers poll-through; the batch view reads the store
        for item in batch["items"]:
            if item["job_id"]:
                stack.client.get(f"/v1/jobs/{item['job_id']}", headers=auth())
        view = stack.client.get(batch["links"]["self"], headers=auth()).json()
        if view["complete"]:
            break
        time.sleep(0.1)
    assert view["complete"] and view["counts"]["succeeded"] == 6, view["counts"]
    replay = stack.client.post(
        "/v1/batches",
        headers={**auth(), "Idempotency-Key": "batch-1"},
        json={"pattern_id": "image-facts", "items": items},
    )
    assert replay.status_code == 200 and replay.json()["id"] == batch["id"]
    assert stack.simulator.ingest_count() == 6


def test_reconcile_recovers_a_dropped_webhook(tmp_path):
    stack = make_stack(
        tmp_path,
        SimulatorConfig(processing_s=0.02, webhook_drop_rate=1.0),
        poll_after_s=3600,
        reconcile_age_s=0,
    )
    try:
        r = stack.client.post(
            "/v1/jobs",
            headers=auth(),
            data={"pattern_id": "receipt"},
            files={"image": ("r.png", png(3), "image/png")},
        )
        job_id = r.json()["id"]
        time.sleep(0.3)  # ImgGo finished; its webhook was lost
        assert stack.client.get(f"/v1/jobs/{job_id}", headers=auth()).json()["status"] == "queued"
        report = reconcile(stack.services)
        assert report.advanced == 1
        assert (
            stack.client.get(f"/v1/jobs/{job_id}", headers=auth()).json()["status"] == "succeeded"
        )
    finally:
        close_stack(stack)


def test_health_ready_and_openapi(stack):
    assert stack.client.get("/health").json()["status"] == "ok"
    ready = stack.client.get("/health/ready").json()
    assert ready["checks"] == {"store": "ok", "imggo": "ok"}
    doc = stack.client.get("/openapi.json").json()
    assert "/v1/webhooks/imggo" in doc["paths"]


def test_ready_reports_an_unreachable_imggo(stack):
    stack.simulator.stop()
    r = stack.client.get("/health/ready")
    assert r.status_code == 503 and r.json()["error"]["details"]["checks"]["imggo"].startswith(
        "error"
    )


def test_oversized_and_wrong_typed_bodies_over_real_http(stack):
    big = b"\x89PNG\r\n\x1a\n" + b"0" * (12 * 1024 * 1024)
    r = stack.client.post(
        "/v1/jobs",
        headers={**auth(), "Content-Type": "image/png"},
        params={"pattern_id": "invoice"},
        content=big,
    )
    assert r.status_code == 413 and r.json()["error"]["code"] == "payload_too_large"
    r = stack.client.post(
        "/v1/jobs", headers={**auth(), "Content-Type": "text/csv"}, content=b"a,b"
    )
    assert r.status_code == 415
