"""The ports: what the use cases need from the outside world, as protocols.

Adapters (core.adapters.*, and each cloud's) implement them; core.service only ever
sees these names. Every store must honour the same promises, proven by
tests/contract: create-if-absent, compare-and-set on `version`, forward-only
updates decided by the caller, tenant-scoped listing with an opaque cursor, expiry,
and containment of a stored record no reader can decode (see UnreadableRecordError).
The blob store, the queue and the secrets have a contract suite each too
(tests/contract/blob_contract.py, queue_contract.py, secrets_contract.py); their
vocabulary is in their docstrings below.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from core.domain.job import Job, JobStatus


# --------------------------------------------------------------------------- store
class UnreadableRecordError(Exception):
    """A record is stored under this id but cannot be decoded: corrupted in place, or
    written by buggy or newer code. It names the record and the decoder's exception type
    only; its content (customer data, perhaps secrets) is never carried, not even as
    the exception's cause."""

    def __init__(self, kind: str, record_id: str, reason: str) -> None:
        super().__init__(f"stored {kind} {record_id} cannot be read ({reason})")
        self.kind = kind  # "job" or "batch"
        self.record_id = record_id
        self.reason = reason


@dataclass(frozen=True)
class Page:
    """One stretch of a scan (a listing page, the pending jobs). A record in it that
    cannot be decoded is not in `items` but named in `unreadable`, by id: it still takes
    its place in the stretch, so `next_cursor` resumes after it and every record of a
    scan is either returned or named exactly once."""

    items: list[Job]
    next_cursor: str | None = None
    unreadable: tuple[str, ...] = ()


@dataclass(frozen=True)
class Sweep:
    """What one expiry sweep did. `skipped`: expired records it could not remove this
    time (each logged by id); a later sweep, or the backend's TTL, tries again."""

    removed: int = 0
    skipped: int = 0


@dataclass(frozen=True)
class Batch:
    """A batch of images submitted together: the jobs it made, in order, and the items
    refused."""

    id: str
    tenant: str
    pattern_id: str
    job_ids: list[str | None]  # one per item, in order; None for items refused at validation
    item_errors: dict[int, dict[str, str]]  # item index -> {"code", "message"}
    created_at: float
    expires_at: float | None = None
    # What the request asked for (a hash): a reused Idempotency-Key with another payload
    # is a conflict, not a replay.
    fingerprint: str | None = None

    def to_record(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "tenant": self.tenant,
            "pattern_id": self.pattern_id,
            "job_ids": list(self.job_ids),
            "item_errors": {str(k): v for k, v in self.item_errors.items()},
            "created_at": self.created_at,
            "expires_at": self.expires_at,
            "fingerprint": self.fingerprint,
        }

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> Batch:
        return cls(
            id=record["id"],
            tenant=record["tenant"],
            pattern_id=record["pattern_id"],
            job_ids=list(record["job_ids"]),
            item_errors={int(k): v for k, v in record.get("item_errors", {}).items()},
            created_at=record["created_at"],
            expires_at=record.get("expires_at"),
            fingerprint=record.get("fingerprint"),
        )


@dataclass(frozen=True)
class StoredBudget:
    """A shared rate budget as a store keeps it: a small document only
    core.domain.rate_budget reads, and the version its compare-and-set is judged on."""

    doc: str
    version: int


