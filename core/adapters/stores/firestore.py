"""The JobStore on Google Cloud Firestore (native mode): `firestore://collection-prefix`.

Why it looks the way it does (what every store decides is core.adapters.stores._base's):
- Five collections, `{prefix}_jobs`, `{prefix}_keys`, `{prefix}_batches`, `{prefix}_budgets` and
  `{prefix}_manifests` (the leases of manifests kept in the blob store), named by the
  prefix so one database can hold several deployments (and every test its own store).
- A job is the same JSON document every store keeps (`doc`, exact floats, any manifest
  shape) plus copies of the fields queries filter and sort on. `doc` is exempt from
  indexing (firestore.indexes.json): it is large and never queried. A document holds at
  most 1 MiB: a job whose `doc` would not fit keeps its manifest in the blob store.
- Create-if-absent is Firestore's own `create()` (the write fails with ALREADY_EXISTS),
  with an expired document replaced as if absent (_base.create_unless_live). Every
  other conditional write is a write with an update-time precondition on the document
  as it was read: if anyone wrote it in between, the write fails with
  FAILED_PRECONDITION and nothing changes. No locks are held, so racing writers never
  wait on each other; the loser re-reads. ABORTED (contention) is retried with backoff.
- The update time is the compare-and-set token (`cas_needs_token`): the base remembers
  it for the version it last read or wrote, so a compare-and-set right after a create
  or a get skips its own read. Every write changes a job's version, so "the document
  changed since then" and "the version is no longer yours" are the same answer.
- Expiry is judged on `exp`, a float, with the same rule as every other store
  (`is_live`). `expires_at` holds the same instant as a Timestamp for a Firestore TTL
  policy, which deletes expired documents within about a day; until then they are
  hidden, and `delete_expired` can sweep them sooner. Leases have no `expires_at`: TTL
  would delete a lease before the sweep could delete its blob.
- Listings are composite-index queries (tenant [+ status], created_at desc, id desc)
  resumed after the cursor's (created_at, id); pages are cut and cursors made on those
  indexed fields, never on the decoded `doc`, so a document that cannot be decoded is
  stepped over and named, and the sweep (on `exp`) removes it like any other.
- Every call carries a timeout and a bounded retry (core.adapters.gcp.errors, from the
  store's CallLimits); what is still transient when they run out is `store_unavailable`.
  Left to their defaults the client retries for minutes, with no timeout on a read.

The project comes from `?project=` in the URL or GOOGLE_CLOUD_PROJECT, never from the
metadata server; with FIRESTORE_EMULATOR_HOST set the client talks to the emulator
with no credentials at all.
"""

from __future__ import annotations

import hashlib
import logging
import os
import random
import re
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

from google.api_core import exceptions as gexc
from google.cloud import firestore
from google.cloud.firestore_v1.base_query import FieldFilter

from core.adapters.gcp.errors import retry_policy, unavailable_on_outage
from core.adapters.outages import CallLimits, unavailable
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
    create_unless_live,
)
from core.adapters.stores._common import STORE_LIMITS, parse_store_url
from core.domain.errors import UnavailableError
from core.ports import BlobStore, Clock, StoredBudget, Sweep

log = logging.getLogger("imggo.store.firestore")

T = TypeVar("T")

BACKEND = "Firestore"
JOBS, KEYS, BATCHES, MANIFESTS = "jobs", "keys", "batches", "manifests"
BUDGETS = "budgets"  # the shared ImgGo rate budgets (core.domain.rate_budget)
# 1 MiB a document (its name, field names and values), less room for the other fields.
MAX_DOC_BYTES = 1024 * 1024 - 8 * 1024
_OPTIONS = {"project": "Google Cloud project", "database": "Firestore database id"}
_PREFIX_RE = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,99}")
# Document ids used as they are; anything else (a '/', '__reserved__', '.', very long)
# is hashed. '~' is outside this set, so a hashed id never equals a plain one.
_PLAIN_ID_RE = re.compile(r"[A-Za-z0-9_.:=+@-]{1,256}")
_SWEEP_PAGE = 300
_SWEEP_MAX = 3000  # per collection and call: reconcile stays bounded; TTL does the rest
_CONTENTION_ATTEMPTS = 8


