"""The JobStore on Google Cloud Firestore (native mode): `firestore://collection-prefix`.

Why it looks the way it does:
- Three collections, `{prefix}_jobs`, `{prefix}_keys`, `{prefix}_batches`, named by the
  prefix so one database can hold several deployments (and every test its own store).
- A job is the same JSON document every store keeps (`doc`, exact floats, any manifest
  shape) plus copies of the fields queries filter and sort on. `doc` is exempt from
  indexing (firestore.indexes.json): it is large and never queried.
- Create-if-absent is Firestore's own `create()` (the write fails with ALREADY_EXISTS).
  Every other conditional write is a read followed by a write with an update-time
  precondition: if anyone wrote the document in between, the write fails with
  FAILED_PRECONDITION and nothing changes. No locks are held, so racing writers never
  wait on each other; the loser re-reads. ABORTED (contention) is retried with backoff.
- The store remembers the (version, update time) it last read or wrote for each recent
  job, so a compare-and-set right after a create or a get skips its own read: the
  precondition alone decides. Every write changes a job's version, so "the document
  changed since then" and "the version is no longer yours" are the same answer.
- Expiry is judged on `exp`, a float, with the same rule as every other store
  (`is_live`). `expires_at` holds the same instant as a Timestamp for a Firestore TTL
  policy, which deletes expired documents within about a day; until then they are
  hidden, and `delete_expired` can sweep them sooner.
- Listings are composite-index queries (tenant [+ status], created_at desc, id desc)
  resumed after the cursor's (created_at, id); expired rows are skipped client-side, so
  a page is filled from as many index reads as it takes. Pages are cut and cursors made
  on those indexed fields, never on the decoded `doc`: a document that cannot be decoded
  is stepped over and named, and the sweep (on `exp`) removes it like any other.

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
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar
from urllib.parse import parse_qs, urlsplit

from google.api_core import exceptions as gexc
from google.cloud import firestore
from google.cloud.firestore_v1.base_query import FieldFilter

from core.adapters.clock import SystemClock
from core.adapters.stores._common import check_limit, decode_cursor, encode_cursor, is_live
from core.adapters.stores._records import (
    dump_batch,
    dump_job,
    is_readable_job,
    load_batch,
    load_job,
    page_of,
    unreadable_stand_in,
)
from core.domain.errors import UnavailableError
from core.domain.job import Job, JobStatus
from core.ports import Batch, Clock, Page, Sweep

log = logging.getLogger("imggo.store.firestore")

T = TypeVar("T")

JOBS, KEYS, BATCHES = "jobs", "keys", "batches"
_PREFIX_RE = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,99}")
# Document ids used as they are; anything else (a '/', '__reserved__', '.', very long)
# is hashed. '~' is outside this set, so a hashed id never equals a plain one.
_PLAIN_ID_RE = re.compile(r"[A-Za-z0-9_.:=+@-]{1,256}")
_SWEEP_PAGE = 300
_SWEEP_MAX = 3000  # per collection and call: reconcile stays bounded; TTL does the rest
_CONTENTION_ATTEMPTS = 8
_SEEN_MAX = 4096  # jobs whose last update time is remembered (LRU)

# Gone or overloaded for a moment: the caller (a queue, a client) should try again later.
_TRANSIENT = (
    gexc.ServiceUnavailable,
    gexc.DeadlineExceeded,
    gexc.InternalServerError,
    gexc.ResourceExhausted,
    gexc.Aborted,
)


@dataclass(frozen=True, slots=True)
class _Seen:
    """A job document as this store last saw it."""

    version: int
    exp: float | None
    update_time: Any


def doc_id(raw: str) -> str:
    if _PLAIN_ID_RE.fullmatch(raw) and raw not in (".", "..") and not raw.startswith("__"):
        return raw
    return "~" + hashlib.sha256(raw.encode()).hexdigest()


def _timestamp(seconds: float | None) -> datetime | None:
    """The Timestamp a TTL policy reads; None (null) means "never expires" to it too."""
    return None if seconds is None else datetime.fromtimestamp(seconds, tz=UTC)


def _retry_contention(action: Callable[[], T]) -> T:
    """Run `action`, again after ABORTED (too much contention on the document) with full
    jitter backoff. An aborted write did not happen, so repeating it is always safe."""
    for attempt in range(_CONTENTION_ATTEMPTS):
        try:
            return action()
        except gexc.Aborted:
            if attempt == _CONTENTION_ATTEMPTS - 1:
                raise
            time.sleep(random.uniform(0, min(1.0, 0.02 * 2**attempt)))  # noqa: S311 - jitter
    raise AssertionError("unreachable")


def _unavailable(exc: Exception) -> UnavailableError:
    return UnavailableError(
        "the job store (Firestore) is not reachable right now; try again shortly",
        code="store_unavailable",
        details={"reason": type(exc).__name__},
    )


def parse_url(url: str) -> tuple[str, str | None, str | None]:
    """`firestore://prefix[?project=P&database=D]` -> (prefix, project, database)."""
    parts = urlsplit(url)
    if parts.scheme != "firestore":
        raise ValueError(f"not a firestore URL: {parts.scheme}://")
    prefix = parts.netloc
    if parts.path not in ("", "/") or parts.fragment:
        raise ValueError("a firestore URL is firestore://collection-prefix[?project=&database=]")
    if not _PREFIX_RE.fullmatch(prefix):
        raise ValueError(
            "the firestore collection prefix must start with a letter and hold only "
            "letters, digits, '_' and '-' (at most 100)"
        )
    query = parse_qs(parts.query, keep_blank_values=False)
    unknown = set(query) - {"project", "database"}
    if unknown:
        raise ValueError(f"unknown firestore URL option(s): {', '.join(sorted(unknown))}")
    project = query.get("project", [None])[0]
    database = query.get("database", [None])[0]
    return prefix, project, database


class FirestoreJobStore:
    def __init__(
        self,
        prefix: str,
        *,
        project: str | None = None,
        database: str | None = None,
        clock: Clock | None = None,
        client: firestore.Client | None = None,
    ) -> None:
        if not _PREFIX_RE.fullmatch(prefix):
            raise ValueError(f"invalid firestore collection prefix {prefix!r}")
        self.prefix = prefix
        # The clock judges expiry for reads that take no `now` (get, list_*).
        self._clock: Clock = clock or SystemClock()
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
        self._jobs = client.collection(f"{prefix}_{JOBS}")
        self._keys = client.collection(f"{prefix}_{KEYS}")
        self._batches = client.collection(f"{prefix}_{BATCHES}")
        self._seen: OrderedDict[str, _Seen] = OrderedDict()
        self._seen_lock = threading.Lock()

    @classmethod
    def from_url(cls, url: str, *, clock: Clock | None = None) -> FirestoreJobStore:
        prefix, project, database = parse_url(url)
        return cls(prefix, project=project, database=database, clock=clock)

    # ------------------------------------------------------------------ jobs
    def create(self, job: Job) -> tuple[Job, bool]:
        stored = job.replace(version=1)
        fields = _job_fields(stored)
        ref = self._jobs.document(doc_id(job.id))
        existing, created, update_time = self._create_if_absent(ref, fields, self._clock.now())
        self._remember(job.id, existing, update_time)
        return load_job(job.id, existing.get("doc")), created

    def get(self, job_id: str) -> Job | None:
        snap = self._snapshot(self._jobs.document(doc_id(job_id)))
        if snap is None:
            return None
        row: dict[str, Any] = snap.to_dict() or {}
        self._remember(job_id, row, snap.update_time)
        if not is_live(row.get("exp"), self._clock.now()):
            return None
        return load_job(job_id, row.get("doc"))

    def compare_and_set(self, job: Job) -> Job | None:
        ref = self._jobs.document(doc_id(job.id))
        seen = self._recall(job.id)
        if seen is None or seen.version != job.version:
            snap = self._snapshot(ref)
            if snap is None:
                return None
            row = snap.to_dict() or {}
            seen = _Seen(row.get("version", 0), row.get("exp"), snap.update_time)
        if seen.version != job.version or not is_live(seen.exp, self._clock.now()):
            return None
        written = job.replace(version=job.version + 1)
        fields = _job_fields(written)
        update_time = self._write_if_unchanged(ref, fields, seen.update_time)
        if update_time is None:
            self._forget(job.id)
            return None  # the document changed since it was read: not this version any more
        self._remember(job.id, fields, update_time)
        return load_job(job.id, fields["doc"])  # a fresh copy: the caller may mutate `job`

    def fail_unreadable(self, job_id: str, *, now: float) -> Job | None:
        ref = self._jobs.document(doc_id(job_id))
        snap = self._snapshot(ref)
        if snap is None:
            return None
        row: dict[str, Any] = snap.to_dict() or {}
        if not is_live(row.get("exp"), now) or is_readable_job(job_id, row.get("doc")):
            return None
        failed = unreadable_stand_in(
            job_id,
            tenant=row.get("tenant"),
            created_at=row.get("created_at"),
            expires_at=row.get("exp"),
            version=row.get("version"),
            now=now,
        )
        fields = _job_fields(failed)
        # Preconditioned on the update time just read: a good write since wins.
        update_time = self._write_if_unchanged(ref, fields, snap.update_time)
        if update_time is None:
            self._forget(job_id)
            return None
        self._remember(job_id, fields, update_time)
        return load_job(job_id, fields["doc"])

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
        query = self._jobs.where(filter=FieldFilter("tenant", "==", tenant))
        if status is not None:
            query = query.where(filter=FieldFilter("status", "==", status.value))
        query = query.order_by("created_at", direction=firestore.Query.DESCENDING).order_by(
            "id", direction=firestore.Query.DESCENDING
        )
        start = {"created_at": after[0], "id": after[1]} if after is not None else None
        rows = self._live_rows(query, ("created_at", "id"), start, want=limit + 1)
        page = rows[:limit]
        more = len(rows) > limit
        next_cursor = encode_cursor((page[-1]["created_at"], page[-1]["id"])) if more else None
        return page_of(((str(row["id"]), row.get("doc")) for row in page), next_cursor)

    def list_pending(self, *, updated_before: float, limit: int) -> Page:
        check_limit(limit)
        query = (
            self._jobs.where(filter=FieldFilter("pending", "==", True))
            .where(filter=FieldFilter("updated_at", "<", updated_before))
            .order_by("updated_at")
            .order_by("id")
        )
        rows = self._live_rows(query, ("updated_at", "id"), None, want=limit)
        return page_of((str(row["id"]), row.get("doc")) for row in rows)

    # ------------------------------------------------------------------ lookup keys
    def claim_key(self, key: str, job_id: str, *, expires_at: float | None, now: float) -> str:
        fields: dict[str, Any] = {
            "key": key,
            "job_id": job_id,
            "exp": expires_at,
            "expires_at": _timestamp(expires_at),
        }
        existing, _, _ = self._create_if_absent(self._keys.document(doc_id(key)), fields, now)
        return str(existing["job_id"])

    def lookup_key(self, key: str, *, now: float) -> str | None:
        row = self._read(self._keys.document(doc_id(key)))
        if row is None or not is_live(row.get("exp"), now):
            return None
        return str(row["job_id"])

    def release_key(self, key: str, job_id: str) -> None:
        ref = self._keys.document(doc_id(key))
        for _ in range(_CONTENTION_ATTEMPTS):
            try:
                snap = ref.get()
            except _TRANSIENT as exc:
                raise _unavailable(exc) from exc
            if not snap.exists or (snap.to_dict() or {}).get("job_id") != job_id:
                return
            if self._delete_if_unchanged(ref, snap.update_time):
                return
            # The key changed hands between our read and our delete: look again.

    # ------------------------------------------------------------------ batches
    def create_batch(self, batch: Batch) -> tuple[Batch, bool]:
        fields = {
            "id": batch.id,
            "tenant": batch.tenant,
            "created_at": batch.created_at,
            "exp": batch.expires_at,
            "expires_at": _timestamp(batch.expires_at),
            "doc": dump_batch(batch),
        }
        ref = self._batches.document(doc_id(batch.id))
        existing, created, _ = self._create_if_absent(ref, fields, self._clock.now())
        return load_batch(batch.id, existing.get("doc")), created

    def get_batch(self, batch_id: str) -> Batch | None:
        row = self._read(self._batches.document(doc_id(batch_id)))
        if row is None or not is_live(row.get("exp"), self._clock.now()):
            return None
        return load_batch(batch_id, row.get("doc"))

    # ------------------------------------------------------------------ housekeeping
    def delete_expired(self, *, now: float) -> Sweep:
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
                page_query = query.start_after(last) if last is not None else query
                try:
                    snaps = list(page_query.stream())
                except _TRANSIENT as exc:
                    raise _unavailable(exc) from exc
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
        self._read(self._keys.document("ping"))

    def close(self) -> None:
        self._client.close()  # type: ignore[no-untyped-call]  # untyped in the library

    # ------------------------------------------------------------------ internals
    def _snapshot(self, ref: Any) -> Any:
        try:
            snap = ref.get()
        except _TRANSIENT as exc:
            raise _unavailable(exc) from exc
        return snap if snap.exists else None

    def _read(self, ref: Any) -> dict[str, Any] | None:
        snap = self._snapshot(ref)
        if snap is None:
            return None
        row: dict[str, Any] = snap.to_dict() or {}
        return row

    def _remember(self, job_id: str, row: dict[str, Any], update_time: Any) -> None:
        seen = _Seen(row.get("version", 0), row.get("exp"), update_time)
        with self._seen_lock:
            self._seen[job_id] = seen
            self._seen.move_to_end(job_id)
            while len(self._seen) > _SEEN_MAX:
                self._seen.popitem(last=False)

    def _recall(self, job_id: str) -> _Seen | None:
        with self._seen_lock:
            return self._seen.get(job_id)

    def _forget(self, job_id: str) -> None:
        with self._seen_lock:
            self._seen.pop(job_id, None)

    def _create_if_absent(
        self, ref: Any, fields: dict[str, Any], now: float
    ) -> tuple[dict[str, Any], bool, Any]:
        """Create the document unless a live one is there. An expired one counts as
        absent (as if already swept) and is replaced, conditionally on nobody having
        written it since we read it. Returns (the stored fields, created?, their update
        time)."""
        for _ in range(_CONTENTION_ATTEMPTS * 4):
            try:
                result = _retry_contention(lambda: ref.create(fields))
                return fields, True, result.update_time
            except gexc.AlreadyExists:
                pass
            except _TRANSIENT as exc:
                raise _unavailable(exc) from exc
            try:
                snap = ref.get()
            except _TRANSIENT as exc:
                raise _unavailable(exc) from exc
            if not snap.exists:
                continue  # swept between our create and our read: create again
            existing: dict[str, Any] = snap.to_dict() or {}
            if is_live(existing.get("exp"), now):
                return existing, False, snap.update_time
            update_time = self._write_if_unchanged(ref, fields, snap.update_time)
            if update_time is not None:
                return fields, True, update_time
        raise UnavailableError("the store is too contended right now; try again")

    def _write_if_unchanged(self, ref: Any, fields: dict[str, Any], update_time: Any) -> Any:
        """Overwrite every field of the document if its update time is still
        `update_time`; the new update time, or None when the document changed (or is
        gone). Every write here carries the whole field set: an update is a full
        replacement."""
        option = self._client.write_option(last_update_time=update_time)
        try:
            result = _retry_contention(lambda: ref.update(fields, option=option))
        except (gexc.FailedPrecondition, gexc.NotFound):
            return None
        except _TRANSIENT as exc:
            raise _unavailable(exc) from exc
        return result.update_time

    def _delete_if_unchanged(self, ref: Any, update_time: Any) -> bool:
        option = self._client.write_option(last_update_time=update_time)
        try:
            _retry_contention(lambda: ref.delete(option=option))
        except (gexc.FailedPrecondition, gexc.NotFound):
            return False
        except _TRANSIENT as exc:
            raise _unavailable(exc) from exc
        return True

    def _live_rows(
        self,
        query: Any,
        order: tuple[str, str],
        start: dict[str, Any] | None,
        *,
        want: int,
    ) -> list[dict[str, Any]]:
        """Up to `want` live rows of `query` in its order, resumed after `start`. Reads
        on past expired rows (hidden until swept) so a page is still full."""
        now = self._clock.now()
        rows: list[dict[str, Any]] = []
        while len(rows) < want:
            asked = want - len(rows)
            page_query = query.start_after(start) if start is not None else query
            try:
                snaps = list(page_query.limit(asked).stream())
            except _TRANSIENT as exc:
                raise _unavailable(exc) from exc
            for row in _dicts(snaps):
                if is_live(row.get("exp"), now):
                    rows.append(row)
                start = {order[0]: row[order[0]], order[1]: row[order[1]]}
            if len(snaps) < asked:
                break  # the query has nothing more
        return rows


def _dicts(snaps: list[Any]) -> Iterator[dict[str, Any]]:
    for snap in snaps:
        row: dict[str, Any] | None = snap.to_dict()
        if row is not None:
            yield row


def _job_fields(job: Job) -> dict[str, Any]:
    return {
        "id": job.id,
        "tenant": job.tenant,
        "status": job.status.value,
        "pending": not job.terminal,
        "version": job.version,
        "created_at": job.created_at,
        "updated_at": job.updated_at,
        "exp": job.expires_at,
        "expires_at": _timestamp(job.expires_at),
        "doc": dump_job(job),
    }


__all__ = ["FirestoreJobStore", "doc_id", "parse_url"]
