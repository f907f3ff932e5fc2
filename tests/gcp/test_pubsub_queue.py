"""The queue contract against PubSubQueue on Google's Pub/Sub emulator (a fresh topic and
pull subscription per test, read back as the push subscription would deliver)."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator

import pytest
from google.api_core import exceptions as gexc
from google.cloud import pubsub_v1

from core.adapters.gcp.pubsub_queue import PubSubQueue, parse_url
from core.adapters.outages import CallLimits
from core.bootstrap import open_queue
from core.config import Settings
from core.domain.errors import UnavailableError
from core.ports import WorkItem
from core.service.messages import decode_work_item
from tests.contract.queue_contract import QueueContract, QueueOutageContract
from tests.support.outage import timed


@pytest.fixture
def topic(pubsub_host: str, project: str) -> Iterator[tuple[str, str]]:
    """(topic path, subscription path), both fresh."""
    publisher, subscriber = pubsub_v1.PublisherClient(), pubsub_v1.SubscriberClient()
    name = f"work-{uuid.uuid4().hex[:8]}"
    topic_path = publisher.topic_path(project, name)
    sub_path = subscriber.subscription_path(project, name + "-sub")
    publisher.create_topic(name=topic_path)
    subscriber.create_subscription(name=sub_path, topic=topic_path, ack_deadline_seconds=60)
    yield topic_path, sub_path
    subscriber.delete_subscription(subscription=sub_path)
    publisher.delete_topic(topic=topic_path)
    subscriber.close()


def pull(subscription: str, count: int, timeout_s: float) -> list[pubsub_v1.types.PubsubMessage]:
    import time

    subscriber = pubsub_v1.SubscriberClient()
    got: list[pubsub_v1.types.PubsubMessage] = []
    deadline = time.monotonic() + timeout_s
    try:
        while len(got) < count and (left := deadline - time.monotonic()) > 0:
            try:
                response = subscriber.pull(
                    subscription=subscription, max_messages=100, timeout=max(0.1, left)
                )
            except gexc.DeadlineExceeded:
                break
            got += [r.message for r in response.received_messages]
            if response.received_messages:
                subscriber.acknowledge(
                    subscription=subscription,
                    ack_ids=[r.ack_id for r in response.received_messages],
                )
    finally:
        subscriber.close()
    return got


class TestPubSubQueue(QueueContract, QueueOutageContract):
    @pytest.fixture
    def queue(self, topic: tuple[str, str]) -> Iterator[PubSubQueue]:
        queue = open_queue(Settings(queue_url=f"pubsub://{topic[0]}"))
        assert isinstance(queue, PubSubQueue)
        yield queue
        queue.close()

    @pytest.fixture
    def delivered(self, topic: tuple[str, str]) -> Callable[[int, float], list[WorkItem]]:
        def take(count: int, timeout_s: float) -> list[WorkItem]:
            return [decode_work_item(m.data) for m in pull(topic[1], count, timeout_s)]

        return take

    @pytest.fixture
    def outage_queue(
        self, pubsub_host: str, project: str, monkeypatch: pytest.MonkeyPatch
    ) -> Iterator[Callable[[int, CallLimits], PubSubQueue]]:
        made: list[PubSubQueue] = []

        def make(port: int, limits: CallLimits) -> PubSubQueue:
            # The publisher reads PUBSUB_EMULATOR_HOST when it is built, on first send.
            monkeypatch.setenv("PUBSUB_EMULATOR_HOST", f"127.0.0.1:{port}")
            queue = PubSubQueue(f"projects/{project}/topics/work", limits=limits)
            made.append(queue)
            return queue

        yield make
        for queue in made:
            queue.close()


def test_each_message_carries_its_job_id_as_an_attribute(topic: tuple[str, str]) -> None:
    queue = PubSubQueue(topic[0])
    queue.send([WorkItem("job-7")])
    [message] = pull(topic[1], 1, 10)
    assert message.attributes["job_id"] == "job-7"
    assert decode_work_item(message.data) == WorkItem("job-7")
    queue.close()


def test_send_waits_once_for_all_its_messages(topic: tuple[str, str]) -> None:
    """Messages the client never gets out (here: held back by a 60 s batching delay)
    cost one deadline for the whole send, not one per message."""
    limits = CallLimits(connect_s=0.2, read_s=0.2, attempts=1, retry_s=0.2)
    held = pubsub_v1.PublisherClient(
        batch_settings=pubsub_v1.types.BatchSettings(max_latency=60, max_messages=1000)
    )
    queue = PubSubQueue(topic[0], publisher=held, limits=limits)
    elapsed, outcome = timed(lambda: queue.send([WorkItem(f"job-{i}") for i in range(5)]))
    assert isinstance(outcome, UnavailableError) and outcome.code == "store_unavailable"
    assert elapsed < limits.worst_case_s + 1.5, elapsed  # one wait, not five
    queue.close()  # flushes the held batch


def test_a_missing_topic_is_a_deployment_mistake_not_an_outage(
    pubsub_host: str, project: str
) -> None:
    queue = PubSubQueue(f"projects/{project}/topics/no-such-topic-{uuid.uuid4().hex[:6]}")
    with pytest.raises(gexc.NotFound):
        queue.send([WorkItem("job-x")])
    queue.close()


@pytest.mark.parametrize(
    "url",
    ["pubsub://", "pubsub://topics/x", "sqs://projects/p/topics/t", "pubsub://projects/p/topics/"],
)
def test_bad_urls(url: str) -> None:
    with pytest.raises(ValueError):
        parse_url(url)