def doc_id(raw: str) -> str:
    if _PLAIN_ID_RE.fullmatch(raw) and raw not in (".", "..") and not raw.startswith("__"):
        return raw
    return "~" + hashlib.sha256(raw.encode()).hexdigest()


def _timestamp(seconds: float | None) -> datetime | None:
    """The Timestamp a TTL policy reads; None (null) means "never expires" to it too."""
    return None if seconds is None else datetime.fromtimestamp(seconds, tz=UTC)


def parse_url(url: str) -> tuple[str, str | None, str | None]:
    """`firestore://prefix[?project=P&database=D]` -> (prefix, project, database)."""
    prefix, options = parse_store_url(url, "firestore", _OPTIONS)
    if not _PREFIX_RE.fullmatch(prefix):
        raise ValueError(
            "the firestore collection prefix must start with a letter and hold only "
            "letters, digits, '_' and '-' (at most 100)"
        )
    return prefix, options.get("project"), options.get("database")


def _fields(row: JobRow) -> dict[str, Any]:
    return {
        "id": row.id,
        "tenant": row.tenant,
        "status": row.status,
        "pending": row.pending,
        "version": row.version,
        "created_at": row.created_at,
        "updated_at": row.updated_at,
        "exp": row.expires_at,
        "expires_at": _timestamp(row.expires_at),
        "doc": row.doc,
    }


def _stored_job(job_id: str, snap: Any) -> StoredJob:
    row: dict[str, Any] = snap.to_dict() or {}
    return StoredJob(
        job_id,
        row.get("doc"),
        row.get("exp"),
        version=row.get("version"),
        tenant=row.get("tenant"),
        created_at=row.get("created_at"),
        token=snap.update_time,
    )


