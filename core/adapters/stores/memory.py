"""An in-process JobStore: the reference the core's unit tests run against.

It keeps every promise of the port exactly (create-if-absent, compare-and-set, expiry
hiding items before any sweep, keyset cursors, containment of unreadable records), so
a use case that passes here fails on a real store only because of that store. Jobs and
batches are held as the same JSON documents a real store keeps, beside copies of the
fields filtered and sorted on, as in a real table: a caller mutating a returned job
cannot reach stored state, a value that would not survive a real store fails here
first, and a row whose document cannot be decoded can still be listed past and swept.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass

from core.adapters.clock import SystemClock
from core.adapters.stores._common import (
    check_limit,
    decode_cursor,
    encode_cursor,
    is_live,
)
from core.adapters.stores._records import (
    dump_batch,
    dump_job,
    is_readable_job,
    load_batch,
    load_job,
    page_of,
    unreadable_stand_in,
)
from core.domain.job import Job, JobStatus
from core.ports import Batch, Clock, Page, Sweep

_TERMINAL = frozenset(status.value for status in JobStatus if status.terminal)


@dataclass(frozen=True, slots=True)
class _JobRow:
    # The index fields answer filters and sorting; `doc` is what callers get a copy of.
    id: str
    tenant: str
    status: str
    version: int
    created_at: float
    updated_at: float
    expires_at: float | None
    doc: str

    @classmethod
    def of(cls, job: Job) -> _JobRow:
        return cls(
            job.id,
            job.tenant,
            job.status.value,
            job.version,
            job.created_at,
            job.updated_at,
            job.expires_at,
            dump_job(job),
        )

    @property
    def sort_key(self) -> tuple[float, str]:
        return (self.created_at, self.id)

    @property
    def pending(self) -> bool:
        return self.status not in _TERMINAL


@dataclass(frozen=True, slots=True)
class _KeyRow:
    job_id: str
    expires_at: float | None


@dataclass(frozen=True, slots=True)
class _BatchRow:
    expires_at: float | None
    doc: str


class MemoryJobStore:
    """One lock around plain dicts: every method is a single atomic step, which is what
    the conditional writes of a real store give."""

    def __init__(self, *, clock: Clock | None = None) -> None:
        # The clock judges expiry for reads that take no `now` (get, list_*).
        self._clock: Clock = clock or SystemClock()
        self._lock = threading.Lock()
        self._jobs: dict[str, _JobRow] = {}
        self._keys: dict[str, _KeyRow] = {}
        self._batches: dict[str, _BatchRow] = {}

    # ------------------------------------------------------------------ jobs
    def create(self, job: Job) -> tuple[Job, bool]:
        new = _JobRow.of(job.replace(version=1))  # serialise outside the lock; it may be large
        with self._lock:
            row = self._live_job(job.id, self._clock.now())
            if row is None:
                # An expired job counts as absent, as it would after a sweep: ids derived
                # from idempotency keys must be reusable once the old job has expired.
                self._jobs[job.id] = row = new
        return load_job(row.id, row.doc), row is new

    def get(self, job_id: str) -> Job | None:
        with self._lock:
            row = self._live_job(job_id, self._clock.now())
        return None if row is None else load_job(job_id, row.doc)

    def compare_and_set(self, job: Job) -> Job | None:
        new = _JobRow.of(job.replace(version=job.version + 1))
        with self._lock:
            row = self._live_job(job.id, self._clock.now())
            if row is None or row.version != job.version:
                return None
            self._jobs[job.id] = new
        return load_job(new.id, new.doc)

    def fail_unreadable(self, job_id: str, *, now: float) -> Job | None:
        with self._lock:  # held throughout: nobody can write the row between check and swap
            row = self._live_job(job_id, now)
            if row is None or is_readable_job(job_id, row.doc):
                return None
            failed = unreadable_stand_in(
                job_id,
                tenant=row.tenant,
                created_at=row.created_at,
                expires_at=row.expires_at,
                version=row.version,
                now=now,
            )
            self._jobs[job_id] = new = _JobRow.of(failed)
        return load_job(job_id, new.doc)

    def list_jobs(
        self,
        tenant: str,
        *,
        status: JobStatus | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> Page:
        check_limit(limit)
        after = decode_cursor(cursor) if cursor is not None else None
        with self._lock:
            now = self._clock.now()
            rows = [
                row
                for row in self._jobs.values()
                if row.tenant == tenant
                and (status is None or row.status == status.value)
                and is_live(row.expires_at, now)
                and (after is None or row.sort_key < after)
            ]
        rows.sort(key=lambda row: row.sort_key, reverse=True)
        page = rows[:limit]
        more = len(rows) > limit
        next_cursor = encode_cursor(page[-1].sort_key) if more else None
        return page_of(((row.id, row.doc) for row in page), next_cursor)

    def list_pending(self, *, updated_before: float, limit: int) -> Page:
        check_limit(limit)
        with self._lock:
            now = self._clock.now()
            rows = [
                row
                for row in self._jobs.values()
                if row.pending and row.updated_at < updated_before and is_live(row.expires_at, now)
            ]
        rows.sort(key=lambda row: (row.updated_at, row.id))
        return page_of((row.id, row.doc) for row in rows[:limit])

    # ------------------------------------------------------------------ lookup keys
    # The bulk calls (BulkJobStore) are the single ones in a loop: in memory there is no
    # round trip to save, but the fakes then take the same code paths as SQLite.
    def create_many(self, jobs: Sequence[Job]) -> list[tuple[Job, bool]]:
        return [self.create(job) for job in jobs]

    def claim_many(
        self, claims: Sequence[tuple[str, str, float | None]], *, now: float
    ) -> list[str]:
        return [
            self.claim_key(key, job_id, expires_at=expires_at, now=now)
            for key, job_id, expires_at in claims
        ]

    def claim_key(self, key: str, job_id: str, *, expires_at: float | None, now: float) -> str:
        with self._lock:
            row = self._keys.get(key)
            if row is not None and is_live(row.expires_at, now):
                return row.job_id
            self._keys[key] = _KeyRow(job_id, expires_at)
            return job_id

    def lookup_key(self, key: str, *, now: float) -> str | None:
        with self._lock:
            row = self._keys.get(key)
        return row.job_id if row is not None and is_live(row.expires_at, now) else None

    def release_key(self, key: str, job_id: str) -> None:
        with self._lock:
            row = self._keys.get(key)
            if row is not None and row.job_id == job_id:
                del self._keys[key]

    # ------------------------------------------------------------------ batches
    def create_batch(self, batch: Batch) -> tuple[Batch, bool]:
        doc = dump_batch(batch)
        with self._lock:
            row = self._batches.get(batch.id)
            if row is not None and is_live(row.expires_at, self._clock.now()):
                return load_batch(batch.id, row.doc), False
            self._batches[batch.id] = _BatchRow(batch.expires_at, doc)
        return load_batch(batch.id, doc), True

    def get_batch(self, batch_id: str) -> Batch | None:
        with self._lock:
            row = self._batches.get(batch_id)
        if row is None or not is_live(row.expires_at, self._clock.now()):
            return None
        return load_batch(batch_id, row.doc)

    # ------------------------------------------------------------------ housekeeping
    def delete_expired(self, *, now: float) -> Sweep:
        # Judged on the expiry beside each document, never the document: unreadable
        # rows go too. A dict delete cannot fail, so nothing is ever skipped here.
        with self._lock:
            jobs = [k for k, r in self._jobs.items() if not is_live(r.expires_at, now)]
            keys = [k for k, r in self._keys.items() if not is_live(r.expires_at, now)]
            batches = [k for k, r in self._batches.items() if not is_live(r.expires_at, now)]
            for job_id in jobs:
                del self._jobs[job_id]
            for key in keys:
                del self._keys[key]
            for batch_id in batches:
                del self._batches[batch_id]
        return Sweep(removed=len(jobs) + len(keys) + len(batches))

    def ping(self) -> None:
        """Always reachable: it lives in this process."""

    def close(self) -> None:
        """Nothing to release; present so callers can close any store the same way."""

    def _live_job(self, job_id: str, now: float) -> _JobRow | None:
        row = self._jobs.get(job_id)
        return row if row is not None and is_live(row.expires_at, now) else None


def from_url(url: str, *, clock: Clock | None = None) -> MemoryJobStore:
    """`memory://`: a store in this process (tests, one-shot CLI runs)."""
    if url.partition("://")[2]:
        raise ValueError("memory:// takes no path or options")
    return MemoryJobStore(clock=clock)
