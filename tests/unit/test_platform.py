"""core.platform: the decisions every cloud shares, proven once with a fake platform
(the clouds' own tests run the same host through their real handlers)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import pytest

from core.adapters.secrets import EnvSecrets
from core.api.auth import hash_key
from core.api.http import Headers, Request
from core.domain.job import JobStatus
from core.platform import FunctionHost
from core.ports import WorkItem
from core.service.context import Metrics, Services
from core.service.messages import encode_work_item
from core.service.submit import NewJob, accept
from core.service.work import Verdict
from tests.fakes import FakeImggo, make_services

KEY = "platform-test-key"


@dataclass
class CountingMetrics:
    counts: dict[str, int] = field(default_factory=dict)

    def count(self, name: str, value: int = 1) -> None:
        self.counts[name] = self.counts.get(name, 0) + value

    def timing(self, name: str, milliseconds: float) -> None:
        pass


@dataclass
class FakePlatform:
    env: dict[str, str] = field(default_factory=lambda: {"IMGGO_FN_STORE_URL": "memory://"})
    sink: CountingMetrics = field(default_factory=CountingMetrics)
    correlated: list[str] = field(default_factory=list)
    name: str = "fake"

    def environment(self) -> Mapping[str, str]:
        return self.env

    def secret_store(self, env: Mapping[str, str]) -> EnvSecrets:
        return EnvSecrets(env)

    def metrics(self) -> Metrics:
        return self.sink

    def correlate(self, correlation_id: str) -> None:
        self.correlated.append(correlation_id)


class BrokenStore:
    """A store whose every read fails in a way nobody planned for."""

    def get(self, job_id: str) -> None:
        raise RuntimeError("the table is gone")


def host_with(services: Services) -> tuple[FunctionHost, FakePlatform]:
    platform = FakePlatform()
    host = FunctionHost(platform, build=lambda settings, metrics: services)
    return host, platform


def get(host: FunctionHost, path: str, **headers: str):
    hdrs = Headers({"Authorization": f"Bearer {KEY}", **headers})
    return host.http(Request("GET", path, hdrs), platform_request_id="gw-123")


def test_every_5xx_is_counted_and_a_cold_start_once():
    services = make_services(api_key_hashes={hash_key(KEY): "t"})
    services.store = BrokenStore()  # type: ignore[assignment]
    host, platform = host_with(services)
    assert get(host, "/v1/jobs/abc").status == 500
    assert get(host, "/v1/jobs/abc").status == 500
    assert get(host, "/v1/nothing").status == 404
    assert platform.sink.counts == {"ColdStart": 1, "Http5xx": 2}


def test_the_correlation_id_is_the_safe_client_id_else_the_platforms():
    host, platform = host_with(make_services(api_key_hashes={hash_key(KEY): "t"}))
    answer = get(host, "/health", **{"X-Request-Id": "client-7"})
    assert answer.headers.get("x-request-id") == "client-7"
    answer = get(host, "/health", **{"X-Request-Id": "bad id\r\n"})
    assert answer.headers.get("x-request-id") == "gw-123"
    assert platform.correlated == ["client-7", "gw-123"]


def test_poison_for_a_pending_job_records_it_failed_and_acknowledges():
    services = make_services(imggo=FakeImggo())
    job = accept(
        services, NewJob(tenant="t", pattern_id="invoice", image_url="https://images.example/a.png")
    ).job
    host, platform = host_with(services)

    def refuse(*args: object, **kw: object) -> None:
        from core.domain.errors import ConflictError

        raise ConflictError("not dispatchable", code="odd_state")

    services.imggo.on_submit = refuse  # type: ignore[attr-defined]
    outcome = host.queue_message(encode_work_item(WorkItem(job.id)), message_id="m-1")
    assert outcome.verdict is Verdict.POISON and outcome.acknowledge
    stored = services.store.get(job.id)
    assert stored is not None and stored.status is JobStatus.FAILED
    assert stored.error is not None and stored.error.code == "poison_message"
    assert platform.sink.counts.get("PoisonMessages") == 1


def test_a_message_is_not_started_without_time_for_its_worst_case():
    imggo = FakeImggo()
    services = make_services(imggo=imggo)
    job = accept(
        services, NewJob(tenant="t", pattern_id="invoice", image_url="https://images.example/a.png")
    ).job
    host, _ = host_with(services)
    body = encode_work_item(WorkItem(job.id))
    late = host.queue_message(body, time_left=lambda: services.settings.submit_deadline_s)
    assert late.verdict is Verdict.RETRY and late.code == "no_time_left"
    assert imggo.submit_calls == 0
    on_time = host.queue_message(body, time_left=lambda: 900.0)
    assert on_time.verdict is Verdict.DONE and imggo.submit_calls == 1


@pytest.mark.parametrize("name", ["elsewhere/x.png", "incoming/t/not-a-job-id"])
def test_an_object_that_is_not_an_upload_is_done_not_retried(name):
    host, _ = host_with(make_services())
    outcome = host.object_landed("bucket", name, size=3, content_type="image/png")
    assert outcome.verdict is Verdict.DONE and outcome.code == "skipped"


@dataclass
class DelayingQueue:
    max_delay_s: float
    sent: list[tuple[str, float]] = field(default_factory=list)

    def send(self, items: list[WorkItem], *, delay_s: float = 0.0) -> None:
        self.sent += [(item.job_id, delay_s) for item in items]


@pytest.mark.parametrize("can_delay", [True, False], ids=["sqs-like", "pubsub-like"])
def test_a_message_without_imggo_budget_is_deferred_not_failed(can_delay: bool) -> None:
    from core.adapters.imggo.budget import rate_limited

    imggo = FakeImggo()
    services = make_services(imggo=imggo)
    queue = DelayingQueue(max_delay_s=900.0 if can_delay else 0.0)
    services.queue = queue  # type: ignore[assignment]
    job = accept(
        services, NewJob(tenant="t", pattern_id="invoice", image_url="https://images.example/a.png")
    ).job
    host, platform = host_with(services)
    imggo.fail_next.append(rate_limited(4.0))  # what the shared budget raises
    outcome = host.queue_message(encode_work_item(WorkItem(job.id)), message_id="m-9")
    assert outcome.verdict is Verdict.DEFER
    assert 2.0 <= outcome.delay_s <= 4.0  # the budget's wait, spread
    assert platform.sink.counts.get("Deferrals") == 1
    assert "PoisonMessages" not in platform.sink.counts
    # Nothing was sent, so nothing is counted against the job.
    assert services.store.get(job.id) == job
    if can_delay:
        # Sent again, held back, and this delivery acknowledged: its receive count
        # (what walks a message to the dead-letter queue) starts afresh.
        assert queue.sent == [(job.id, outcome.delay_s)] and outcome.acknowledge
    else:
        # Pub/Sub cannot hold a message back: the subscription's backoff redelivers it.
        assert queue.sent == [] and not outcome.acknowledge


@pytest.mark.parametrize(
    ("attempt", "sent_again"), [(None, False), (3, False), (4, True), (5, True)]
)
def test_a_deferral_near_the_dead_letter_bound_is_sent_again_at_once(
    attempt: int | None, sent_again: bool
) -> None:
    from core.adapters.imggo.budget import rate_limited

    imggo = FakeImggo()
    services = make_services(imggo=imggo, max_delivery_attempts=5)
    queue = DelayingQueue(max_delay_s=0.0)  # Pub/Sub: no holding back
    services.queue = queue  # type: ignore[assignment]
    job = accept(
        services, NewJob(tenant="t", pattern_id="invoice", image_url="https://images.example/a.png")
    ).job
    host, platform = host_with(services)
    imggo.fail_next.append(rate_limited(4.0))
    body = encode_work_item(WorkItem(job.id))
    outcome = host.queue_message(body, message_id="m-10", delivery_attempt=attempt)
    assert outcome.verdict is Verdict.DEFER
    if sent_again:
        # Not acknowledging it could dead-letter it: a fresh message instead, and this
        # delivery acknowledged - still a deferral, never a failure.
        assert outcome.acknowledge and queue.sent == [(job.id, 0.0)]
    else:  # the subscription's backoff carries it
        assert not outcome.acknowledge and queue.sent == []
    assert platform.sink.counts.get("Deferrals") == 1
    assert services.store.get(job.id) == job
