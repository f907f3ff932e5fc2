"""A Queue for one process: work items run on a bounded thread pool.

It stands in for SQS / Pub/Sub on a laptop. It is not durable, and need not be: every
item's job is already stored as `accepted`, and the reconciler dispatches whatever a
crash left behind. A delayed item (and an item the rate budget defers: the worker
raised RateLimitedError) waits on a timer, off the pool, and is then run like any other.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait

from core.domain.errors import RateLimitedError
from core.ports import WorkItem, check_delay
from core.service.work import deferral_delay

log = logging.getLogger("imggo.queue")


class ThreadPoolQueue:
    max_delay_s = 24 * 3600.0

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
        except RateLimitedError as exc:
            self.send([item], delay_s=deferral_delay(exc.retry_after_s))
        except Exception as exc:
            log.warning("work item for job %s failed: %s", item.job_id, exc)

    def send(self, items: Sequence[WorkItem], *, delay_s: float = 0.0) -> None:
        check_delay(self, delay_s)
        if delay_s > 0:
            timer = threading.Timer(delay_s, self.send, args=(items,))
            timer.daemon = True  # a laptop's queue: the reconciler covers a lost timer
            timer.start()
            return
        for item in items:
            future = self._pool.submit(self._run, item)
            self._pending.add(future)
            future.add_done_callback(self._pending.discard)

    def drain(self, timeout: float | None = None) -> None:
        """Wait for the items sent so far (tests, and a clean shutdown)."""
        wait(list(self._pending), timeout=timeout)

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=False)
