"""The queue contract against StorageQueue on Azurite (a fresh queue per test, read back
the way the Functions host's queue trigger reads it: base64 on the wire)."""

from __future__ import annotations

import base64
import time
from collections.abc import Callable, Iterator

import pytest
from azure.storage.queue import QueueClient

from core.adapters.azure.storage_queue import StorageQueue, parse_url
from core.adapters.outages import CallLimits
from core.bootstrap import open_queue
from core.config import Settings
from core.ports import WorkItem
from core.service.messages import decode_work_item
from tests.azure.conftest import unique
from tests.contract.queue_contract import QueueContract, QueueOutageContract


def receive(connection: str, name: str, count: int, timeout_s: float) -> list[WorkItem]:
    """What the host's trigger would get: the raw message text, base64-decoded."""
    client = QueueClient.from_connection_string(connection, name)
    got: list[WorkItem] = []
    deadline = time.monotonic() + timeout_s
    while len(got) < count and time.monotonic() < deadline:
        messages = list(client.receive_messages(max_messages=32, visibility_timeout=60))
        for message in messages:
            got.append(decode_work_item(base64.b64decode(message.content).decode()))
            client.delete_message(message)
        if not messages:
            time.sleep(0.05)
    client.close()
    return got


@pytest.fixture
def queue_name(storage: str) -> Iterator[str]:
    name = unique("work")
    StorageQueue(name).create()
    yield name
    for each in (name, f"{name}-poison"):
        QueueClient.from_connection_string(storage, each).delete_queue()


class TestStorageQueue(QueueContract, QueueOutageContract):
    @pytest.fixture
    def queue(self, queue_name: str) -> Iterator[StorageQueue]:
        queue = StorageQueue.from_url(f"azurequeue://{queue_name}")
        yield queue
        queue.close()

    @pytest.fixture
    def delivered(self, storage: str, queue_name: str) -> Callable[[int, float], list[WorkItem]]:
        return lambda count, timeout_s: receive(storage, queue_name, count, timeout_s)

    @pytest.fixture
    def outage_queue(self) -> Iterator[Callable[[int, CallLimits], StorageQueue]]:
        made: list[StorageQueue] = []

        def make(port: int, limits: CallLimits) -> StorageQueue:
            connection = (
                "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=a2V5;"
                f"QueueEndpoint=http://127.0.0.1:{port}/devstoreaccount1;"
            )
            queue = StorageQueue("work", connection=connection, limits=limits)
            made.append(queue)
            return queue

        yield make
        for queue in made:
            queue.close()


def test_open_queue_by_url(queue_name: str, storage: str) -> None:
    queue = open_queue(Settings(queue_url=f"azurequeue://{queue_name}"))
    assert isinstance(queue, StorageQueue)
    queue.send([WorkItem("job-1")])
    assert receive(storage, queue_name, 1, 5) == [WorkItem("job-1")]
    queue.close()


def test_a_missing_queue_is_a_deployment_mistake_not_an_outage(storage: str) -> None:
    from azure.core.exceptions import ResourceNotFoundError

    queue = StorageQueue(unique("nevercreated"))
    with pytest.raises(ResourceNotFoundError):
        queue.send([WorkItem("job-1")])
    queue.close()


def test_url_forms() -> None:
    assert parse_url("azurequeue://imggo-work") == "imggo-work"
    for bad in (
        "azurequeue://",
        "azurequeue://Work",
        "azurequeue://a--b",
        "azurequeue://ab",
        "azurequeue://a/b",
        "sqs://work",
    ):
        with pytest.raises(ValueError):
            parse_url(bad)
