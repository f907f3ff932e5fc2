"""One timer thread for every job: a heap of (due time, callback), not a thread per job."""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from collections.abc import Callable

log = logging.getLogger(__name__)


class Scheduler:
    def __init__(self, name: str = "imggo-sim-scheduler") -> None:
        self._heap: list[tuple[float, int, Callable[[], None]]] = []
        self._seq = itertools.count()  # FIFO among equal due times; callables never compared
        self._cond = threading.Condition()
        self._stopped = False
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        with self._cond:
            self._stopped = True
            self._cond.notify()
        if self._thread.is_alive():
            self._thread.join(timeout=2)

    def at(self, due: float, callback: Callable[[], None]) -> None:
        """Run `callback` on the scheduler thread at `due` (time.monotonic seconds).
        Callbacks must be quick: slow work belongs on the processor's workers."""
        with self._cond:
            seq = next(self._seq)
            heapq.heappush(self._heap, (due, seq, callback))
            if self._heap[0][1] == seq:
                self._cond.notify()  # the new entry is the earliest: re-arm the wait

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._stopped:
                    if self._heap:
                        delay = self._heap[0][0] - time.monotonic()
                        if delay <= 0:
                            break
                        self._cond.wait(delay)
                    else:
                        self._cond.wait()
                if self._stopped:
                    return
                _, _, callback = heapq.heappop(self._heap)
            try:
                callback()
            except Exception:  # one bad job must not stop every other job's clock
                log.exception("scheduled callback failed")
