"""The cloud scenario suite: the same end-to-end behaviour, proven on every cloud.

Written once, run by each cloud through its real handlers, real event shapes and real
(or emulated) services. A cloud's test module subclasses `CloudScenarios` and provides
a `cloud` fixture returning its `CloudDriver`: the only per-cloud code is how to send an
HTTP request, deliver queue messages, report an object landing, fire the timer, rotate
a secret and take the job store away.

    class TestAwsScenarios(CloudScenarios):
        @pytest.fixture
        def cloud(self, ...) -> AwsDriver: ...

What a driver must honour:
- HTTP goes through the cloud's HTTP entry point (an API Gateway event, a
  functions-framework server, an Azure HttpRequest).
- `deliver_work` pulls what waits on the cloud's work queue and hands each message to
  the worker entry point the way the platform does, then acts on the answer as the
  platform does: an acknowledged message is gone; one not acknowledged becomes visible
  again at once (the test stands in for the visibility timeout / ack deadline).
- The configuration (webhooks only - no poll-through -, a one-second secrets TTL, the
  SSRF allow-list for the loopback image host) is the driver's to set.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, Protocol

import httpx

from core.domain.job import Job, JobStatus
from core.ports import WorkItem
from core.service.messages import encode_work_item
from imggo_simulator import DEMO_API_KEY, SimulatorServer
from tests.support.images import png

PATTERN = "image-facts"


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass(frozen=True)
class Delivery:
    body: bytes
    acknowledged: bool


class CloudDriver(Protocol):
    simulator: SimulatorServer
    tenant: str  # the tenant of the driver's Bearer key
    outage_budget_s: float  # how long a request may take while the store is away
    # True where the work queue can hold a message back (SQS, Azure Queue): a deferral
    # is then the item sent again, delayed, and the delivery acknowledged.
    queue_can_delay: bool

    def api(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        body: bytes | None = None,
        content_type: str | None = None,
        query: str = "",
        headers: dict[str, str] | None = None,
    ) -> Answer: ...

    def stored(self, job_id: str) -> Job | None: ...

    def image_url(self, n: int) -> str: ...

    def publish_raw(self, body: bytes) -> None: ...

    def drain(self) -> None: ...

    def deliver_work(self, expect: int) -> list[Delivery]: ...

    def object_landed(self, job_id: str, tenant: str, data: bytes, upload: dict[str, Any]) -> bool:
        """PUT `data` to the signed `upload` URL, then report the object landing through
        the upload entry point; True when the platform's event was acknowledged."""
        ...

    def tick(self) -> None: ...

    def rotate_imggo_key(self, new_key: str) -> None: ...

    def store_outage(self) -> AbstractContextManager[CloudDriver]:
        """A driver (same cloud, fresh container) whose job store does not answer."""
        ...


def wait_until(check: Callable[[], Job | None], *, timeout: float = 15.0) -> Job:
    deadline = time.monotonic() + timeout
    while True:
        job = check()
        if job is not None and job.terminal:
            return job
        if time.monotonic() > deadline:
            raise AssertionError(f"still {job and job.status} after {timeout} s")
        time.sleep(0.05)


def deliver_until_acknowledged(
    cloud: CloudDriver, n: int, *, timeout: float = 20.0
) -> list[Delivery]:
    """Deliver work until `n` deliveries were acknowledged, and return every delivery
    made. A deferred item comes back - held back, or at once on Pub/Sub - and defers
    again while the budget still holds for a 429's Retry-After."""
    delivered: list[Delivery] = []
    deadline = time.monotonic() + timeout
    while (done := sum(d.acknowledged for d in delivered)) < n and time.monotonic() < deadline:
        delivered += cloud.deliver_work(expect=n - done)
        time.sleep(0.2)
    return delivered


