"""The cloud scenario suite on Google Cloud: the real entry points in
functions-framework's real server (gunicorn, from main.py), CloudEvents as Eventarc
delivers them, Google's Firestore and Pub/Sub emulators, the GCS and Secret Manager
stand-ins and the ImgGo simulator (tests/gcp/stack.py assembles them)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from core.domain.job import Job
from imggo_simulator import SimulatorServer
from tests.gcp.emulators import PROJECT
from tests.gcp.eventarc import deliver, pubsub_event, pull_and_deliver, storage_event
from tests.gcp.ffserver import FunctionServer
from tests.gcp.stack import BUCKET, MAX_DELIVERY_ATTEMPTS, GcpStack, auth, gcp_stack
from tests.scenarios.suite import (
    PATTERN,
    Answer,
    CloudScenarios,
    Delivery,
    deliver_until_acknowledged,
    put_signed,
)
from tests.support.loopback import Blackhole

pytestmark = pytest.mark.slow


@dataclass
class GcpDriver:
    stack: GcpStack
    http: httpx.Client
    repo_root: Path
    tenant: str = "tenant-a"
    outage_budget_s: float = 10.0
    queue_can_delay: bool = False

    @property
    def simulator(self) -> SimulatorServer:
        return self.stack.simulator

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
    ) -> Answer:
        hdrs = {**auth(), **(headers or {})}
        if content_type:
            hdrs["Content-Type"] = content_type
        response = self.http.request(
            method,
            path + (f"?{query}" if query else ""),
            json=json_body,
            content=body,
            headers=hdrs,
        )
        return Answer(
            response.status_code,
            {k.lower(): v for k, v in response.headers.items()},
            response.content,
        )

    def stored(self, job_id: str) -> Job | None:
        return self.stack.store.get(job_id)

    def image_url(self, n: int) -> str:
        return self.stack.images.url(n)

    def publish_raw(self, body: bytes) -> None:
        self.stack.publisher.publish(self.stack.topic, body).result()

    def drain(self) -> None:
        self.stack.drain()

    def deliver_work(self, expect: int) -> list[Delivery]:
        stack = self.stack
        if expect == 0:
            pulled = stack.subscriber.pull(
                subscription=stack.subscription, max_messages=10, timeout=2
            )
            return [Delivery(bytes(r.message.data), False) for r in pulled.received_messages]
        outcomes = pull_and_deliver(
            stack.subscriber,
            stack.subscription,
            stack.topic,
            stack.url("pubsub_work"),
            expect=expect,
        )
        return [Delivery(data, 200 <= status < 300) for data, status in outcomes]

    def object_landed(self, job_id: str, tenant: str, data: bytes, upload: dict[str, Any]) -> bool:
        put_signed(upload, data)
        resource = self.stack.gcs.object_resource(BUCKET, f"fn/incoming/{tenant}/{job_id}")
        status = deliver(self.stack.url("storage_finalized"), storage_event(resource)).status_code
        return 200 <= status < 300

    def tick(self) -> None:
        tick = pubsub_event(f"projects/{PROJECT}/topics/imggo-reconcile", b"{}")
        assert deliver(self.stack.url("pubsub_reconcile"), tick).status_code == 200

    def rotate_imggo_key(self, new_key: str) -> None:
        self.stack.secret_manager.secrets[(PROJECT, "imggo-api-key")] = new_key

    @contextmanager
    def store_outage(self) -> Iterator[GcpDriver]:
        hole = Blackhole()
        env = {**self.stack.env, "FIRESTORE_EMULATOR_HOST": hole.host}
        server = FunctionServer("http_api", env, self.repo_root).wait()
        client = httpx.Client(base_url=server.url, timeout=self.outage_budget_s + 5)
        try:
            yield GcpDriver(self.stack, client, self.repo_root)
        finally:
            client.close()
            server.stop()
            hole.close()


@pytest.fixture(scope="module")
def stack(
    firestore_host: str,
    pubsub_host: str,
    repo_root: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[GcpStack]:
    with gcp_stack(
        repo_root, tmp_path_factory.mktemp("gcp-scenarios"), {"IMGGO_FN_SECRETS_TTL_S": "1"}
    ) as built:
        yield built


class TestGcpScenarios(CloudScenarios):
    @pytest.fixture
    def cloud(self, stack: GcpStack, repo_root: Path) -> GcpDriver:
        stack.simulator.config.error_rate = 0.0
        return GcpDriver(stack, stack.client, repo_root)


@pytest.mark.parametrize(
    ("attempt", "acknowledged"),
    [(None, False), (MAX_DELIVERY_ATTEMPTS - 2, False), (MAX_DELIVERY_ATTEMPTS - 1, True)],
    ids=["no-count", "early", "near-the-bound"],
)
def test_a_deferral_is_published_again_before_pub_sub_would_dead_letter_it(
    stack: GcpStack, repo_root: Path, attempt: int | None, acknowledged: bool
) -> None:
    """Pub/Sub cannot hold a message back, so a deferral is nacked and the backoff carries
    it - and each nack counts towards the dead-letter bound. Near that bound the worker
    publishes it again (a fresh count) and acknowledges the delivery instead."""
    from core.domain.job import JobStatus

    cloud = GcpDriver(stack, stack.client, repo_root)
    cloud.drain()
    created = cloud.api(
        "POST",
        "/v1/batches",
        json_body={"pattern_id": PATTERN, "items": [{"image_url": cloud.image_url(140)}]},
    )
    assert created.status == 202, created.body
    [job_id] = [item["job_id"] for item in created.json()["items"]]
    stack.simulator.config.rate_limited_rate = 1.0  # the key's allowance is spent
    try:
        [(body, status)] = pull_and_deliver(
            stack.subscriber,
            stack.subscription,
            stack.topic,
            stack.url("pubsub_work"),
            expect=1,
            delivery_attempt=attempt,
        )
        assert (200 <= status < 300) is acknowledged, status
        job = cloud.stored(job_id)
        assert job is not None and job.status is JobStatus.ACCEPTED and job.attempts == 0
    finally:
        stack.simulator.config.rate_limited_rate = 0.0
    # Either way the item comes back once (nacked, or published again), and is sent to
    # ImgGo: its job is queued there (the result's webhook is another test's business;
    # after the key-rotation scenario the simulator has none registered for this key).
    delivered = deliver_until_acknowledged(cloud, 1)
    assert [d.body for d in delivered if d.acknowledged] == [body], delivered
    sent = cloud.stored(job_id)
    assert sent is not None and sent.imggo_job_id and sent.attempts == 1, sent
    assert sent.status in (JobStatus.QUEUED, JobStatus.SUCCEEDED), sent
    assert cloud.deliver_work(expect=0) == []
