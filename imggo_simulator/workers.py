"""A fixed set of daemon threads draining one queue: the simulator's job processor and
its webhook dispatcher both need exactly this."""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class WorkerThreads(Generic[T]):
    def __init__(self, name: str, count: int, handle: Callable[[T], None]) -> None:
        """`handle` must not raise: catch and record failures inside it, so one bad
        item never kills a worker."""
        self._handle = handle
        self._queue: queue.Queue[tuple[T] | None] = queue.Queue()
        self._threads = [
            threading.Thread(target=self._run, name=f"{name}-{i}", daemon=True)
            for i in range(count)
        ]

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def put(self, item: T) -> None:
        self._queue.put((item,))

    def stop(self, timeout_s: float) -> None:
        for _ in self._threads:
            self._queue.put(None)
        for thread in self._threads:
            if thread.is_alive():
                thread.join(timeout=timeout_s)

    def _run(self) -> None:
        while (entry := self._queue.get()) is not None:
            self._handle(entry[0])