class FirestoreJobStore(BaseJobStore):
    cas_needs_token = True

    def __init__(
        self,
        prefix: str,
        *,
        project: str | None = None,
        database: str | None = None,
        clock: Clock | None = None,
        blobs: BlobStore | None = None,
        limits: CallLimits = STORE_LIMITS,
        client: firestore.Client | None = None,
    ) -> None:
        if not _PREFIX_RE.fullmatch(prefix):
            raise ValueError(f"invalid firestore collection prefix {prefix!r}")
        super().__init__(clock=clock, blobs=blobs, max_doc_bytes=MAX_DOC_BYTES)
        self.prefix = prefix
        if client is None:
            project = project or os.environ.get("GOOGLE_CLOUD_PROJECT")
            if not project:
                # Without it the client would ask the metadata server; say so instead.
                raise ValueError(
                    "firestore:// needs a project: set GOOGLE_CLOUD_PROJECT "
                    "or use firestore://prefix?project=P"
                )
            client = firestore.Client(project=project, database=database)
        self._client = client
        # Every call: at most this long per try, new tries only until the retry deadline.
        self._bounds: dict[str, Any] = {"retry": retry_policy(limits), "timeout": limits.per_try_s}
        self._jobs = client.collection(f"{prefix}_{JOBS}")
        self._keys = client.collection(f"{prefix}_{KEYS}")
        self._batches = client.collection(f"{prefix}_{BATCHES}")
        self._manifests = client.collection(f"{prefix}_{MANIFESTS}")
        self._budgets = client.collection(f"{prefix}_{BUDGETS}")
        # Each budget's version and update time as last read: the next write is
        # conditional on that update time, and needs no read of its own.
        self._budget_seen: dict[str, tuple[int, Any]] = {}

    @classmethod
    def from_url(
        cls, url: str, *, clock: Clock | None = None, blobs: BlobStore | None = None
    ) -> FirestoreJobStore:
        prefix, project, database = parse_url(url)
        return cls(prefix, project=project, database=database, clock=clock, blobs=blobs)

    # ------------------------------------------------------------------ jobs
    def _get_job(self, job_id: str) -> StoredJob | None:
        snap = self._snapshot(self._jobs.document(doc_id(job_id)))
        return None if snap is None else _stored_job(job_id, snap)

    def _put_job_if_absent(self, row: JobRow, now: float) -> Written | StoredJob:
        ref = self._jobs.document(doc_id(row.id))
        found = self._create_if_absent(ref, _fields(row), now)
        return found if isinstance(found, Written) else _stored_job(row.id, found)

    def _put_job_if_version(
        self, row: JobRow, *, expected: int, seen: Seen | None, now: float
    ) -> Written | None:
        # `seen` is that version as read or written (cas_needs_token): its update time
        # is the precondition, so a write since, by anyone, makes this one fail.
        assert seen is not None and seen.version == expected
        return self._write_if_unchanged(
            self._jobs.document(doc_id(row.id)), _fields(row), seen.token
        )

    def _replace_job(self, old: StoredJob, row: JobRow, now: float) -> Written | None:
        return self._write_if_unchanged(
            self._jobs.document(doc_id(row.id)), _fields(row), old.token
        )

    def _query_page(
        self, query: Query, resume: object | None, limit: int, now: float
    ) -> tuple[Sequence[ScanRow], object | None]:
        # Where the last read stopped (the order fields of its last document), if any.
        start: dict[str, Any] | None = resume if isinstance(resume, dict) else None
        if isinstance(query, Listing):
            found = self._jobs.where(filter=FieldFilter("tenant", "==", query.tenant))
            if query.status is not None:
                found = found.where(filter=FieldFilter("status", "==", query.status))
            down = firestore.Query.DESCENDING
            found = found.order_by("created_at", direction=down).order_by("id", direction=down)
            order = ("created_at", "id")
            if start is None and query.after is not None:
                start = {"created_at": query.after[0], "id": query.after[1]}
        else:
            found = (
                self._jobs.where(filter=FieldFilter("pending", "==", True))
                .where(filter=FieldFilter("updated_at", "<", query.updated_before))
                .order_by("updated_at")
                .order_by("id")
            )
            order = ("updated_at", "id")
        if start is not None:
            found = found.start_after(start)
        snaps = self._stream(found.limit(limit))
        rows: list[ScanRow] = []
        last: dict[str, Any] | None = None
        for snap in snaps:
            doc: dict[str, Any] = snap.to_dict() or {}
            last = {order[0]: doc[order[0]], order[1]: doc[order[1]]}
            rows.append(
                ScanRow(
                    str(doc["id"]), doc.get("doc"), doc.get("exp"), (doc[order[0]], doc[order[1]])
                )
            )
        # Resumed after the last document read, live or not; a short page is the end.
        return rows, last if len(snaps) == limit else None

    # ------------------------------------------------------------------ lookup keys
    def _claim_key(self, key: str, job_id: str, expires_at: float | None, now: float) -> str:
        fields: dict[str, Any] = {
            "key": key,
            "job_id": job_id,
            "exp": expires_at,
            "expires_at": _timestamp(expires_at),
        }
        found = self._create_if_absent(self._keys.document(doc_id(key)), fields, now)
        return job_id if isinstance(found, Written) else str((found.to_dict() or {})["job_id"])

    def _get_key(self, key: str) -> StoredKey | None:
        snap = self._snapshot(self._keys.document(doc_id(key)))
        if snap is None:
            return None
        row: dict[str, Any] = snap.to_dict() or {}
        return StoredKey(str(row["job_id"]), row.get("exp"))

    def _release_key(self, key: str, job_id: str) -> None:
        ref = self._keys.document(doc_id(key))
        for _ in range(_CONTENTION_ATTEMPTS):
            snap = self._snapshot(ref)
            if snap is None or (snap.to_dict() or {}).get("job_id") != job_id:
                return
            if self._delete_if_unchanged(ref, snap.update_time):
                return
            # The key changed hands between our read and our delete: look again.

    # ------------------------------------------------------------------ batches
    def _put_batch_if_absent(self, row: BatchRow, now: float) -> StoredBatch | None:
        fields = {
            "id": row.id,
            "tenant": row.tenant,
            "created_at": row.created_at,
            "exp": row.expires_at,
            "expires_at": _timestamp(row.expires_at),
            "doc": row.doc,
        }
        found = self._create_if_absent(self._batches.document(doc_id(row.id)), fields, now)
        if isinstance(found, Written):
            return None
        stored: dict[str, Any] = found.to_dict() or {}
        return StoredBatch(stored.get("doc"), stored.get("exp"))

    def _get_batch(self, batch_id: str) -> StoredBatch | None:
        snap = self._snapshot(self._batches.document(doc_id(batch_id)))
        if snap is None:
            return None
        row: dict[str, Any] = snap.to_dict() or {}
        return StoredBatch(row.get("doc"), row.get("exp"))

    # ------------------------------------------------------------------ budgets
    # One document per ImgGo key, with no `exp`: neither the sweep nor TTL removes it.
    def _get_budget(self, bucket: str) -> StoredBudget | None:
        snap = self._snapshot(self._budgets.document(doc_id(bucket)))
        if snap is None:
            return None
        row: dict[str, Any] = snap.to_dict() or {}
        stored = StoredBudget(str(row["doc"]), int(row["v"]))
        self._budget_seen[bucket] = (stored.version, snap.update_time)
        return stored

    def _put_budget_if_version(self, bucket: str, doc: str, expected: int) -> bool:
        ref = self._budgets.document(doc_id(bucket))
        fields: dict[str, Any] = {"v": expected + 1, "doc": doc}
        if expected == 0:
            try:
                self._rpc(lambda: ref.create(fields, **self._bounds))
            except gexc.AlreadyExists:
                return False
            return True
        # The write is conditional on the update time of the read that saw `expected`
        # (the last one, or a fresh one): a writer in between makes it fail, never
        # overwrite.
        seen = self._budget_seen.get(bucket)
        if seen is None or seen[0] != expected:
            snap = self._snapshot(ref)
            if snap is None or (snap.to_dict() or {}).get("v") != expected:
                return False
            seen = (expected, snap.update_time)
        return self._write_if_unchanged(ref, fields, seen[1]) is not None

    # ------------------------------------------------------------------ leases
    def _put_lease(self, key: str, expires_at: float) -> None:
        ref = self._manifests.document(doc_id(key))
        self._rpc(lambda: ref.set({"key": key, "exp": expires_at}, **self._bounds))

    def _expired_leases(self, now: float, limit: int) -> list[str]:
        expired = self._manifests.where(filter=FieldFilter("exp", "<=", now)).order_by("exp")
        return [str((snap.to_dict() or {})["key"]) for snap in self._stream(expired.limit(limit))]

    def _drop_lease(self, key: str) -> None:
        ref = self._manifests.document(doc_id(key))
        self._rpc(lambda: ref.delete(**self._bounds))

    # ------------------------------------------------------------------ housekeeping
    def _delete_expired(self, now: float) -> Sweep:
        """Sweep what expired by `now` (bounded per call), judged on `exp` alone, so an
        undecodable document goes too. The TTL policy on `expires_at` deletes the same
        documents eventually; this makes it prompt and testable. A document whose delete
        fails for a reason of its own is skipped (and logged); an unreachable database
        ends the sweep (UnavailableError)."""
        removed = skipped = 0
        for collection in (self._jobs, self._keys, self._batches):
            query = collection.where(filter=FieldFilter("exp", "<=", now)).order_by("exp")
            query = query.limit(_SWEEP_PAGE)
            swept, last = 0, None
            while swept < _SWEEP_MAX:
                # Resumed after the last document seen, so a skipped one is not met again.
                snaps = self._stream(query.start_after(last) if last is not None else query)
                for snap in snaps:
                    swept += 1
                    try:
                        # Conditional: a document re-created since we read it is not expired.
                        if self._delete_if_unchanged(snap.reference, snap.update_time):
                            removed += 1
                    except UnavailableError:
                        raise
                    except Exception as exc:  # this document's trouble, not the sweep's
                        skipped += 1
                        log.warning(
                            "sweep: could not delete %s/%s (%s); left for the next sweep",
                            collection.id,
                            snap.id,
                            type(exc).__name__,
                        )
                if len(snaps) < _SWEEP_PAGE:
                    break
                last = snaps[-1]
        return Sweep(removed=removed, skipped=skipped)

    def ping(self) -> None:
        """One cheap read (a document that never exists) proves the database answers."""
        self._snapshot(self._keys.document("ping"))

    def close(self) -> None:
        self._client.close()  # type: ignore[no-untyped-call]  # untyped in the library

    # ------------------------------------------------------------------ calls
    def _rpc(self, action: Callable[[], T]) -> T:
        """One call, made with `self._bounds`: ABORTED (too much contention on the
        document) is tried again with full jitter backoff - an aborted write did not
        happen, so repeating it is always safe - and a transient failure that outlived
        the call's own retries, or contention that outlived ours, is `store_unavailable`."""
        with unavailable_on_outage(BACKEND):
            for attempt in range(_CONTENTION_ATTEMPTS):
                try:
                    return action()
                except gexc.Aborted as exc:
                    if attempt == _CONTENTION_ATTEMPTS - 1:
                        raise unavailable(BACKEND, exc) from exc
                    time.sleep(random.uniform(0, min(1.0, 0.02 * 2**attempt)))  # noqa: S311
        raise AssertionError("unreachable")

    def _snapshot(self, ref: Any) -> Any:
        snap = self._rpc(lambda: ref.get(**self._bounds))
        return snap if snap.exists else None

    def _stream(self, query: Any) -> list[Any]:
        return self._rpc(lambda: list(query.stream(**self._bounds)))

    def _create_if_absent(self, ref: Any, fields: dict[str, Any], now: float) -> Written | Any:
        """Create the document unless a live one is there: Written, or the snapshot of
        the live document that is."""

        def create() -> Written | None:
            try:
                return Written(self._rpc(lambda: ref.create(fields, **self._bounds)).update_time)
            except gexc.AlreadyExists:
                return None

        return create_unless_live(
            create,
            lambda: self._snapshot(ref),
            lambda snap: (snap.to_dict() or {}).get("exp"),
            lambda snap: self._write_if_unchanged(ref, fields, snap.update_time),
            now=now,
            backend=BACKEND,
        )

    def _write_if_unchanged(
        self, ref: Any, fields: dict[str, Any], update_time: Any
    ) -> Written | None:
        """Overwrite every field of the document if its update time is still
        `update_time`; None when the document changed (or is gone). Every write here
        carries the whole field set: an update is a full replacement."""
        option = self._client.write_option(last_update_time=update_time)
        try:
            result = self._rpc(lambda: ref.update(fields, option=option, **self._bounds))
        except (gexc.FailedPrecondition, gexc.NotFound):
            return None
        return Written(result.update_time)

    def _delete_if_unchanged(self, ref: Any, update_time: Any) -> bool:
        option = self._client.write_option(last_update_time=update_time)
        try:
            self._rpc(lambda: ref.delete(option=option, **self._bounds))
        except (gexc.FailedPrecondition, gexc.NotFound):
            return False
        return True


__all__ = ["MAX_DOC_BYTES", "FirestoreJobStore", "doc_id", "parse_url"]
