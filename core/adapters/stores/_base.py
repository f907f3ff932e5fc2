"""The JobStore port written once, on top of a few primitives each backend implements
(in the spirit of Powertools' idempotency `BasePersistenceLayer` and its backends'
`_get_record` / `_put_record` / `_update_record` / `_delete_record`).

Decided here, for every backend, so none can drift:
- versions: a created job is stored as version 1, a compare-and-set writes version + 1;
- expiry: a record is live until its `expires_at` (`is_live`); reads judge the rows a
  primitive hands back, and every "if absent" primitive counts an expired row as absent;
- the stored form and what is readable (_records): a row that cannot be decoded is
  UnreadableRecordError on a read, named in a scan's Page, and replaced in place by
  `fail_unreadable` only if it is still the very row that was read;
- listings: keyset pages in (created_at, id) order behind the shared cursor, one row
  more than asked to tell whether a page follows, pages filled past expired rows, the
  cursor cut from the last row's own sort key (never from its document); the pending
  scan merged over the backend's partitions, oldest first;
- manifests too large for the backend's item (_manifests): kept in the blob store,
  read back transparently, deleted when replaced, lost or expired;
- what this instance last saw of each job (`Seen`), so that a compare-and-set right
  after a read reads nothing more, where the backend's conditional write needs a token
  (Firestore's update time, an ETag) or the replaced version's manifest blob must go.

A backend subclasses BaseJobStore and implements only these (each does one thing to the
backend, atomically where it says so, and decides nothing of the above):

    jobs      _get_job(job_id) -> StoredJob | None
              _put_job_if_absent(row, now) -> Written | StoredJob
              _put_job_if_version(row, expected, seen, now) -> Written | None
              _replace_job(old, row, now) -> Written | None
              _query_page(query, resume, limit, now) -> (rows, resume | None)
    keys      _claim_key(key, job_id, expires_at, now) -> holder
              _get_key(key) -> StoredKey | None
              _release_key(key, job_id)
    batches   _put_batch_if_absent(row, now) -> StoredBatch | None
              _get_batch(batch_id) -> StoredBatch | None
    budgets   _get_budget(bucket) -> StoredBudget | None
              _put_budget_if_version(bucket, doc, expected) -> bool
    leases    _put_lease(key, expires_at), _expired_leases(now, limit), _drop_lease(key)
              (only a backend with an item limit: see _manifests.LeaseTable)
    upkeep    _delete_expired(now) -> Sweep, ping(), close()

It passes BaseJobStore.__init__ its `max_doc_bytes`: the longest document it keeps
inline, from its documented item limit less room for the fields beside the document
(None: any length; then it needs no leases). It declares `pending_partitions` (how many
partitions the pending scan merges) and `cas_needs_token` (True when its compare-and-set
is conditional on a token of the row read, not on the version alone). A backend whose
create fails on any existing row (Firestore's create(), Azure's insert) builds
`_put_*_if_absent` with `create_unless_live`. One offering the bulk calls (BulkJobStore)
settles each job of `create_many` with `_created`, as `create` does.
"""

from __future__ import annotations

import logging
import threading
from abc import ABC, abstractmethod
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, NamedTuple, TypeVar

from core.adapters.clock import SystemClock
from core.adapters.outages import unavailable
from core.adapters.stores._common import (
    SortKey,
    check_limit,
    decode_cursor,
    encode_cursor,
    is_live,
)
from core.adapters.stores._manifests import Encoded, ManifestOverflow
from core.adapters.stores._records import (
    ManifestRef,
    dump_batch,
    load_batch,
    load_job,
    manifest_blob_of,
    unreadable_stand_in,
)
from core.domain.job import Job, JobStatus
from core.ports import (
    Batch,
    BlobStore,
    Clock,
    Page,
    StoredBudget,
    Sweep,
    UnreadableRecordError,
)

log = logging.getLogger("imggo.store")

W = TypeVar("W")
R = TypeVar("R")

_SEEN_MAX = 4096  # jobs whose last seen row is remembered (LRU)


# ---------------------------------------------------------------------------- rows
@dataclass(frozen=True, slots=True, eq=False)
class JobRow:
    """A job as a backend writes it: its document, and copies of the fields listings
    filter and sort on (so a backend never parses documents to answer a query)."""

    id: str
    tenant: str
    status: str
    pending: bool
    version: int
    created_at: float
    updated_at: float
    expires_at: float | None
    doc: str

    @classmethod
    def of(cls, job: Job, doc: str) -> JobRow:
        return cls(
            job.id,
            job.tenant,
            job.status.value,
            not job.terminal,
            job.version,
            job.created_at,
            job.updated_at,
            job.expires_at,
            doc,
        )


