"""PubSubQueue against Google's Pub/Sub emulator."""

from __future__ import annotations

import uuid

import pytest
from google.cloud import pubsub_v1

from core.adapters.gcp.pubsub_queue import PubSubQueue, parse_url
from core.bootstrap import open_queue
from core.config import Settings
from core.domain.errors import UnavailableError
from core.ports import WorkItem
from core.service.messages import decode_work_item


def test_send_publishes_one_message_per_item(pubsub_host: str, project: str) -> None:
    publisher, subscriber = pubsub_v1.PublisherClient(), pubsub_v1.SubscriberClient()
    name = f"work-{uuid.uuid4().hex[:8]}"
    topic = publisher.topic_path(project, name)
    sub = subscriber.subscription_path(project, name + "-sub")
    publisher.create_topic(name=topic)
    subscriber.create_subscription(name=sub, topic=topic)

    queue = open_queue(Settings(queue_url=f"pubsub://{topic}"))
    assert isinstance(queue, PubSubQueue)
    items = [WorkItem(f"job-{i}") for i in range(25)]
    queue.send(items)
    queue.send([])

    got = []
    while len(got) < len(items):
        response = subscriber.pull(subscription=sub, max_messages=100, timeout=5)
        for received in response.received_messages:
            got.append(received.message)
        subscriber.acknowledge(
            subscription=sub, ack_ids=[r.ack_id for r in response.received_messages]
        )
    assert sorted(decode_work_item(m.data).job_id for m in got) == sorted(i.job_id for i in items)
    assert all(m.attributes["job_id"] == decode_work_item(m.data).job_id for m in got)
    queue.close()
    subscriber.close()


def test_publish_failure_is_unavailable(pubsub_host: str, project: str) -> None:
    queue = PubSubQueue(
        f"projects/{project}/topics/no-such-topic-{uuid.uuid4().hex[:6]}", timeout_s=10
    )
    with pytest.raises(UnavailableError) as caught:
        queue.send([WorkItem("job-x")])
    assert caught.value.code == "queue_unavailable"
    queue.close()


@pytest.mark.parametrize(
    "url",
    ["pubsub://", "pubsub://topics/x", "sqs://projects/p/topics/t", "pubsub://projects/p/topics/"],
)
def test_bad_urls(url: str) -> None:
    with pytest.raises(ValueError):
        parse_url(url)
