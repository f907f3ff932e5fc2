"""A Queue for one process: work items run on a bounded thread pool.

It stands in for SQS / Pub/Sub on a laptop. It is not durable, and need not be: every
item's job is already stored as `accepted`, and the reconciler dispatches whatever a
crash left behind.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait

from core.ports import WorkItem

log = logging.getLogger("imggo.queue")


class ThreadPoolQueue:
    def __init__(self, concurrency: int = 16) -> None:
        self._pool = ThreadPoolExecutor(max_workers=max(1, concurrency), thread_name_prefix="work")
        self._worker: Callable[[WorkItem], object] | None = None
        self._pending: set[Future[None]] = set()

    def bind(self, worker: Callable[[WorkItem], object]) -> None:
        self._worker = worker

    def _run(self, item: WorkItem) -> None:
        assert self._worker is not None, "ThreadPoolQueue.bind() was never called"
        try:
            self._worker(item)
        except Exception as exc:
            log.warning("work item for job %s failed: %s", item.job_id, exc)

    def send(self, items: Sequence[WorkItem]) -> None:
        for item in items:
            future = self._pool.submit(self._run, item)
            self._pending.add(future)
            future.add_done_callback(self._pending.discard)

    def drain(self, timeout: float | None = None) -> None:
        """Wait for the items sent so far (tests, and a clean shutdown)."""
        wait(list(self._pending), timeout=timeout)

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=False)
