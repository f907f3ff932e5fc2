"""In-memory job state: the jobs and the idempotency index (request counts: stats.py).

One lock guards it all: every operation is a few dict look-ups, far cheaper than the
HTTP parsing around it, so finer locking would buy nothing.

The table is bounded: finished jobs are kept in the order they finished and forgotten
from the oldest on, once older than the retention or beyond the count (SimulatorConfig).
Jobs still queued or running are never forgotten. A forgotten job takes its idempotency
key with it.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .config import SimulatorConfig
from .timestamps import iso_ms, iso_ms_or_none

QUEUED, RUNNING, SUCCEEDED, FAILED = "queued", "running", "succeeded", "failed"
TERMINAL = frozenset({SUCCEEDED, FAILED})


@dataclass(frozen=True, slots=True)
class Outcome:
    """What processing decided; applied to the job when its processing time is up."""

    manifest: dict[str, Any] | None = None
    error: str | None = None


@dataclass(slots=True)
class JobRecord:
    id: str
    pattern_id: str
    user_id: str  # the tenant: derived from the API key, which is never stored
    image_url: str
    idempotency_key: str | None
    extras: dict[str, Any] | None
    created_at: float
    start_due: float  # time.monotonic() when the job turns running
    finish_due: float  # time.monotonic() when the job turns terminal, if its outcome is ready
    upload: bytes | None = None  # multipart bytes, dropped once processed
    status: str = QUEUED
    manifest: dict[str, Any] | None = None
    error: str | None = None
    updated_at: float = 0.0
    started_at: float | None = None
    completed_at: float | None = None
    outcome: Outcome | None = None

    def to_public(self) -> dict[str, Any]:
        latency = (
            None
            if self.completed_at is None
            else round((self.completed_at - self.created_at) * 1000)
        )
        return {
            "id": self.id,
            "pattern_id": self.pattern_id,
            "image_url": self.image_url,
            "status": self.status,
            "manifest": self.manifest,
            "error": self.error,
            "latency_ms": latency,
            "created_at": iso_ms(self.created_at),
            "updated_at": iso_ms(self.updated_at or self.created_at),
            "started_at": iso_ms_or_none(self.started_at),
            "completed_at": iso_ms_or_none(self.completed_at),
            "idempotency_key": self.idempotency_key,
            "requested_by": self.user_id,
            "extras": self.extras,
        }


class JobStore:
    def __init__(
        self,
        config: Callable[[], SimulatorConfig],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """`clock`: monotonic seconds that finished jobs age by (tests pass a manual one)."""
        self._config = config
        self._clock = clock
        self._lock = threading.Lock()
        self._jobs: dict[str, JobRecord] = {}
        self._by_key: dict[tuple[str, str], str] = {}  # (user id, idempotency key) -> job id
        self._finished: OrderedDict[str, float] = OrderedDict()  # job id -> when, oldest first

    def _forget_expired(self) -> None:
        # Under the lock. Finish times only grow along _finished, so the oldest is first.
        config = self._config()
        horizon = self._clock() - config.job_retention_s
        while self._finished:
            job_id, finished = next(iter(self._finished.items()))
            if finished > horizon and len(self._finished) <= config.max_finished_jobs:
                return
            del self._finished[job_id]
            job = self._jobs.pop(job_id)
            if job.idempotency_key is not None:
                self._by_key.pop((job.user_id, job.idempotency_key), None)

    # ------------------------------------------------------------------ jobs
    def create_or_get(
        self, user_id: str, idempotency_key: str | None, make: Callable[[], JobRecord]
    ) -> tuple[JobRecord, bool]:
        """The job already holding (user, key), or a new one from `make()`; True if new.
        Check and insert happen under one lock, so concurrent retries cannot both create."""
        with self._lock:
            self._forget_expired()
            if idempotency_key is not None:
                existing_id = self._by_key.get((user_id, idempotency_key))
                if existing_id is not None:
                    return self._jobs[existing_id], False
            job = make()
            self._jobs[job.id] = job
            if idempotency_key is not None:
                self._by_key[(user_id, idempotency_key)] = job.id
            return job, True

    def public(self, job_id: str, user_id: str) -> dict[str, Any] | None:
        """The Job object, or None when there is none or it belongs to someone else."""
        with self._lock:
            self._forget_expired()
            job = self._jobs.get(job_id)
            if job is None or job.user_id != user_id:
                return None
            return job.to_public()

    def status_of(self, job_id: str) -> str | None:
        with self._lock:
            job = self._jobs.get(job_id)
            return None if job is None else job.status

    def work_of(self, job_id: str) -> tuple[str, str, bytes | None, str | None] | None:
        """(pattern id, image url, uploaded bytes, idempotency key) for the processor;
        None when there is nothing left to compute."""
        with self._lock:
            job = self._jobs.get(job_id)
            if job is None or job.outcome is not None:
                return None
            return job.pattern_id, job.image_url, job.upload, job.idempotency_key

    def mark_running(self, job_id: str, now: float) -> bool:
        with self._lock:
            job = self._jobs.get(job_id)
            if job is None or job.status != QUEUED:
                return False
            job.status, job.started_at, job.updated_at = RUNNING, now, now
            return True

    def set_outcome(self, job_id: str, outcome: Outcome) -> float | None:
        """Record the outcome (first one wins); returns when the job is due to finish."""
        with self._lock:
            job = self._jobs.get(job_id)
            if job is None:
                return None
            if job.outcome is None:
                job.outcome = outcome
            job.upload = None
            return job.finish_due

    def finalize(self, job_id: str, now: float) -> JobRecord | None:
        """Apply the outcome if ready; returns the job only if this call made it terminal."""
        with self._lock:
            job = self._jobs.get(job_id)
            if job is None or job.status in TERMINAL or job.outcome is None:
                return None
            if job.started_at is None:
                job.started_at = now
            job.manifest, job.error = job.outcome.manifest, job.outcome.error
            job.status = FAILED if job.outcome.error is not None else SUCCEEDED
            job.completed_at = job.updated_at = now
            self._finished[job_id] = self._clock()
            self._forget_expired()
            return job

    def pending_ids(self) -> list[str]:
        with self._lock:
            return [j.id for j in self._jobs.values() if j.status not in TERMINAL]

    def snapshot(self) -> list[dict[str, Any]]:
        with self._lock:
            self._forget_expired()
            return [job.to_public() for job in self._jobs.values()]