class CloudScenarios:
    """The scenarios; each test gets a fresh driver from the subclass's `cloud` fixture."""

    def test_submit_then_the_signed_webhook_stores_the_result(self, cloud: CloudDriver) -> None:
        created = cloud.api(
            "POST",
            "/v1/jobs",
            body=png(101),
            content_type="image/png",
            query="pattern_id=" + PATTERN,
        )
        assert created.status == 202, created.body
        job_id = created.json()["id"]
        # Poll-through is off: only ImgGo's signed webhook can move the job.
        job = wait_until(lambda: cloud.stored(job_id))
        assert job.status is JobStatus.SUCCEEDED, job
        assert job.manifest is not None and job.manifest["format"] == "PNG"
        # The simulator counts a delivery once its answer is read: just after we stored it.
        deadline = time.monotonic() + 5
        while cloud.simulator.webhook_stats().get("sent", 0) < 1 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert cloud.simulator.webhook_stats().get("sent", 0) >= 1
        read = cloud.api("GET", f"/v1/jobs/{job_id}")
        assert read.status == 200 and read.json()["manifest"] == job.manifest

    def test_an_upload_lands_and_its_job_succeeds(self, cloud: CloudDriver) -> None:
        ingested = cloud.simulator.ingest_count()
        image = png(102, size=40)
        created = cloud.api(
            "POST",
            "/v1/uploads",
            json_body={"pattern_id": PATTERN, "content_type": "image/png", "size": len(image)},
        )
        assert created.status == 201, created.body
        ticket = created.json()
        job_id = ticket["job"]["id"]
        assert cloud.stored(job_id).status is JobStatus.ACCEPTED  # type: ignore[union-attr]
        assert cloud.object_landed(job_id, cloud.tenant, image, ticket["upload"])
        job = wait_until(lambda: cloud.stored(job_id))
        assert job.status is JobStatus.SUCCEEDED and job.source.kind == "upload", job
        assert job.manifest is not None and job.manifest["width"] == 40
        # At-least-once delivery: the same event again changes nothing.
        assert cloud.object_landed(job_id, cloud.tenant, image, ticket["upload"])
        assert cloud.stored(job_id) == job
        assert cloud.simulator.ingest_count() == ingested + 1

    def test_a_batch_with_poisoned_messages_finishes_and_records_the_poison(
        self, cloud: CloudDriver
    ) -> None:
        cloud.drain()
        items = [{"image_url": cloud.image_url(i)} for i in range(110, 113)]
        created = cloud.api(
            "POST", "/v1/batches", json_body={"pattern_id": PATTERN, "items": items}
        )
        assert created.status == 202, created.body
        batch = created.json()
        # A message that is not ours, and a well-formed one whose job is gone.
        cloud.publish_raw(b"\x00not a work item")
        cloud.publish_raw(
            encode_work_item(WorkItem("00000000-0000-0000-0000-00000000dead")).encode()
        )
        deliveries = cloud.deliver_work(expect=5)
        job_ids = [item["job_id"] for item in batch["items"]]
        poison = [d for d in deliveries if not any(j.encode() in d.body for j in job_ids)]
        # Poison is acknowledged at once (redelivery cannot help) and logged.
        assert len(poison) == 2 and all(d.acknowledged for d in poison), deliveries
        # A good item that met a slow ImgGo on a loaded machine is simply redelivered.
        pending = sum(not d.acknowledged for d in deliveries if d not in poison)
        for _ in range(3):
            if not pending:
                break
            pending = sum(not d.acknowledged for d in cloud.deliver_work(expect=pending))
        assert pending == 0
        for item in batch["items"]:
            assert (
                wait_until(lambda j=item["job_id"]: cloud.stored(j)).status is JobStatus.SUCCEEDED
            )
        view = cloud.api("GET", f"/v1/batches/{batch['id']}").json()
        assert view["complete"] and view["counts"]["succeeded"] == 3, view
        assert cloud.deliver_work(expect=0) == []

    def test_a_transient_imggo_failure_is_retried_then_succeeds(self, cloud: CloudDriver) -> None:
        cloud.drain()
        cloud.simulator.config.error_rate = 1.0  # ImgGo answers 5xx to everything
        try:
            created = cloud.api(
                "POST",
                "/v1/batches",
                json_body={"pattern_id": PATTERN, "items": [{"image_url": cloud.image_url(120)}]},
            )
            assert created.status == 202, created.body
            job_id = created.json()["items"][0]["job_id"]
            [first] = cloud.deliver_work(expect=1)
            assert not first.acknowledged  # the platform keeps it
            job = cloud.stored(job_id)
            assert job is not None and job.status is JobStatus.ACCEPTED and job.attempts >= 1
        finally:
            cloud.simulator.config.error_rate = 0.0
        [second] = cloud.deliver_work(expect=1)
        assert second.acknowledged and second.body == first.body
        assert wait_until(lambda: cloud.stored(job_id)).status is JobStatus.SUCCEEDED

    def test_a_batch_on_a_spent_plan_is_deferred_and_never_dead_lettered(
        self, cloud: CloudDriver
    ) -> None:
        cloud.drain()
        items = [{"image_url": cloud.image_url(i)} for i in (130, 131)]
        created = cloud.api(
            "POST", "/v1/batches", json_body={"pattern_id": PATTERN, "items": items}
        )
        assert created.status == 202, created.body
        job_ids = [item["job_id"] for item in created.json()["items"]]
        cloud.simulator.config.rate_limited_rate = 1.0  # the key's allowance is spent
        try:
            first = cloud.deliver_work(expect=2)
            assert len(first) == 2
            # Deferred, not failed: nothing counted against the jobs, and where the queue
            # can hold a message back the delivery is acknowledged (sent again, delayed),
            # so no receive count walks it towards the dead-letter queue.
            assert all(d.acknowledged is cloud.queue_can_delay for d in first), first
            for job_id in job_ids:
                job = cloud.stored(job_id)
                assert job is not None and job.status is JobStatus.ACCEPTED and job.attempts == 0
        finally:
            cloud.simulator.config.rate_limited_rate = 0.0
        # The plan's minute turns over: the deferred items come back and go through.
        delivered = deliver_until_acknowledged(cloud, 2)
        assert sum(d.acknowledged for d in delivered) == 2, delivered
        for job_id in job_ids:
            assert wait_until(lambda j=job_id: cloud.stored(j)).status is JobStatus.SUCCEEDED
        assert cloud.deliver_work(expect=0) == []

    def test_reconcile_recovers_a_lost_webhook_and_a_lost_message(self, cloud: CloudDriver) -> None:
        cloud.drain()
        cloud.simulator.config.webhook_drop_rate = 1.0
        try:
            submitted = cloud.api(
                "POST",
                "/v1/jobs",
                body=png(130),
                content_type="image/png",
                query="pattern_id=" + PATTERN,
            ).json()["id"]
            lost = cloud.api(
                "POST",
                "/v1/batches",
                json_body={"pattern_id": PATTERN, "items": [{"image_url": cloud.image_url(131)}]},
            ).json()["items"][0]["job_id"]
            cloud.drain()  # its queue message is lost
            time.sleep(0.3)  # ImgGo finished the first; its webhook never came
            assert cloud.stored(submitted).status is JobStatus.QUEUED  # type: ignore[union-attr]
            assert cloud.stored(lost).status is JobStatus.ACCEPTED  # type: ignore[union-attr]
            cloud.tick()
            assert wait_until(lambda: cloud.stored(submitted)).status is JobStatus.SUCCEEDED
            cloud.tick()  # the re-dispatched one finishes at ImgGo; the next pass reads it
            assert wait_until(lambda: _ticked(cloud, lost)).status is JobStatus.SUCCEEDED
        finally:
            cloud.simulator.config.webhook_drop_rate = 0.0

    def test_a_rotated_imggo_key_is_used_without_a_restart(self, cloud: CloudDriver) -> None:
        new_key = "imggo_test_rotated_" + str(time.monotonic_ns())
        cloud.simulator.config.api_keys = frozenset({DEMO_API_KEY, new_key})
        before = cloud.api(
            "POST",
            "/v1/jobs",
            body=png(140),
            content_type="image/png",
            query="pattern_id=" + PATTERN,
        )
        assert before.status == 202, before.body
        cloud.rotate_imggo_key(new_key)
        cloud.simulator.config.api_keys = frozenset({new_key})  # the old key is revoked
        time.sleep(1.2)  # the secrets TTL (one second here)
        after = cloud.api(
            "POST",
            "/v1/jobs",
            body=png(141),
            content_type="image/png",
            query="pattern_id=" + PATTERN,
        )
        # ImgGo took it: the old key would have been refused (401) and the job rejected.
        assert after.status == 202, after.body
        assert after.json()["status"] == "queued" and after.json()["imggo_job_id"]

    def test_a_store_outage_answers_503_within_seconds(self, cloud: CloudDriver) -> None:
        with cloud.store_outage() as broken:
            started = time.monotonic()
            answer = broken.api("GET", "/v1/jobs")
            took = time.monotonic() - started
        assert answer.status == 503, answer.body
        error = answer.json()["error"]
        assert error["code"] == "store_unavailable", error
        assert int(answer.headers["retry-after"]) >= 1
        assert took < broken.outage_budget_s, f"the outage held the request {took:.1f} s"


def _ticked(cloud: CloudDriver, job_id: str) -> Job | None:
    cloud.tick()
    return cloud.stored(job_id)


def put_signed(upload: dict[str, Any], data: bytes) -> None:
    response = httpx.put(upload["url"], content=data, headers=upload["headers"], timeout=10)
    # S3 and Cloud Storage answer 200, Blob Storage 201 Created.
    assert response.status_code in (200, 201), response.text


__all__ = ["Answer", "CloudDriver", "CloudScenarios", "Delivery", "put_signed", "wait_until"]
