"""The Queue contract: what every queue adapter must show, written once.

The port is `send` only (core never receives: the platform's trigger delivers). So
each backend's test module supplies, beside a fresh queue, a way to SEE what was
delivered, the way its platform would:

    class TestSqsQueue(QueueContract, QueueOutageContract):
        @pytest.fixture
        def queue(self, moto_url): ...        # a fresh, empty queue per test
        @pytest.fixture
        def delivered(self, queue): ...       # (count, timeout_s) -> the WorkItems a
                                              # consumer of the backend received
        @pytest.fixture
        def outage_queue(self): ...           # (port, CallLimits) -> a queue whose
                                              # endpoint is 127.0.0.1:port

Promised: every item sent is delivered exactly as sent (no order is promised, so
deliveries are compared as multisets), sending nothing delivers nothing, batches larger
than the backend takes in one request are split by the adapter, and a backend that
refuses connections or never answers ends in UnavailableError `store_unavailable`
within the limits.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from typing import ClassVar

from core.adapters.outages import CallLimits
from core.domain.errors import UnavailableError
from core.ports import Queue, WorkItem
from tests.support.outage import dead_port, tarpit, timed

Delivered = Callable[[int, float], list[WorkItem]]
OutageQueue = Callable[[int, CallLimits], Queue]

ODD_IDS = [
    "0b6a3d0e-1111-4a4a-9c9c-000000000001",
    "job/with/slashes",
    "spaces and 'quotes' \"too\"",
    "ünïcødé-✓",
    "x" * 128,  # the longest job id a message may carry
]


class QueueContract:
    large_batch: ClassVar[int] = 25  # more than SQS takes in one request (10)
    # How long to wait for deliveries that should not come (duplicates, leftovers).
    quiet_s: ClassVar[float] = 0.3

    def _exactly(self, delivered: Delivered, sent: list[WorkItem]) -> None:
        got = delivered(len(sent), 10.0)
        assert Counter(got) == Counter(sent)
        assert delivered(1, self.quiet_s) == []  # nothing more arrives

    def test_sent_items_are_delivered_exactly_as_sent(
        self, queue: Queue, delivered: Delivered
    ) -> None:
        sent = [WorkItem(job_id) for job_id in ODD_IDS]
        queue.send(sent)
        self._exactly(delivered, sent)

    def test_sending_nothing_delivers_nothing(self, queue: Queue, delivered: Delivered) -> None:
        queue.send([])
        assert delivered(1, self.quiet_s) == []

    def test_large_batches_are_split_by_the_adapter(
        self, queue: Queue, delivered: Delivered
    ) -> None:
        sent = [WorkItem(f"job-{i:04d}") for i in range(self.large_batch)]
        queue.send(sent)
        self._exactly(delivered, sent)

    def test_the_same_item_twice_is_delivered_twice(
        self, queue: Queue, delivered: Delivered
    ) -> None:
        # A retried batch re-sends its items; deduplication is the worker's (jobs
        # move forward only), not the queue's.
        sent = [WorkItem("job-a"), WorkItem("job-a"), WorkItem("job-b")]
        queue.send(sent)
        self._exactly(delivered, sent)

    def test_threads_share_one_queue(self, queue: Queue, delivered: Delivered) -> None:
        batches = [[WorkItem(f"t{t}-{i}") for i in range(4)] for t in range(6)]
        threads = [threading.Thread(target=queue.send, args=(batch,)) for batch in batches]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        self._exactly(delivered, [item for batch in batches for item in batch])


class QueueOutageContract:
    outage_limits: ClassVar[CallLimits] = CallLimits(
        connect_s=0.5, read_s=0.5, attempts=2, retry_s=1.0
    )
    slack_s: ClassVar[float] = 2.0

    def _assert_unavailable(self, queue: Queue) -> None:
        elapsed, outcome = timed(lambda: queue.send([WorkItem("job-1"), WorkItem("job-2")]))
        assert isinstance(outcome, UnavailableError), repr(outcome)
        assert (outcome.status, outcome.code) == (503, "store_unavailable")
        assert outcome.retry_after_s is not None and outcome.retry_after_s > 0
        assert elapsed < self.outage_limits.worst_case_s + self.slack_s, elapsed

    def test_a_refused_connection_is_store_unavailable(self, outage_queue: OutageQueue) -> None:
        self._assert_unavailable(outage_queue(dead_port(), self.outage_limits))

    def test_a_server_that_never_answers_is_store_unavailable(
        self, outage_queue: OutageQueue
    ) -> None:
        with tarpit() as port:
            self._assert_unavailable(outage_queue(port, self.outage_limits))
