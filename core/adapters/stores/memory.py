"""An in-process JobStore: the reference the core's unit tests run against.

It keeps every promise of the port exactly (BaseJobStore decides; here each primitive
is one step under one lock, which is what the conditional writes of a real store give),
so a use case that passes here fails on a real store only because of that store. Jobs
and batches are held as the same JSON documents a real store keeps, beside copies of
the fields filtered and sorted on, as in a real table: a caller mutating a returned job
cannot reach stored state, a value that would not survive a real store fails here
first, and a row whose document cannot be decoded can still be listed past and swept.

It keeps documents of any length unless given `max_doc_bytes` (tests of the large
manifest mechanism use that to stand in for a backend with an item limit).
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from typing import Protocol

from core.adapters.stores._base import (
    BaseJobStore,
    BatchRow,
    JobRow,
    Listing,
    Query,
    ScanRow,
    Seen,
    StoredBatch,
    StoredJob,
    StoredKey,
    Written,
)
from core.adapters.stores._common import SortKey, is_live
from core.domain.job import Job
from core.ports import BlobStore, Clock, StoredBudget, Sweep


class _Expiring(Protocol):
    @property
    def expires_at(self) -> float | None: ...


def _expired(table: Mapping[str, _Expiring], now: float) -> list[str]:
    return [key for key, row in table.items() if not is_live(row.expires_at, now)]


def _stored(row: JobRow) -> StoredJob:
    # The row object itself is the token: any write replaces it with another.
    return StoredJob(
        row.id, row.doc, row.expires_at, row.version, row.tenant, row.created_at, token=row
    )


def _scanned(row: JobRow, listing: bool) -> ScanRow:
    order: SortKey = (row.created_at, row.id) if listing else (row.updated_at, row.id)
    return ScanRow(row.id, row.doc, row.expires_at, order)


class MemoryJobStore(BaseJobStore):
    def __init__(
        self,
        *,
        clock: Clock | None = None,
        blobs: BlobStore | None = None,
        max_doc_bytes: int | None = None,
    ) -> None:
        super().__init__(clock=clock, blobs=blobs, max_doc_bytes=max_doc_bytes)
        self._lock = threading.Lock()
        self._jobs: dict[str, JobRow] = {}
        self._keys: dict[str, StoredKey] = {}
        self._batches: dict[str, BatchRow] = {}
        self._leases: dict[str, float] = {}
        self._budgets: dict[str, StoredBudget] = {}

    # ------------------------------------------------------------------ bulk
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

    # ------------------------------------------------------------------ jobs
    def _get_job(self, job_id: str) -> StoredJob | None:
        with self._lock:
            row = self._jobs.get(job_id)
        return None if row is None else _stored(row)

    def _put_job_if_absent(self, row: JobRow, now: float) -> Written | StoredJob:
        with self._lock:
            old = self._jobs.get(row.id)
            if old is not None and is_live(old.expires_at, now):
                return _stored(old)
            self._jobs[row.id] = row
        return Written()

    def _put_job_if_version(
        self, row: JobRow, *, expected: int, seen: Seen | None, now: float
    ) -> Written | None:
        with self._lock:
            old = self._jobs.get(row.id)
            if old is None or old.version != expected or not is_live(old.expires_at, now):
                return None
            self._jobs[row.id] = row
        return Written()

    def _replace_job(self, old: StoredJob, row: JobRow, now: float) -> Written | None:
        with self._lock:
            current = self._jobs.get(row.id)
            if current is not old.token or not is_live(current.expires_at, now):
                return None
            self._jobs[row.id] = row
        return Written()

    def _query_page(
        self, query: Query, resume: object | None, limit: int, now: float
    ) -> tuple[Sequence[ScanRow], object | None]:
        # Everything that matches, live, in order, in one go: nothing to resume.
        listing = isinstance(query, Listing)
        with self._lock:
            if isinstance(query, Listing):
                rows = [
                    row
                    for row in self._jobs.values()
                    if row.tenant == query.tenant
                    and (query.status is None or row.status == query.status)
                    and is_live(row.expires_at, now)
                    and (query.after is None or (row.created_at, row.id) < query.after)
                ]
            else:
                rows = [
                    row
                    for row in self._jobs.values()
                    if row.pending
                    and row.updated_at < query.updated_before
                    and is_live(row.expires_at, now)
                ]
        if listing:
            rows.sort(key=lambda row: (row.created_at, row.id), reverse=True)
        else:
            rows.sort(key=lambda row: (row.updated_at, row.id))
        return [_scanned(row, listing) for row in rows[:limit]], None

    # ------------------------------------------------------------------ lookup keys
    def _claim_key(self, key: str, job_id: str, expires_at: float | None, now: float) -> str:
        with self._lock:
            held = self._keys.get(key)
            if held is not None and is_live(held.expires_at, now):
                return held.job_id
            self._keys[key] = StoredKey(job_id, expires_at)
        return job_id

    def _get_key(self, key: str) -> StoredKey | None:
        with self._lock:
            return self._keys.get(key)

    def _release_key(self, key: str, job_id: str) -> None:
        with self._lock:
            held = self._keys.get(key)
            if held is not None and held.job_id == job_id:
                del self._keys[key]

    # ------------------------------------------------------------------ batches
    def _put_batch_if_absent(self, row: BatchRow, now: float) -> StoredBatch | None:
        with self._lock:
            old = self._batches.get(row.id)
            if old is not None and is_live(old.expires_at, now):
                return StoredBatch(old.doc, old.expires_at)
            self._batches[row.id] = row
        return None

    def _get_batch(self, batch_id: str) -> StoredBatch | None:
        with self._lock:
            row = self._batches.get(batch_id)
        return None if row is None else StoredBatch(row.doc, row.expires_at)

    # ------------------------------------------------------------------ leases
    def _get_budget(self, bucket: str) -> StoredBudget | None:
        with self._lock:
            return self._budgets.get(bucket)

    def _put_budget_if_version(self, bucket: str, doc: str, expected: int) -> bool:
        with self._lock:
            held = self._budgets.get(bucket)
            if (held.version if held is not None else 0) != expected:
                return False
            self._budgets[bucket] = StoredBudget(doc, expected + 1)
            return True

    def _put_lease(self, key: str, expires_at: float) -> None:
        with self._lock:
            self._leases[key] = expires_at

    def _expired_leases(self, now: float, limit: int) -> list[str]:
        with self._lock:
            expired = [key for key, at in self._leases.items() if not is_live(at, now)]
        return expired[:limit]

    def _drop_lease(self, key: str) -> None:
        with self._lock:
            self._leases.pop(key, None)

    # ------------------------------------------------------------------ housekeeping
    def _delete_expired(self, now: float) -> Sweep:
        # Judged on the expiry beside each document, never the document: unreadable
        # rows go too. A dict delete cannot fail, so nothing is ever skipped here.
        with self._lock:
            jobs = _expired(self._jobs, now)
            keys = _expired(self._keys, now)
            batches = _expired(self._batches, now)
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


def from_url(
    url: str, *, clock: Clock | None = None, blobs: BlobStore | None = None
) -> MemoryJobStore:
    """`memory://`: a store in this process (tests, one-shot CLI runs)."""
    if url.partition("://")[2]:
        raise ValueError("memory:// takes no path or options")
    return MemoryJobStore(clock=clock, blobs=blobs)


__all__ = ["MemoryJobStore", "from_url"]