class JobStore(Protocol):
    """Jobs, lookup keys and batches, with the promises above. Two more, on every
    backend: a job's manifest may be of any size (one too large for the backend's item
    is kept in the blob store, behind the job, and read back with it); and a backend
    that cannot be reached makes any call raise UnavailableError `store_unavailable`
    within seconds. Backends implement core.adapters.stores._base's primitives."""

    def create(self, job: Job) -> tuple[Job, bool]:
        """Store `job` if no job has its id. Returns (the stored job, True) when this call
        created it, else (the job already there, False). The stored job has version 1.
        PayloadTooLargeError `job_too_large` when it cannot be stored even with its
        manifest kept elsewhere."""

    def get(self, job_id: str) -> Job | None:
        """The live job, or None. UnreadableRecordError when one is stored but cannot be
        decoded; listings and scans never raise that, they name the record instead."""

    def compare_and_set(self, job: Job) -> Job | None:
        """Write `job` only if the stored version still equals `job.version`; the written
        job has version + 1 and is returned. None when someone else wrote first."""

    def list_jobs(
        self,
        tenant: str,
        *,
        status: JobStatus | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> Page:
        """The tenant's jobs, newest first (created_at, then id), optionally of one status."""

    def list_pending(self, *, updated_before: float, limit: int) -> Page:
        """Non-terminal jobs of any tenant not updated since `updated_before`, oldest first
        (at most `limit` records, readable or not; no cursor)."""

    def fail_unreadable(self, job_id: str, *, now: float) -> Job | None:
        """If the live job stored under `job_id` cannot be decoded, replace it - only if it
        is still that same record, so a concurrent good write is never clobbered - by a
        minimal `failed` job (error `unreadable_record`) that keeps its id and, where
        the store can read them beside the document, its tenant, created_at and expiry.
        The job written, or None when nothing was: no such live job, it reads fine, or
        it changed meanwhile."""

    def claim_key(self, key: str, job_id: str, *, expires_at: float | None, now: float) -> str:
        """Point the lookup `key` at `job_id` unless it already points at a live job.
        Returns the job id the key points at after the call (ours when we won)."""

    def lookup_key(self, key: str, *, now: float) -> str | None: ...

    def release_key(self, key: str, job_id: str) -> None:
        """Drop `key` if it still points at `job_id` (its job failed: let the next one claim)."""

    def create_batch(self, batch: Batch) -> tuple[Batch, bool]: ...

    def get_batch(self, batch_id: str) -> Batch | None:
        """The live batch, or None; UnreadableRecordError as for `get`."""

    def delete_expired(self, *, now: float) -> Sweep:
        """Remove what has expired, judged without decoding documents, so an unreadable
        record goes too; a record that cannot be removed is skipped, not fatal. Stores
        with native TTL may remove nothing and let the cloud do it."""

    def read_budget(self, bucket: str) -> StoredBudget | None:
        """The rate budget record stored under `bucket` (core.domain.rate_budget), or
        None when there is none yet. A consistent read: a write that returned True
        before this call is seen."""

    def write_budget(self, bucket: str, doc: str, *, expected: int) -> bool:
        """Store `doc` under `bucket` as version `expected` + 1, only if the stored
        record is still at version `expected` (0: none stored). True when written;
        False when another writer got there first and nothing was written. Budget
        records never expire: there is one per ImgGo key."""

    def ping(self) -> None:
        """Raise if the store cannot be reached (readiness)."""


@runtime_checkable
class BulkJobStore(Protocol):
    """Optional: a store that can create many jobs, and claim many keys, in one round
    trip each. Batches use it when the store has it; every job is still created if
    absent and every key claimed unless held, exactly as one by one."""

    def create_many(self, jobs: Sequence[Job]) -> list[tuple[Job, bool]]:
        """`create` for each job, in order, in one go."""

    def claim_many(
        self, claims: Sequence[tuple[str, str, float | None]], *, now: float
    ) -> list[str]:
        """`claim_key(key, job_id, expires_at=...)` for each (key, job_id, expires_at),
        in order, in one go; the holders."""


# --------------------------------------------------------------------------- ImgGo
@dataclass(frozen=True)
class ImageUpload:
    """An image sent with the submission itself (multipart), not fetched from a URL."""

    data: bytes
    filename: str
    content_type: str


@dataclass(frozen=True)
class Submission:
    """What ImgGo is asked to ingest: a pattern, one image (a URL or an upload), the
    extras and the key that makes a retry a replay."""

    pattern_id: str
    idempotency_key: str
    image_url: str | None = None
    upload: ImageUpload | None = None
    extras: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class RemoteJob:
    """ImgGo's view of a job (GET /api/jobs/{id}, or the ingest answer with only id+status)."""

    id: str
    status: JobStatus
    manifest: dict[str, Any] | None = None
    error: str | None = None
    replayed: bool = False  # ingest answered 200: the idempotency key was seen before


class ImageApiError(Exception):
    """ImgGo said no, or could not be reached. `retryable` tells whether trying the same
    call later may succeed (429, 5xx, timeouts, connection errors)."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: str = "imggo_error",
        details: dict[str, Any] | None = None,
        retryable: bool = False,
        retry_after_s: float | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code
        self.details = details or {}
        self.retryable = retryable
        self.retry_after_s = retry_after_s


class ImageApi(Protocol):
    def submit(self, submission: Submission, *, deadline: float | None = None) -> RemoteJob: ...

    def get_job(self, imggo_job_id: str, *, deadline: float | None = None) -> RemoteJob: ...

    def export(self, imggo_job_id: str, fmt: str) -> tuple[str, bytes]:
        """The manifest rendered by ImgGo in `fmt`: (content type, body)."""

    def list_patterns(self) -> list[dict[str, Any]]: ...

    def ping(self) -> None:
        """Raise ImageApiError if ImgGo's health endpoint does not answer."""


# --------------------------------------------------------------------------- queue
@dataclass(frozen=True)
class WorkItem:
    """One unit of deferred work: submit this job to ImgGo."""

    job_id: str


class Queue(Protocol):
    """Deferred work, handed to the platform's queue (SQS, Pub/Sub, a local pool).

    The port is one call, because `send` is all core does with a queue: delivery is the
    platform's (a trigger calls core.service.work for each message). Every item sent is
    delivered as sent - by the cloud queues at least once, by the local pool once, in
    this process - and no order is promised. The adapter splits `items`
    into whatever batches its backend takes (SQS: 10 per request) and waits until the
    backend holds them all. A backend that cannot be reached raises UnavailableError
    `store_unavailable` within the adapter's CallLimits; the jobs stay accepted and the
    reconciler dispatches them later, so nothing is lost.
    """

    # The longest `delay_s` the backend can hold an item back for (SQS: 15 minutes;
    # Pub/Sub: none). A deferral longer than this is left to the platform's redelivery.
    max_delay_s: float

    def send(self, items: Sequence[WorkItem], *, delay_s: float = 0.0) -> None:
        """Hand `items` over; with `delay_s`, none is delivered before that many seconds
        (at most `max_delay_s`; more is a ValueError)."""
        ...


def check_delay(queue: Queue, delay_s: float) -> None:
    if not 0.0 <= delay_s <= queue.max_delay_s:
        raise ValueError(f"{type(queue).__name__} can delay an item 0..{queue.max_delay_s} s")


# --------------------------------------------------------------------------- blobs
@dataclass(frozen=True)
class SignedUpload:
    """Where and how a client PUTs bytes straight into the blob store."""

    url: str
    method: str
    headers: dict[str, str]  # the client must send exactly these (they are signed)
    expires_at: float


@dataclass(frozen=True)
class BlobInfo:
    """What `describe` tells about a stored blob without reading it."""

    size: int
    content_type: str


class BlobStore(Protocol):
    """Bytes by key: uploaded images (`uploads/<tenant>/<sha256>`) and direct uploads
    (`incoming/<tenant>/<job id>`).

    One vocabulary on every backend (memory, file, SQLite, S3, GCS), proven by
    tests/contract/blob_contract.py:
    - `put` stores or overwrites; `get` gives the bytes, exactly, or None; `describe`
      gives size and content type, or None; `delete` removes, and a missing key is fine.
    - Every call checks its key with core.adapters.blobs.check_key first: an unsafe key
      (empty parts, `.` or `..`, characters outside letters, digits, ` ._-/`) is refused
      with ValidationError `unsafe_blob_key` by every backend alike.
    - `signed_get_url` / `signed_put_url` return None when the store cannot sign (the
      local ones): the caller then sends the bytes itself, or answers 501.
    - `key_for_object(bucket, name)` maps an object event of the platform (S3
      ObjectCreated, GCS finalized) back to the key; None when the object is not this
      store's (another bucket, outside the prefix, not a safe key) and always None for
      the local stores, which have no events.
    - A backend that cannot be reached raises UnavailableError `store_unavailable`
      within the adapter's CallLimits.
    """

    def put(self, key: str, data: bytes, content_type: str) -> None: ...

    def get(self, key: str) -> bytes | None: ...

    def describe(self, key: str) -> BlobInfo | None: ...

    def delete(self, key: str) -> None: ...

    def signed_get_url(self, key: str, *, expires_s: int) -> str | None:
        """A URL ImgGo can fetch the blob from, or None when this store has none (local)."""

    def signed_put_url(
        self, key: str, *, content_type: str, size: int, expires_s: int
    ) -> SignedUpload | None:
        """A URL the client can PUT exactly `size` bytes of `content_type` to, or None when
        this store cannot sign one (local disk)."""

    def key_for_object(self, bucket: str, name: str) -> str | None:
        """The key of object `name` in `bucket`, as an object event names it, or None."""


@runtime_checkable
class BulkBlobStore(Protocol):
    """Optional: a blob store that can put many blobs in one round trip."""

    def put_many(self, blobs: Sequence[tuple[str, bytes, str]]) -> None:
        """`put(key, data, content_type)` for each, in one go."""


# --------------------------------------------------------------------------- secrets
class Secrets(Protocol):
    """Secret values by reference (an SSM parameter, a Secret Manager name, an
    environment variable): the value, or None when the reference names nothing.

    Backends only read; how long a value is kept, and so how soon a rotation is seen,
    is decided once, by core.adapters.secrets.secret_store. Values are never logged
    and never part of a repr. A backend that cannot be reached raises
    UnavailableError `store_unavailable` within the adapter's CallLimits.
    """

    def get(self, name: str) -> str | None: ...


@runtime_checkable
class BulkSecrets(Protocol):
    """Optional: a secret store that reads many references in one round trip."""

    def get_many(self, names: Sequence[str]) -> dict[str, str | None]:
        """`get(name)` for each name, in one go."""


# --------------------------------------------------------------------------- time, DNS
@runtime_checkable
class Clock(Protocol):
    def now(self) -> float: ...


Resolver = Callable[[str], list[str]]
"""Host name -> its IP addresses (as strings). Injected so tests never touch DNS."""
