"""One stored job no reader can decode, planted straight into a real SQLite store file, must
not take anything else down: the HTTP listing, a job's and a batch's status, and every
reconcile pass still answer, the bad job ends `failed` with a reason, and nothing of its
content reaches the logs."""

import json
import logging
from pathlib import Path

import pytest

from core.adapters.stores.sqlite import SqliteJobStore
from core.api.app import HttpApp
from core.api.auth import hash_key
from core.api.http import Headers, Request
from core.domain.errors import UnavailableError
from core.domain.job import Job, JobSource, JobStatus
from core.service.reconcile import reconcile
from tests.fakes import FakeImggo, make_services
from tests.support.unreadable import SECRET, job_record, plant_sqlite, unreadable_doc

KEY = "key-tenant-a"


@pytest.fixture
def services(tmp_path: Path):
    services = make_services(
        imggo=FakeImggo(), api_key_hashes={hash_key(KEY): "a"}, reconcile_age_s=0
    )
    services.store = SqliteJobStore(tmp_path / "jobs.db", clock=services.clock)
    yield services
    services.close()


def plant(services, job_id, *, tenant="a", kind="lone_surrogate", status="running", at=None):
    now = services.clock.now() if at is None else at
    record = job_record(job_id, tenant, created_at=now, updated_at=now, status=status)
    plant_sqlite(
        services.store.path,
        job_id=job_id,
        tenant=tenant,
        raw=unreadable_doc(kind, record),
        created_at=now,
        updated_at=now,
        status=status,
    )


def call(app, method, path, *, body=None, query=None):
    headers = Headers({"Authorization": f"Bearer {KEY}"})
    if body is not None:
        headers["Content-Type"] = "application/json"
    raw = json.dumps(body).encode() if body is not None else b""
    return app.handle(Request(method, path, headers, query or {}, raw))


def submit(app, n):
    r = call(
        app,
        "POST",
        "/v1/jobs",
        body={"pattern_id": "invoice", "image_url": f"https://images.example/{n}.png"},
    )
    assert r.status == 202, r.body
    return r.json_body()["id"]


def accepted(services, job_id, tenant, *, at):
    job = Job(
        id=job_id,
        tenant=tenant,
        pattern_id="invoice",
        source=JobSource(kind="url", url="https://images.example/ok.png"),
        created_at=at,
        updated_at=at,
    )
    services.store.create(job)


# --------------------------------------------------------------------------- HTTP
def test_a_listing_with_an_unreadable_row_answers_200_and_fails_that_job(services, caplog):
    app = HttpApp(services)
    first = submit(app, 1)
    services.clock.advance(1)
    plant(services, "bad-1")
    services.clock.advance(1)
    last = submit(app, 2)
    with caplog.at_level(logging.DEBUG):
        r = call(app, "GET", "/v1/jobs")
    assert r.status == 200, r.body
    body = r.json_body()
    assert [item["id"] for item in body["items"]] == [last, "bad-1", first]
    bad = body["items"][1]
    assert bad["status"] == "failed" and bad["error"]["code"] == "unreadable_record"
    assert body["skipped"] == 0 and body["next_cursor"] is None
    assert "bad-1" in caplog.text and SECRET not in caplog.text
    # It stays failed: the next reader finds an ordinary job.
    again = call(app, "GET", "/v1/jobs").json_body()
    assert again["items"][1] == bad


def test_a_filtered_listing_with_an_unreadable_row_answers_200(services):
    app = HttpApp(services)
    plant(services, "bad-1", kind="not_json")
    r = call(app, "GET", "/v1/jobs", query={"status": "running"})
    assert r.status == 200, r.body
    assert r.json_body()["items"] == []  # it was failed, so it is no longer running
    assert r.json_body()["skipped"] == 0
    failed = call(app, "GET", "/v1/jobs", query={"status": "failed"}).json_body()
    assert [item["id"] for item in failed["items"]] == ["bad-1"]


