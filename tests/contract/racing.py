"""Threads that truly race: released together by a barrier, and switched every 10 µs
while they run.

CPython hands the GIL over only every 5 ms by default, so a check-then-write that is
not atomic (a read, a compare and a write in one thread) almost always runs whole, and
a contract test of atomicity passes by luck. Switching every 10 µs makes the gap show:
against moto's own server, whose DynamoDB conditional writes are not atomic
(tests.aws.moto_server), 2 or 3 of the DynamoDB store's racing tests failed in each of
5 runs this way (CAS updates lost, budget slots spent twice); at the default interval
they had failed once, in a full run on a loaded machine.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")
RACE_SWITCH_INTERVAL_S = 1e-5


def race(
    n: int, action: Callable[[int], T], *, warmup: Callable[[], object] | None = None
) -> list[T]:
    """Run `action(i)` on n threads released together by a barrier, so they truly race.

    `warmup` runs on each thread before the barrier (e.g. store.ping, so a per-thread
    connection is already open and the race is about the operation, not the connect).
    Re-raises the first failure; results are in thread order.
    """
    barrier = threading.Barrier(n, timeout=30)
    results: list[Any] = [None] * n
    errors: list[BaseException] = []

    def run(i: int) -> None:
        try:
            if warmup is not None:
                warmup()
            barrier.wait()
            results[i] = action(i)
        except BaseException as exc:  # re-raised below, on the test's thread
            errors.append(exc)
            barrier.abort()

    threads = [threading.Thread(target=run, args=(i,), name=f"race-{i}") for i in range(n)]
    saved = sys.getswitchinterval()
    sys.setswitchinterval(RACE_SWITCH_INTERVAL_S)
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
    finally:
        sys.setswitchinterval(saved)
    assert not any(t.is_alive() for t in threads), "a racing thread hung"
    if errors:
        raise errors[0]
    return results


__all__ = ["race"]