@dataclass(frozen=True, slots=True, eq=False)
class StoredJob:
    """A job row as the backend holds it, not yet decoded. The document and the index
    fields are whatever is there (the codec judges); `token` is the backend's own proof
    of "this very row" for a later conditional write (an update time, an ETag)."""

    id: str
    doc: object
    expires_at: float | None
    version: object = None
    tenant: object = None
    created_at: object = None
    token: Any = None


class ScanRow(NamedTuple):
    """One row of a listing or pending scan: `order` is its sort key from the index
    fields, (created_at, id) or (updated_at, id)."""

    id: str
    doc: object
    expires_at: float | None
    order: SortKey


class StoredKey(NamedTuple):
    job_id: str
    expires_at: float | None


class StoredBatch(NamedTuple):
    doc: object
    expires_at: float | None


@dataclass(frozen=True, slots=True, eq=False)
class BatchRow:
    """A batch as a backend stores it: its document and the keys it is found by."""

    id: str
    tenant: str
    created_at: float
    expires_at: float | None
    doc: str


@dataclass(frozen=True, slots=True, eq=False)
class Written:
    """A conditional write that happened, with the new row's token (if the backend has
    tokens)."""

    token: Any = None


@dataclass(frozen=True, slots=True, eq=False)
class Listing:
    """A tenant's jobs, newest first by (created_at, id), of one status or any, strictly
    after the sort key `after` (a cursor's) when given."""

    tenant: str
    status: str | None
    after: SortKey | None


@dataclass(frozen=True, slots=True, eq=False)
class Pending:
    """Non-terminal jobs with updated_at < `updated_before`, oldest first by
    (updated_at, id), in one partition of the backend's pending index."""

    updated_before: float
    partition: int


Query = Listing | Pending


@dataclass(frozen=True, slots=True, eq=False)
class Seen:
    """One version of a job as this store last read or wrote it. A version never
    changes once written, so this stays true of it: its expiry, its manifest blob, and
    the backend's token (which a later write of the job makes stale, as it should)."""

    version: int
    created_at: float
    expires_at: float | None
    manifest_blob: ManifestRef | None
    token: Any


class _SeenJobs:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._jobs: OrderedDict[str, Seen] = OrderedDict()

    def recall(self, job: Job) -> Seen | None:
        """What was seen of exactly the version (and incarnation) `job` was made from."""
        with self._lock:
            seen = self._jobs.get(job.id)
        if seen is None or seen.version != job.version or seen.created_at != job.created_at:
            return None
        return seen

    def remember(self, job_id: str, seen: Seen) -> None:
        with self._lock:
            self._jobs[job_id] = seen
            self._jobs.move_to_end(job_id)
            while len(self._jobs) > _SEEN_MAX:
                self._jobs.popitem(last=False)

    def forget(self, job_id: str) -> None:
        with self._lock:
            self._jobs.pop(job_id, None)


def create_unless_live(
    try_create: Callable[[], W | None],
    read: Callable[[], R | None],
    expires_at: Callable[[R], float | None],
    replace: Callable[[R], W | None],
    *,
    now: float,
    backend: str,
) -> W | R:
    """Create-if-absent for a backend whose create fails on any existing row: create;
    if a row is there, read it; a live one wins (returned), an expired one counts as
    absent and is replaced, only if nobody wrote it since it was read. A row that
    vanishes or changes in between sends the loop round again. `try_create` and
    `replace` return the backend's write result, or None when the row was in the way."""
    for _ in range(32):
        created = try_create()
        if created is not None:
            return created
        existing = read()
        if existing is None:
            continue  # swept between the create and the read: create again
        if is_live(expires_at(existing), now):
            return existing
        replaced = replace(existing)
        if replaced is not None:
            return replaced
    raise unavailable(backend)  # contended beyond reason: the caller retries later