def test_get_of_an_unreadable_job_answers_it_failed(services):
    app = HttpApp(services)
    plant(services, "bad-1", kind="ill_typed_time")
    r = call(app, "GET", "/v1/jobs/bad-1")
    assert r.status == 200, r.body
    assert r.json_body()["status"] == "failed"
    assert r.json_body()["error"]["code"] == "unreadable_record"
    plant(services, "bad-2", tenant="b")
    other = call(app, "GET", "/v1/jobs/bad-2")
    assert other.status == 404  # another tenant's job, readable or not, is not found


def test_batch_status_reports_an_unreadable_item_as_its_error(services):
    app = HttpApp(services)
    items = [{"image_url": f"https://images.example/{i}.png"} for i in range(3)]
    created = call(app, "POST", "/v1/batches", body={"pattern_id": "invoice", "items": items})
    assert created.status == 202, created.body
    batch = created.json_body()
    broken = batch["items"][1]["job_id"]
    plant(services, broken, kind="unknown_status")  # overwrites the item's job row
    r = call(app, "GET", f"/v1/batches/{batch['id']}")
    assert r.status == 200, r.body
    view = r.json_body()
    assert [item["status"] for item in view["items"]] == ["queued", "failed", "queued"]
    assert view["items"][1]["job_id"] == broken
    assert view["items"][1]["error"]["code"] == "unreadable_record"


# --------------------------------------------------------------------------- reconcile
def test_reconcile_fails_an_unreadable_job_and_serves_every_other_tenant(services, caplog):
    start = services.clock.now()
    plant(services, "bad-1", kind="not_json", at=start - 10)  # the oldest: first in the scan
    accepted(services, "good-b", "b", at=start - 5)
    accepted(services, "good-c", "c", at=start - 1)
    with caplog.at_level(logging.DEBUG):
        report = reconcile(services)
    assert report.dispatched == 2
    assert (report.checked, report.unreadable, report.set_aside, report.errors) == (3, 1, 1, 0)
    assert services.store.get("good-b").status is JobStatus.QUEUED
    failed = services.store.get("bad-1")
    assert failed.status is JobStatus.FAILED and failed.error.code == "unreadable_record"
    assert "bad-1" in caplog.text and SECRET not in caplog.text
    services.clock.advance(1)
    assert reconcile(services).unreadable == 0  # failed once, then left alone


def test_reconcile_fails_a_job_whose_processing_raises_and_goes_on(services, caplog):
    start = services.clock.now()
    accepted(services, "poison", "a", at=start - 10)
    accepted(services, "fine", "b", at=start - 5)

    def explode(submission):
        if submission.idempotency_key == "poison":
            raise TypeError("something in this job's data breaks the client")

    services.imggo.on_submit = explode
    with caplog.at_level(logging.DEBUG):
        report = reconcile(services)
    assert (report.checked, report.dispatched, report.errors) == (2, 1, 1)
    assert services.store.get("fine").status is JobStatus.QUEUED
    poison = services.store.get("poison")
    assert poison.status is JobStatus.FAILED and poison.error.code == "processing_failed"
    assert "poison" in caplog.text and "TypeError" in caplog.text


def test_reconcile_leaves_a_job_whose_processing_meets_an_outage_for_next_time(services):
    start = services.clock.now()
    accepted(services, "unlucky", "a", at=start - 10)
    accepted(services, "fine", "b", at=start - 5)

    def outage(submission):
        if submission.idempotency_key == "unlucky":
            raise UnavailableError("the store blinked")

    services.imggo.on_submit = outage
    report = reconcile(services)
    assert (report.dispatched, report.errors) == (1, 1)
    assert services.store.get("unlucky").status is JobStatus.ACCEPTED  # not failed: try again
    services.imggo.on_submit = None
    services.clock.advance(1)
    assert reconcile(services).dispatched == 1
