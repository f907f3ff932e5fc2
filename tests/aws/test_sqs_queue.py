"""The queue contract against SqsQueue on moto's server (a fresh queue per test, read
back the way the worker's event source mapping reads it), and its URL forms."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import pytest

from core.adapters.aws import clients
from core.adapters.aws.sqs_queue import SqsQueue, parse_url
from core.adapters.outages import CallLimits
from core.bootstrap import open_queue
from core.config import Settings
from core.ports import WorkItem
from core.service.messages import decode_work_item
from tests.aws.conftest import ACCOUNT, unique
from tests.contract.queue_contract import QueueContract, QueueOutageContract


@pytest.fixture
def queue_name(moto_url: str) -> Iterator[str]:
    name = unique("work")
    sqs = clients.client("sqs")
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    yield name
    sqs.delete_queue(QueueUrl=url)


def receive(queue_name: str, count: int, timeout_s: float) -> list[WorkItem]:
    sqs = clients.client("sqs")
    url = sqs.get_queue_url(QueueName=queue_name)["QueueUrl"]
    got: list[WorkItem] = []
    deadline = time.monotonic() + timeout_s
    while len(got) < count and time.monotonic() < deadline:
        messages = sqs.receive_message(
            QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0, VisibilityTimeout=60
        ).get("Messages", [])
        for message in messages:
            got.append(decode_work_item(message["Body"]))
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
        if not messages:
            time.sleep(0.05)
    return got


class TestSqsQueue(QueueContract, QueueOutageContract):
    @pytest.fixture
    def queue(self, queue_name: str) -> Iterator[SqsQueue]:
        queue = SqsQueue.from_url(f"sqs://{ACCOUNT}/{queue_name}")
        yield queue
        queue.close()

    @pytest.fixture
    def delivered(self, queue_name: str) -> Callable[[int, float], list[WorkItem]]:
        return lambda count, timeout_s: receive(queue_name, count, timeout_s)

    @pytest.fixture
    def outage_queue(self, moto_url: str) -> Iterator[Callable[[int, CallLimits], SqsQueue]]:
        made: list[SqsQueue] = []

        def make(port: int, limits: CallLimits) -> SqsQueue:
            queue = SqsQueue(
                "work", account=ACCOUNT, endpoint_url=f"http://127.0.0.1:{port}", limits=limits
            )
            made.append(queue)
            return queue

        yield make
        for queue in made:
            queue.close()


def test_a_queue_by_name_alone_is_looked_up_once(queue_name: str) -> None:
    queue = open_queue(Settings(queue_url=f"sqs://{queue_name}"))
    assert isinstance(queue, SqsQueue)
    queue.send([WorkItem("job-1")])
    assert queue.queue_url.endswith(f"/{queue_name}")
    assert receive(queue_name, 1, 5) == [WorkItem("job-1")]
    queue.close()


def test_a_missing_queue_is_a_deployment_mistake_not_an_outage(moto_url: str) -> None:
    queue = SqsQueue(unique("never-created"), account=ACCOUNT)
    with pytest.raises(clients.ClientError):
        queue.send([WorkItem("job-1")])
    queue.close()


def test_url_forms() -> None:
    assert parse_url("sqs://123456789012/work") == ("123456789012", "work", {})
    assert parse_url("sqs://work?region=eu-west-1") == (None, "work", {"region": "eu-west-1"})
    for bad in ("sqs://", "sqs://abc/work", "sqs://1/a/b", "sqs://w?colour=red", "s3://w"):
        with pytest.raises(ValueError):
            parse_url(bad)
