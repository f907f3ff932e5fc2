"""The queue contract against the laptop's queue: a thread pool in this process, whose
'consumer' is the worker it is bound to."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator

import pytest

from core.adapters.local_queue import ThreadPoolQueue
from core.ports import WorkItem
from tests.contract.queue_contract import QueueContract


class Collector:
    """The bound worker: records each delivered item."""

    def __init__(self) -> None:
        self.items: list[WorkItem] = []
        self._changed = threading.Condition()

    def __call__(self, item: WorkItem) -> None:
        with self._changed:
            self.items.append(item)
            self._changed.notify_all()

    def take(self, count: int, timeout_s: float) -> list[WorkItem]:
        deadline = time.monotonic() + timeout_s
        with self._changed:
            while len(self.items) < count and (left := deadline - time.monotonic()) > 0:
                self._changed.wait(left)
            taken, self.items = self.items, []
        return taken


class TestThreadPoolQueue(QueueContract):
    @pytest.fixture
    def collector(self) -> Collector:
        return Collector()

    @pytest.fixture
    def queue(self, collector: Collector) -> Iterator[ThreadPoolQueue]:
        queue = ThreadPoolQueue(concurrency=4)
        queue.bind(collector)
        yield queue
        queue.close()

    @pytest.fixture
    def delivered(self, collector: Collector) -> Callable[[int, float], list[WorkItem]]:
        return collector.take


def test_a_failing_item_does_not_stop_the_others(caplog: pytest.LogCaptureFixture) -> None:
    seen: list[str] = []

    def worker(item: WorkItem) -> None:
        if item.job_id == "bad":
            raise RuntimeError("boom")
        seen.append(item.job_id)

    queue = ThreadPoolQueue(concurrency=1)
    queue.bind(worker)
    queue.send([WorkItem("a"), WorkItem("bad"), WorkItem("b")])
    queue.drain(timeout=5)
    queue.close()
    assert sorted(seen) == ["a", "b"]
    assert "work item for job bad failed: boom" in caplog.text