# ---------------------------------------------------------------------------- the base
class BaseJobStore(ABC):
    """The JobStore port on the primitives listed in the module docstring."""

    pending_partitions: int = 1
    cas_needs_token: ClassVar[bool] = False

    def __init__(
        self,
        *,
        clock: Clock | None = None,
        blobs: BlobStore | None = None,
        max_doc_bytes: int | None = None,
    ) -> None:
        # The clock judges expiry for calls that take no `now` (get, list_*, create...).
        self._clock: Clock = clock or SystemClock()
        self._overflow = ManifestOverflow(blobs, max_doc_bytes, self)
        needs_seen = self.cas_needs_token or self._overflow.enabled
        self._seen: _SeenJobs | None = _SeenJobs() if needs_seen else None

    @property
    def max_doc_bytes(self) -> int | None:
        """The longest document this store keeps inline; a longer job keeps its
        manifest in the blob store. None: any length."""
        return self._overflow.max_doc_bytes

    # ------------------------------------------------------------------ jobs
    def create(self, job: Job) -> tuple[Job, bool]:
        now = self._clock.now()
        encoded = self._overflow.encode(job.replace(version=1))
        found = self._put_job_if_absent(JobRow.of(encoded.job, encoded.doc), now)
        return self._created(encoded, found)

    def get(self, job_id: str) -> Job | None:
        found = self._get_job(job_id)
        if found is None or not is_live(found.expires_at, self._clock.now()):
            return None
        job, blob = self._decode(job_id, found.doc)
        self._remember_read(found, job, blob)
        return job

    def compare_and_set(self, job: Job) -> Job | None:
        now = self._clock.now()
        seen = self._recall(job)
        if seen is None and self._seen is not None:
            return None  # the stored job is not that version (or not there)
        if seen is not None and not is_live(seen.expires_at, now):
            return None
        encoded = self._overflow.encode(job.replace(version=job.version + 1))
        written = self._put_job_if_version(
            JobRow.of(encoded.job, encoded.doc), expected=job.version, seen=seen, now=now
        )
        if written is None:
            self._lost(encoded)
            return None
        self._remember(encoded, written)
        if seen is not None:
            self._overflow.discard(seen.manifest_blob, keep=encoded.manifest_blob)
        return encoded.read_back()

    def fail_unreadable(self, job_id: str, *, now: float) -> Job | None:
        found = self._get_job(job_id)
        if found is None or not is_live(found.expires_at, now):
            return None
        try:
            self._decode(job_id, found.doc)
            return None  # it reads fine
        except UnreadableRecordError:
            pass
        failed = unreadable_stand_in(
            job_id,
            tenant=found.tenant,
            created_at=found.created_at,
            expires_at=found.expires_at,
            version=found.version,
            now=now,
        )
        encoded = self._overflow.encode(failed)
        written = self._replace_job(found, JobRow.of(encoded.job, encoded.doc), now)
        if written is None:  # it changed since it was read: a good write wins
            self._forget(job_id)
            return None
        self._remember(encoded, written)
        self._overflow.discard(manifest_blob_of(found.doc))
        return encoded.read_back()

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
        query = Listing(tenant, None if status is None else status.value, after)
        # One more than asked tells whether another page exists.
        rows = self._live_rows(query, limit + 1, self._clock.now())
        page = rows[:limit]
        # From the row's sort key, not its document: the cursor may stop on an unreadable row.
        next_cursor = encode_cursor(page[-1].order) if len(rows) > limit else None
        jobs: list[Job] = []
        unreadable: list[str] = []
        for row in page:
            job = self._read_row(row)
            if job is None:
                unreadable.append(row.id)
            else:
                jobs.append(job)
        return Page(jobs, next_cursor, tuple(unreadable))

    def list_pending(self, *, updated_before: float, limit: int) -> Page:
        check_limit(limit)
        now = self._clock.now()
        rows: list[ScanRow] = []
        for partition in range(self.pending_partitions):
            rows += self._live_rows(Pending(updated_before, partition), limit, now)
        rows.sort(key=lambda row: row.order)
        jobs: list[Job] = []
        unreadable: list[str] = []
        for row in rows:
            if len(jobs) + len(unreadable) == limit:
                break
            job = self._read_row(row)
            if job is None:
                unreadable.append(row.id)
            elif not job.terminal:  # an index may lag its row a moment
                jobs.append(job)
        return Page(jobs, None, tuple(unreadable))

    # ------------------------------------------------------------------ lookup keys
    def claim_key(self, key: str, job_id: str, *, expires_at: float | None, now: float) -> str:
        return self._claim_key(key, job_id, expires_at, now)

    def lookup_key(self, key: str, *, now: float) -> str | None:
        found = self._get_key(key)
        return found.job_id if found is not None and is_live(found.expires_at, now) else None

    def release_key(self, key: str, job_id: str) -> None:
        self._release_key(key, job_id)

    # ------------------------------------------------------------------ batches
    def create_batch(self, batch: Batch) -> tuple[Batch, bool]:
        row = BatchRow(
            batch.id, batch.tenant, batch.created_at, batch.expires_at, dump_batch(batch)
        )
        found = self._put_batch_if_absent(row, self._clock.now())
        if found is None:
            return load_batch(batch.id, row.doc), True
        return load_batch(batch.id, found.doc), False

    def get_batch(self, batch_id: str) -> Batch | None:
        found = self._get_batch(batch_id)
        if found is None or not is_live(found.expires_at, self._clock.now()):
            return None
        return load_batch(batch_id, found.doc)

    # ------------------------------------------------------------------ rate budgets
    def read_budget(self, bucket: str) -> StoredBudget | None:
        return self._get_budget(bucket)

    def write_budget(self, bucket: str, doc: str, *, expected: int) -> bool:
        if expected < 0:
            raise ValueError("a budget's expected version is 0 (absent) or more")
        return self._put_budget_if_version(bucket, doc, expected)

    # ------------------------------------------------------------------ housekeeping
    def delete_expired(self, *, now: float) -> Sweep:
        """Expired jobs, keys and batches (judged on their expiry, never their documents,
        so unreadable ones go too), then the manifest blobs whose lease expired."""
        rows = self._delete_expired(now)
        blobs = self._overflow.sweep(now)
        return Sweep(rows.removed + blobs.removed, rows.skipped + blobs.skipped)

    # ------------------------------------------------------------------ shared steps
    def _created(self, encoded: Encoded, found: Written | StoredJob) -> tuple[Job, bool]:
        """What `create` answers once `_put_job_if_absent` of `encoded` answered `found`
        (also for a backend's own bulk create): ours, or the live job that was there -
        and then our manifest blob, if any, is no one's."""
        if isinstance(found, Written):
            self._remember(encoded, found)
            return encoded.read_back(), True
        try:
            existing, blob = self._decode(found.id, found.doc)
        except UnreadableRecordError:
            self._overflow.discard(encoded.manifest_blob, keep=manifest_blob_of(found.doc))
            raise
        self._overflow.discard(encoded.manifest_blob, keep=blob)  # we lost: ours is no one's
        self._remember_read(found, existing, blob)
        return existing, False

    def _decode(self, job_id: str, doc: object) -> tuple[Job, ManifestRef | None]:
        """The stored job, with its manifest wherever it is kept."""
        job, blob = load_job(job_id, doc)
        return (job, None) if blob is None else (self._overflow.attach(job, blob), blob)

    def _read_row(self, row: ScanRow) -> Job | None:
        """One row of a scan: its job, or None when it cannot be read (logged by id and
        reason, never content)."""
        try:
            return self._decode(row.id, row.doc)[0]
        except UnreadableRecordError as exc:
            log.warning(
                "stored job %s cannot be read (%s); left out of the scan", row.id, exc.reason
            )
            return None

    def _live_rows(self, query: Query, want: int, now: float) -> list[ScanRow]:
        """Up to `want` live rows of `query`, in its order: pages are read on past expired
        rows (hidden until swept), so a page is still full."""
        rows: list[ScanRow] = []
        resume: object | None = None
        while len(rows) < want:
            page, resume = self._query_page(query, resume, want - len(rows), now)
            rows += (row for row in page if is_live(row.expires_at, now))
            if resume is None:
                break
        return rows[:want]

    def _recall(self, job: Job) -> Seen | None:
        """What is known of the stored version `job` was made from, where this store
        needs it: remembered, or else read. None when nothing is needed, or when the
        stored job is not (or no longer) that version."""
        if self._seen is None:
            return None
        seen = self._seen.recall(job)
        if seen is not None:
            return seen
        found = self._get_job(job.id)
        if found is None or found.version != job.version or type(found.version) is not int:
            return None
        return Seen(
            job.version,
            job.created_at,
            found.expires_at,
            manifest_blob_of(found.doc),
            found.token,
        )

    def _remember(self, encoded: Encoded, written: Written) -> None:
        if self._seen is not None:
            job = encoded.job
            seen = Seen(
                job.version, job.created_at, job.expires_at, encoded.manifest_blob, written.token
            )
            self._seen.remember(job.id, seen)

    def _remember_read(self, found: StoredJob, job: Job, blob: ManifestRef | None) -> None:
        if self._seen is not None:
            seen = Seen(job.version, job.created_at, found.expires_at, blob, found.token)
            self._seen.remember(job.id, seen)

    def _forget(self, job_id: str) -> None:
        if self._seen is not None:
            self._seen.forget(job_id)

    def _lost(self, encoded: Encoded) -> None:
        """A compare-and-set lost its race: what we remembered is stale, and our blob
        (if any) is no one's unless the winner wrote the very same one."""
        self._forget(encoded.job.id)
        if encoded.manifest_blob is None:
            return
        current = self._get_job(encoded.job.id)
        kept = None if current is None else manifest_blob_of(current.doc)
        self._overflow.discard(encoded.manifest_blob, keep=kept)

    # ------------------------------------------------------------------ primitives
    @abstractmethod
    def _get_job(self, job_id: str) -> StoredJob | None:
        """The row stored under `job_id`, live or expired (a consistent read)."""

    @abstractmethod
    def _put_job_if_absent(self, row: JobRow, now: float) -> Written | StoredJob:
        """Store `row` unless a row live at `now` has its id (an expired one is replaced,
        as if already swept). Written, or the live row that is there."""

    @abstractmethod
    def _put_job_if_version(
        self, row: JobRow, *, expected: int, seen: Seen | None, now: float
    ) -> Written | None:
        """Store `row` only if the stored row is live at `now` and at version `expected`
        (`seen`, when the store keeps it, is that version as last seen, with its token).
        None when it is not: nothing was written."""

    @abstractmethod
    def _replace_job(self, old: StoredJob, row: JobRow, now: float) -> Written | None:
        """Store `row` only if the stored row is still `old` (the very row read, not just
        its version) and live; None when it changed or went."""

    @abstractmethod
    def _query_page(
        self, query: Query, resume: object | None, limit: int, now: float
    ) -> tuple[Sequence[ScanRow], object | None]:
        """One read of `query`: at most `limit` rows in its order, starting at the top
        (after `query.after`) or where `resume` says. Expired rows may be among them (the
        base skips those); a backend may leave them out itself, given `now`. Also the
        resume token for the next read, or None when nothing follows."""

    @abstractmethod
    def _claim_key(self, key: str, job_id: str, expires_at: float | None, now: float) -> str:
        """Point `key` at `job_id` unless a claim live at `now` holds it (an expired one
        is replaced); the job id it points at afterwards."""

    @abstractmethod
    def _get_key(self, key: str) -> StoredKey | None:
        """The claim stored under `key`, live or expired."""

    @abstractmethod
    def _release_key(self, key: str, job_id: str) -> None:
        """Delete `key` only if it points at `job_id`."""

    @abstractmethod
    def _put_batch_if_absent(self, row: BatchRow, now: float) -> StoredBatch | None:
        """Store `row` unless a batch live at `now` has its id; None when stored, else
        the live batch that is there."""

    @abstractmethod
    def _get_batch(self, batch_id: str) -> StoredBatch | None:
        """The batch stored under `batch_id`, live or expired."""

    @abstractmethod
    def _get_budget(self, bucket: str) -> StoredBudget | None:
        """The budget record stored under `bucket` (a consistent read), or None."""

    @abstractmethod
    def _put_budget_if_version(self, bucket: str, doc: str, expected: int) -> bool:
        """Store `doc` at version `expected` + 1 if the stored record is at `expected`
        (0: absent), atomically; False, writing nothing, when it is not."""

    @abstractmethod
    def _delete_expired(self, now: float) -> Sweep:
        """Remove the jobs, keys and batches expired at `now`, judged on their expiry
        alone (never by decoding); one that cannot be removed is skipped and logged.
        A backend whose rows expire natively (TTL) may remove nothing."""

    def _put_lease(self, key: str, expires_at: float) -> None:
        raise NotImplementedError(f"{type(self).__name__} keeps no manifest leases")

    def _expired_leases(self, now: float, limit: int) -> list[str]:
        raise NotImplementedError(f"{type(self).__name__} keeps no manifest leases")

    def _drop_lease(self, key: str) -> None:
        raise NotImplementedError(f"{type(self).__name__} keeps no manifest leases")

    @abstractmethod
    def ping(self) -> None:
        """Raise if the store cannot be reached (readiness)."""

    @abstractmethod
    def close(self) -> None:
        """Release connections and clients; the store is unusable afterwards."""


__all__ = [
    "BaseJobStore",
    "BatchRow",
    "JobRow",
    "Listing",
    "Pending",
    "Query",
    "ScanRow",
    "Seen",
    "StoredBatch",
    "StoredJob",
    "StoredKey",
    "Written",
    "create_unless_live",
]
