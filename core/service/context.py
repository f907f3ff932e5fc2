"""What every use case is handed: the ports, the settings, and hooks for metrics.

Built once by core.bootstrap (or by a test with fakes) and reused across invocations.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from core.config import Settings
from core.domain.errors import UnavailableError
from core.domain.job import Job
from core.ports import BlobStore, Clock, ImageApi, JobStore, Queue
from core.service.ssrf import UrlGuard

log = logging.getLogger("imggo.service")


class Metrics(Protocol):
    """Counters and timings a platform may publish (EMF on AWS, logs elsewhere)."""

    def count(self, name: str, value: int = 1) -> None: ...

    def timing(self, name: str, milliseconds: float) -> None: ...


class NoMetrics:
    def count(self, name: str, value: int = 1) -> None:
        pass

    def timing(self, name: str, milliseconds: float) -> None:
        pass


@dataclass(eq=False)
class Services:
    """The ports one request or message is served with, built once per container."""

    settings: Settings
    store: JobStore
    imggo: ImageApi
    blobs: BlobStore
    clock: Clock
    url_guard: UrlGuard
    queue: Queue | None = None  # None: batch items are dispatched inline
    metrics: Metrics = field(default_factory=NoMetrics)

    def close(self) -> None:
        for part in (self.imggo, self.store, self.blobs, self.queue):
            closer = getattr(part, "close", None)
            if callable(closer):
                closer()


CAS_ATTEMPTS = 16


def update_job(
    store: JobStore,
    job_id: str,
    change: Callable[[Job], Job | None],
    *,
    known: Job | None = None,
) -> Job:
    """Read, change, compare-and-set; again on a lost race. `change` returning None means
    "nothing to do" (stale or repeated news) and the stored job is returned as it is.
    `known` is a copy the caller just read or wrote: the first try starts from it and
    saves a read (a lost race falls back to reading)."""
    current: Job | None = known
    for _ in range(CAS_ATTEMPTS):
        fresh = current is None
        if current is None:
            current = store.get(job_id)
        if current is None:
            raise UnavailableError(f"job {job_id} vanished while being updated")
        new = change(current)
        if new is None:
            if fresh:
                return current
            current = None  # "nothing to do" is only trusted on a fresh read
            continue
        saved = store.compare_and_set(new.replace(version=current.version))
        if saved is not None:
            return saved
        current = None
    raise UnavailableError("the job is being updated by too many writers; try again")
