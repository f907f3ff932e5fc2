"""A Job is one image on its way to structured data, and the only state we keep.

The state machine moves forward only:

    accepted -> queued -> running -> succeeded | failed
    accepted -> rejected            (ImgGo refused the submission: terminal)

A transition to the same or an earlier state is a no-op, never an error: webhooks,
polls and queue deliveries race and repeat, and the latest *forward* news wins.
Times are unix seconds (float, UTC): cheap to compare, store and expire.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Literal


class JobStatus(StrEnum):
    ACCEPTED = "accepted"  # we hold it; ImgGo has not confirmed it yet
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    REJECTED = "rejected"  # ImgGo answered the submission with a non-retryable 4xx

    @property
    def terminal(self) -> bool:
        return self in _TERMINAL


_TERMINAL = frozenset({JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.REJECTED})
_RANK = {
    JobStatus.ACCEPTED: 0,
    JobStatus.QUEUED: 1,
    JobStatus.RUNNING: 2,
    JobStatus.SUCCEEDED: 3,
    JobStatus.FAILED: 3,
    JobStatus.REJECTED: 3,
}
PENDING_STATUSES = (JobStatus.ACCEPTED, JobStatus.QUEUED, JobStatus.RUNNING)


@dataclass(frozen=True)
class JobSource:
    """Where the image comes from: a URL ImgGo fetches, bytes we hold in a BlobStore
    (`upload`), or bytes the client is still putting there through a signed URL
    (`direct_upload`: the job waits in `accepted` until the blob store says they landed)."""

    kind: Literal["url", "upload", "direct_upload"]
    url: str | None = None
    blob_key: str | None = None
    content_type: str | None = None
    filename: str | None = None
    size: int | None = None


@dataclass(frozen=True)
class JobError:
    """Why a job failed or was rejected: a stable code and a message for people."""

    code: str
    message: str


@dataclass(frozen=True)
class Job:
    """One image's job, as the store keeps it and the API shows it."""

    id: str
    tenant: str
    pattern_id: str
    source: JobSource
    created_at: float
    updated_at: float
    status: JobStatus = JobStatus.ACCEPTED
    version: int = 0  # the store's compare-and-set token; 0 = never stored
    imggo_job_id: str | None = None
    manifest: dict[str, Any] | None = None
    error: JobError | None = None
    attempts: int = 0  # submissions tried at ImgGo
    idempotency_key: str | None = None
    fingerprint: str = ""  # digest of what was asked, to tell a replay from a conflicting reuse
    content_sha256: str | None = None
    extras: dict[str, Any] = field(default_factory=dict)
    batch_id: str | None = None
    dedupe_of: str | None = None  # the earlier job whose ImgGo result this one reuses
    refreshed_at: float | None = None  # last time ImgGo was asked about it
    completed_at: float | None = None
    expires_at: float | None = None

    @property
    def terminal(self) -> bool:
        return self.status.terminal

    def replace(self, **changes: Any) -> Job:
        """A copy with `changes`. Not dataclasses.replace: that re-runs the frozen
        __init__ (an object.__setattr__ per field), and jobs are copied several times
        per store write on the hot path."""
        unknown = changes.keys() - _FIELDS
        if unknown:
            raise TypeError(f"Job has no field(s) {sorted(unknown)}")
        copy = object.__new__(Job)
        state = copy.__dict__
        state.update(self.__dict__)
        state.update(changes)
        return copy

    def to_record(self) -> dict[str, Any]:
        """A JSON-safe dict every store can keep as one document. Built by hand, not with
        dataclasses.asdict: that deep-copies the manifest on every write (a hot path)."""
        record = {name: getattr(self, name) for name in _FIELDS}
        record["status"] = self.status.value
        record["source"] = {name: getattr(self.source, name) for name in _SOURCE_FIELDS}
        if self.error is not None:
            record["error"] = {"code": self.error.code, "message": self.error.message}
        return record

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> Job:
        """The inverse of to_record. Fields a record lacks (written by older code) take
        their defaults; keys this code does not know (written by newer code) are dropped."""
        missing = _REQUIRED - record.keys()
        if missing:
            raise TypeError(f"a job record lacks {sorted(missing)}")
        job = object.__new__(cls)  # as in replace(): no per-field frozen __setattr__
        state = job.__dict__
        state.update(_DEFAULTS)
        for name, factory in _FACTORIES.items():
            state[name] = factory()
        state.update((k, v) for k, v in record.items() if k in _FIELDS)
        state["status"] = JobStatus(record["status"])
        state["source"] = JobSource(**record["source"])
        if record.get("error") is not None:
            state["error"] = JobError(**record["error"])
        return job


_FIELDS = frozenset(f.name for f in dataclasses.fields(Job))
_DEFAULTS = {
    f.name: f.default for f in dataclasses.fields(Job) if f.default is not dataclasses.MISSING
}
_FACTORIES: dict[str, Callable[[], Any]] = {
    f.name: f.default_factory
    for f in dataclasses.fields(Job)
    if f.default_factory is not dataclasses.MISSING
}
_REQUIRED = frozenset(
    f.name
    for f in dataclasses.fields(Job)
    if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
)
_SOURCE_FIELDS = tuple(f.name for f in dataclasses.fields(JobSource))


def can_move(current: JobStatus, new: JobStatus) -> bool:
    """Forward-only: a later rank wins; `rejected` only follows `accepted`."""
    if current.terminal:
        return False
    if new is JobStatus.REJECTED:
        return current is JobStatus.ACCEPTED
    return _RANK[new] > _RANK[current]


def advance(
    job: Job,
    status: JobStatus,
    *,
    now: float,
    imggo_job_id: str | None = None,
    manifest: dict[str, Any] | None = None,
    error: JobError | None = None,
) -> Job | None:
    """The job moved to `status`, or None when that news is stale or repeated.

    `imggo_job_id` may be learned without a status change (an accepted job whose
    ingest answered `queued` moves to queued; a repeated answer is a no-op).
    """
    if not can_move(job.status, status):
        return None
    return job.replace(
        status=status,
        updated_at=now,
        imggo_job_id=imggo_job_id or job.imggo_job_id,
        manifest=manifest if status is JobStatus.SUCCEEDED else job.manifest,
        error=error if status in (JobStatus.FAILED, JobStatus.REJECTED) else job.error,
        completed_at=now if status.terminal else job.completed_at,
    )
