"""Manifests too large for a backend's item, kept in the blob store behind their job.

Every backend bounds one stored item: DynamoDB 400 KB an item, Firestore 1 MiB a
document, Azure Tables 1 MiB an entity and 64 KiB a property. Each declares the longest
document it keeps inline (`max_doc_bytes`, None: any); a job whose document would be
longer keeps its manifest (the one part of a job that grows without bound: extras are
capped at submission) in the blob store, and its document names the blob with a
ManifestRef (core.adapters.stores._records). Every read of the job fetches the blob and
checks its SHA-256, so callers never see the difference; a blob that is missing or was
altered makes the job unreadable, contained like any other unreadable record.

Keys: `manifests/<incarnation>/<version>-<sha256>.json`. `<incarnation>` hashes the
job's id, created_at and expires_at, so a blob name says nothing about the job, and
a blob's key fixes the expiry of every record that can name it.
- Derived, never random: a retried write (same job, same version, same manifest) names
  the same blob and simply puts it again.
- The version written is in the key, so every version that keeps its manifest outside
  has a blob of its own: a writer that lost its race may delete its blob unless the
  winner's record names that very key (the winner took this version; no later write
  can name it), and a replaced version's blob goes once the replacement is written.

Removal with the job. An expiring job's blob is leased in the job store (the backend's
`_put_lease(key, expires_at)`) before it is put. The expiry sweep deletes the blobs
whose lease has expired, then the leases. Leases rather than the job rows, because
rows are not a reliable way to find blobs: DynamoDB's TTL deletes expired rows on its
own (a Lambda never sees them), and an unreadable document names no blob. Deleting a
blob whose lease expired is always safe: its key carries that same expiry, so only
expired records can name it.

What can still be left behind: the blob of a write interrupted by an outage between
its blob and its record (the record may have landed, so it is not deleted), and a
replaced blob whose delete failed; both are swept with their lease when the job
expires - never, for a job without expiry.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from typing import Protocol

from core.adapters.stores._records import (
    ManifestRef,
    dump_job,
    dump_manifest,
    load_job,
    load_manifest,
)
from core.domain.errors import PayloadTooLargeError, UnavailableError
from core.domain.job import Job
from core.ports import BlobStore, Sweep, UnreadableRecordError

log = logging.getLogger("imggo.store.manifests")

PREFIX = "manifests/"
CONTENT_TYPE = "application/json"
SWEEP_MAX = 1000  # leases per sweep: reconcile stays bounded; the next sweep goes on
JOB_TOO_LARGE = "job_too_large"


class LeaseTable(Protocol):
    """What a backend with an item limit keeps for this module: one lease per blob of an
    expiring job, found by expiry without reading any job."""

    def _put_lease(self, key: str, expires_at: float) -> None:
        """Record (or overwrite) the lease of blob `key`."""

    def _expired_leases(self, now: float, limit: int) -> list[str]:
        """Up to `limit` keys whose lease expired at or before `now` (any order)."""

    def _drop_lease(self, key: str) -> None:
        """Forget the lease of `key` (no error when there is none)."""


@dataclass(frozen=True, eq=False)
class Encoded:
    """A job ready to be written: its document and, when the manifest is kept outside,
    the blob that holds it (already put)."""

    job: Job
    doc: str
    manifest_blob: ManifestRef | None = None
    manifest: bytes | None = None

    def read_back(self) -> Job:
        """The job as a read would give it: a copy made from what was written, which a
        caller may mutate without reaching stored state."""
        job, _ = load_job(self.job.id, self.doc)
        if self.manifest is None:
            return job
        return job.replace(manifest=load_manifest(job.id, self.manifest))


def blob_key(job: Job, digest: str) -> str:
    """The blob of `job`'s manifest (whose SHA-256 is `digest`), as the module docstring
    explains: the same for a retried write, its own for every version written."""
    incarnation = f"{job.id}\0{job.created_at!r}\0{job.expires_at!r}"
    named = hashlib.sha256(incarnation.encode()).hexdigest()[:40]
    return f"{PREFIX}{named}/{job.version}-{digest}.json"


class ManifestOverflow:
    """The mechanism for one store: its blob store (None: none configured), the longest
    document its backend keeps inline (None: any length, and nothing ever overflows),
    and the backend's leases."""

    def __init__(
        self, blobs: BlobStore | None, max_doc_bytes: int | None, leases: LeaseTable
    ) -> None:
        if max_doc_bytes is not None and max_doc_bytes < 1:
            raise ValueError("max_doc_bytes must be positive")
        self._blobs = blobs
        self.max_doc_bytes = max_doc_bytes
        self._leases = leases

    @property
    def enabled(self) -> bool:
        return self.max_doc_bytes is not None

    # ------------------------------------------------------------------ writes
    def encode(self, job: Job) -> Encoded:
        """`job` as the backend will store it. Its manifest goes to the blob store (leased
        first, when the job expires) only if the whole document would be too long; a
        document too long even without its manifest is a PayloadTooLargeError (413)."""
        doc = dump_job(job)
        limit = self.max_doc_bytes
        if limit is None or len(doc) <= limit:  # ASCII: characters are bytes
            return Encoded(job, doc)
        if job.manifest is None:
            raise self._too_large(job, len(doc), "and it has no manifest to keep elsewhere")
        if self._blobs is None:
            raise self._too_large(job, len(doc), "and no blob store is configured for it")
        manifest = dump_manifest(job.manifest)
        digest = hashlib.sha256(manifest).hexdigest()
        ref = ManifestRef(blob_key(job, digest), digest, len(manifest))
        lean = dump_job(job.replace(manifest=None), manifest_blob=ref)
        if len(lean) > limit:
            raise self._too_large(job, len(lean), "even without its manifest")
        if job.expires_at is not None:
            self._leases._put_lease(ref.key, job.expires_at)
        self._blobs.put(ref.key, manifest, CONTENT_TYPE)
        return Encoded(job, lean, ref, manifest)

    def _too_large(self, job: Job, size: int, why: str) -> PayloadTooLargeError:
        return PayloadTooLargeError(
            f"job {job.id} takes {size} bytes stored, more than the job store keeps in one "
            f"item ({self.max_doc_bytes}), {why}",
            code=JOB_TOO_LARGE,
        )

    # ------------------------------------------------------------------ reads
    def attach(self, job: Job, ref: ManifestRef) -> Job:
        """`job` (read without its manifest) with the manifest `ref` names, checked
        against the hash the document recorded; UnreadableRecordError if the blob is
        missing or is not what was written."""
        if self._blobs is None:
            raise UnreadableRecordError("job", job.id, "no blob store for its manifest")
        data = self._blobs.get(ref.key)
        if data is None:
            raise UnreadableRecordError("job", job.id, "manifest blob missing")
        if len(data) != ref.size or hashlib.sha256(data).hexdigest() != ref.sha256:
            raise UnreadableRecordError("job", job.id, "manifest blob altered")
        return job.replace(manifest=load_manifest(job.id, data))

    # ------------------------------------------------------------------ removal
    def discard(self, ref: ManifestRef | None, *, keep: ManifestRef | None = None) -> None:
        """Delete the blob `ref` names (and its lease) unless it is `keep`'s: the blob of
        a replaced version, or of a write that lost. Best effort: the write it follows
        has happened, so a failure is logged, and the lease sweeps the blob later."""
        if ref is None or ref == keep or self._blobs is None:
            return
        try:
            self._blobs.delete(ref.key)
            self._leases._drop_lease(ref.key)
        except Exception as exc:  # the write stands; the blob waits for its lease
            log.warning("could not delete manifest blob %s (%s)", ref.key, type(exc).__name__)

    def sweep(self, now: float) -> Sweep:
        """Delete the blobs whose lease expired by `now` (at most SWEEP_MAX per call),
        each before its lease, so a blob is never left without one. A blob that cannot be
        deleted is skipped (logged); its lease stays for the next sweep. An unreachable
        job store or blob store ends the sweep (UnavailableError)."""
        if not self.enabled or self._blobs is None:
            return Sweep()
        removed = skipped = 0
        for key in self._leases._expired_leases(now, SWEEP_MAX):
            try:
                self._blobs.delete(key)
            except UnavailableError:
                raise
            except Exception as exc:  # this blob's trouble, not the sweep's
                log.warning("sweep: could not delete %s (%s)", key, type(exc).__name__)
                skipped += 1
                continue
            self._leases._drop_lease(key)
            removed += 1
        return Sweep(removed=removed, skipped=skipped)


__all__ = ["CONTENT_TYPE", "JOB_TOO_LARGE", "PREFIX", "Encoded", "LeaseTable", "ManifestOverflow"]
