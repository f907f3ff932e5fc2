"""The embedded JobStore: one SQLite file, safe for many threads and many processes.

The file handling (a connection per thread, WAL, group commit, schema versions) is
core.adapters.sqlite.database's. What is particular to jobs:
- Every write that depends on what is stored is a single conditional statement (insert
  on conflict, update where version = ?) judged by its rowcount, or several statements
  inside one write transaction, which holds the write lock from its start: a deferred
  transaction that upgrades from read to write can fail with SQLITE_BUSY without waiting.
- A job is one JSON document (what every store keeps) plus copies of the fields that
  are filtered or sorted on, so listings are index scans, never document parsing, and
  a row whose document cannot be decoded can still be listed past, swept and failed.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Sequence
from typing import Any

from core.adapters.clock import SystemClock
from core.adapters.sqlite.database import SqliteDatabase, path_from_url
from core.adapters.stores._common import check_limit, decode_cursor, encode_cursor
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

SCHEMA_VERSION = 1
"""Kept in PRAGMA user_version. A file written by newer code is refused, not misread."""

_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS jobs (
        id TEXT PRIMARY KEY,
        tenant TEXT NOT NULL,
        status TEXT NOT NULL,
        pending INTEGER NOT NULL,
        version INTEGER NOT NULL,
        created_at REAL NOT NULL,
        updated_at REAL NOT NULL,
        expires_at REAL,
        doc TEXT NOT NULL
    )""",
    # Newest-first listings walk these backwards; id settles created_at ties.
    "CREATE INDEX IF NOT EXISTS jobs_by_tenant ON jobs (tenant, created_at, id)",
    "CREATE INDEX IF NOT EXISTS jobs_by_tenant_status ON jobs (tenant, status, created_at, id)",
    # Partial: terminal jobs (the vast majority, eventually) cost the reconciler nothing.
    "CREATE INDEX IF NOT EXISTS jobs_pending ON jobs (updated_at, id) WHERE pending = 1",
    "CREATE INDEX IF NOT EXISTS jobs_expiry ON jobs (expires_at) WHERE expires_at IS NOT NULL",
    """CREATE TABLE IF NOT EXISTS keys (
        key TEXT PRIMARY KEY,
        job_id TEXT NOT NULL,
        expires_at REAL
    )""",
    "CREATE INDEX IF NOT EXISTS keys_expiry ON keys (expires_at) WHERE expires_at IS NOT NULL",
    """CREATE TABLE IF NOT EXISTS batches (
        id TEXT PRIMARY KEY,
        tenant TEXT NOT NULL,
        created_at REAL NOT NULL,
        expires_at REAL,
        doc TEXT NOT NULL
    )""",
    "CREATE INDEX IF NOT EXISTS batches_expiry ON batches (expires_at) "
    "WHERE expires_at IS NOT NULL",
)

_LIVE = "(expires_at IS NULL OR expires_at > :now)"  # is_live() in SQL

# An expired row counts as absent (as if already swept), so the upsert replaces it;
# a live one is left alone and the rowcount of 0 tells us we lost.
_CREATE_JOB = """
    INSERT INTO jobs (id, tenant, status, pending, version, created_at, updated_at,
                      expires_at, doc)
    VALUES (:id, :tenant, :status, :pending, :version, :created_at, :updated_at,
            :expires_at, :doc)
    ON CONFLICT (id) DO UPDATE SET
        tenant = excluded.tenant, status = excluded.status, pending = excluded.pending,
        version = excluded.version, created_at = excluded.created_at,
        updated_at = excluded.updated_at, expires_at = excluded.expires_at,
        doc = excluded.doc
    WHERE jobs.expires_at IS NOT NULL AND jobs.expires_at <= :now
    RETURNING version
"""
_CAS_JOB = f"""
    UPDATE jobs SET
        tenant = :tenant, status = :status, pending = :pending, version = :version,
        created_at = :created_at, updated_at = :updated_at, expires_at = :expires_at,
        doc = :doc
    WHERE id = :id AND version = :expected AND {_LIVE}
"""  # noqa: S608 - only constant fragments are interpolated
_GET_JOB = f"SELECT doc FROM jobs WHERE id = :id AND {_LIVE}"  # noqa: S608
_GET_JOB_ROW = f"""
    SELECT tenant, created_at, expires_at, version, doc FROM jobs WHERE id = :id AND {_LIVE}
"""  # noqa: S608
# Inside the write transaction that read the row: nobody else can have written it since.
_REPLACE_JOB = """
    UPDATE jobs SET
        tenant = :tenant, status = :status, pending = :pending, version = :version,
        created_at = :created_at, updated_at = :updated_at, expires_at = :expires_at,
        doc = :doc
    WHERE id = :id
"""

# The cursor bound is always present (+inf on the first page) so there is one plan per
# listing shape. The row-value comparison is a range on the index, not a filter.
_LIST_JOBS = f"""
    SELECT id, doc, created_at FROM jobs
    WHERE tenant = :tenant AND (created_at, id) < (:after_created, :after_id) AND {_LIVE}
    ORDER BY created_at DESC, id DESC LIMIT :limit
"""  # noqa: S608
_LIST_JOBS_BY_STATUS = f"""
    SELECT id, doc, created_at FROM jobs
    WHERE tenant = :tenant AND status = :status
      AND (created_at, id) < (:after_created, :after_id) AND {_LIVE}
    ORDER BY created_at DESC, id DESC LIMIT :limit
"""  # noqa: S608
_LIST_PENDING = f"""
    SELECT id, doc FROM jobs
    WHERE pending = 1 AND updated_at < :updated_before AND {_LIVE}
    ORDER BY updated_at, id LIMIT :limit
"""  # noqa: S608

# One statement that claims an absent or expired key and, either way, returns the holder:
# a live holder is "updated" to itself. One round trip instead of a transaction of three.
_CLAIM_KEY = """
    INSERT INTO keys (key, job_id, expires_at) VALUES (:key, :job_id, :expires_at)
    ON CONFLICT (key) DO UPDATE SET
        job_id = CASE WHEN keys.expires_at IS NOT NULL AND keys.expires_at <= :now
                      THEN excluded.job_id ELSE keys.job_id END,
        expires_at = CASE WHEN keys.expires_at IS NOT NULL AND keys.expires_at <= :now
                          THEN excluded.expires_at ELSE keys.expires_at END
    RETURNING job_id
"""
_LOOKUP_KEY = f"SELECT job_id FROM keys WHERE key = :key AND {_LIVE}"  # noqa: S608

_CREATE_BATCH = """
    INSERT INTO batches (id, tenant, created_at, expires_at, doc)
    VALUES (:id, :tenant, :created_at, :expires_at, :doc)
    ON CONFLICT (id) DO UPDATE SET
        tenant = excluded.tenant, created_at = excluded.created_at,
        expires_at = excluded.expires_at, doc = excluded.doc
    WHERE batches.expires_at IS NOT NULL AND batches.expires_at <= :now
"""
_GET_BATCH = f"SELECT doc FROM batches WHERE id = :id AND {_LIVE}"  # noqa: S608

_DELETE_EXPIRED = tuple(
    f"DELETE FROM {table} WHERE expires_at IS NOT NULL AND expires_at <= :now"  # noqa: S608
    for table in ("jobs", "keys", "batches")
)


class SqliteJobStore:
    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        clock: Clock | None = None,
        busy_timeout_s: float = 5.0,
    ) -> None:
        # The clock judges expiry for reads that take no `now` (get, list_*).
        self._clock: Clock = clock or SystemClock()
        self._db = SqliteDatabase(
            path,
            schema=_SCHEMA,
            schema_version=SCHEMA_VERSION,
            what="store",
            busy_timeout_s=busy_timeout_s,
        )
        self.path = self._db.path

    @classmethod
    def from_url(cls, url: str, *, clock: Clock | None = None) -> SqliteJobStore:
        return cls(path_from_url(url), clock=clock)

    # ------------------------------------------------------------------ jobs
    def create(self, job: Job) -> tuple[Job, bool]:
        stored = job.replace(version=1)
        params = _job_params(stored, now=self._clock.now())
        # The common case (we create it) is one statement; only a lost race reads after.
        if self._write_returning(_CREATE_JOB, params):
            return load_job(job.id, params["doc"]), True

        def create_or_read(conn: sqlite3.Connection) -> str | None:
            if conn.execute(_CREATE_JOB, params).fetchall():
                return None  # it expired meanwhile: ours now
            # Same transaction: the live job that beat us cannot vanish before we read it.
            return str(conn.execute(_GET_JOB, params).fetchone()[0])

        existing = self._db.write(create_or_read)
        doc = existing if existing is not None else params["doc"]
        return load_job(job.id, doc), existing is None

    def create_many(self, jobs: Sequence[Job]) -> list[tuple[Job, bool]]:
        now = self._clock.now()
        all_params = [_job_params(job.replace(version=1), now=now) for job in jobs]

        def create_all(conn: sqlite3.Connection) -> list[str | None]:
            found: list[str | None] = []
            for params in all_params:
                if conn.execute(_CREATE_JOB, params).fetchall():
                    found.append(None)
                else:
                    found.append(str(conn.execute(_GET_JOB, params).fetchone()[0]))
            return found

        existing = self._db.write(create_all)
        return [
            (load_job(params["id"], doc if doc is not None else params["doc"]), doc is None)
            for params, doc in zip(all_params, existing, strict=True)
        ]

    def get(self, job_id: str) -> Job | None:
        row = self._conn().execute(_GET_JOB, {"id": job_id, "now": self._clock.now()}).fetchone()
        return None if row is None else load_job(job_id, row[0])

    def compare_and_set(self, job: Job) -> Job | None:
        written = job.replace(version=job.version + 1)
        params = _job_params(written, now=self._clock.now())
        params["expected"] = job.version
        if self._write(_CAS_JOB, params) != 1:
            return None
        return load_job(job.id, params["doc"])

    def fail_unreadable(self, job_id: str, *, now: float) -> Job | None:
        def replace(conn: sqlite3.Connection) -> str | None:
            # One write transaction: it holds the write lock from its start, so the row
            # read here is still the row replaced below.
            row = conn.execute(_GET_JOB_ROW, {"id": job_id, "now": now}).fetchone()
            if row is None or is_readable_job(job_id, row[4]):
                return None
            tenant, created_at, expires_at, version, _ = row
            failed = unreadable_stand_in(
                job_id,
                tenant=tenant,
                created_at=created_at,
                expires_at=expires_at,
                version=version,
                now=now,
            )
            params = _job_params(failed, now=now)
            conn.execute(_REPLACE_JOB, params)
            return str(params["doc"])

        doc = self._db.write(replace)
        return None if doc is None else load_job(job_id, doc)

    def list_jobs(
        self,
        tenant: str,
        *,
        status: JobStatus | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> Page:
        check_limit(limit)
        after_created, after_id = (
            decode_cursor(cursor) if cursor is not None else (float("inf"), "")
        )
        params: dict[str, Any] = {
            "tenant": tenant,
            "after_created": after_created,
            "after_id": after_id,
            "now": self._clock.now(),
            "limit": limit + 1,  # one more than asked tells whether another page exists
        }
        if status is None:
            sql = _LIST_JOBS
        else:
            sql, params["status"] = _LIST_JOBS_BY_STATUS, status.value
        rows = self._conn().execute(sql, params).fetchall()
        page = rows[:limit]
        # From the row's own columns: the cursor may stop on a row whose doc is unreadable.
        next_cursor = encode_cursor((page[-1][2], page[-1][0])) if len(rows) > limit else None
        return page_of(((row[0], row[1]) for row in page), next_cursor)

    def list_pending(self, *, updated_before: float, limit: int) -> Page:
        check_limit(limit)
        params = {"updated_before": updated_before, "now": self._clock.now(), "limit": limit}
        return page_of((row[0], row[1]) for row in self._conn().execute(_LIST_PENDING, params))

    # ------------------------------------------------------------------ lookup keys
    def claim_key(self, key: str, job_id: str, *, expires_at: float | None, now: float) -> str:
        params = {"key": key, "job_id": job_id, "expires_at": expires_at, "now": now}
        return str(self._write_returning(_CLAIM_KEY, params)[0][0])

    def claim_many(
        self, claims: Sequence[tuple[str, str, float | None]], *, now: float
    ) -> list[str]:
        rows = [
            {"key": key, "job_id": job_id, "expires_at": expires_at, "now": now}
            for key, job_id, expires_at in claims
        ]
        return self._db.write(
            lambda conn: [str(conn.execute(_CLAIM_KEY, row).fetchall()[0][0]) for row in rows]
        )

    def lookup_key(self, key: str, *, now: float) -> str | None:
        row = self._conn().execute(_LOOKUP_KEY, {"key": key, "now": now}).fetchone()
        return None if row is None else str(row[0])

    def release_key(self, key: str, job_id: str) -> None:
        self._write(
            "DELETE FROM keys WHERE key = :key AND job_id = :job_id", {"key": key, "job_id": job_id}
        )

    # ------------------------------------------------------------------ batches
    def create_batch(self, batch: Batch) -> tuple[Batch, bool]:
        doc = dump_batch(batch)
        params = {
            "id": batch.id,
            "tenant": batch.tenant,
            "created_at": batch.created_at,
            "expires_at": batch.expires_at,
            "doc": doc,
            "now": self._clock.now(),
        }

        def create(conn: sqlite3.Connection) -> str | None:
            if conn.execute(_CREATE_BATCH, params).rowcount == 1:
                return None
            return str(conn.execute(_GET_BATCH, params).fetchone()[0])

        existing = self._db.write(create)
        return load_batch(batch.id, existing if existing is not None else doc), existing is None

    def get_batch(self, batch_id: str) -> Batch | None:
        row = self._conn().execute(_GET_BATCH, {"id": batch_id, "now": self._clock.now()})
        found = row.fetchone()
        return None if found is None else load_batch(batch_id, found[0])

    # ------------------------------------------------------------------ housekeeping
    def delete_expired(self, *, now: float) -> Sweep:
        # On the expires_at column alone, never the document: unreadable rows go too. One
        # statement per table, all or nothing: there is no row it could skip.
        removed = self._db.write(
            lambda conn: sum(conn.execute(sql, {"now": now}).rowcount for sql in _DELETE_EXPIRED)
        )
        return Sweep(removed=removed)

    def ping(self) -> None:
        self._conn().execute("SELECT 1").fetchone()

    def close(self) -> None:
        """Close every thread's connection; the store is unusable afterwards."""
        self._db.close()

    # ------------------------------------------------------------------ plumbing
    def _conn(self) -> sqlite3.Connection:
        return self._db.connection()

    def _write_returning(self, sql: str, params: dict[str, Any]) -> list[Any]:
        """One write with RETURNING (all rows read, so the statement ends before commit)."""
        return self._db.write(lambda conn: conn.execute(sql, params).fetchall(), statement=True)

    def _write(self, sql: str, params: dict[str, Any]) -> int:
        """One write statement; its rowcount."""
        return self._db.write(lambda conn: int(conn.execute(sql, params).rowcount), statement=True)


def _job_params(job: Job, *, now: float) -> dict[str, Any]:
    return {
        "id": job.id,
        "tenant": job.tenant,
        "status": job.status.value,
        "pending": 0 if job.terminal else 1,
        "version": job.version,
        "created_at": job.created_at,
        "updated_at": job.updated_at,
        "expires_at": job.expires_at,
        "doc": dump_job(job),
        "now": now,
    }


__all__ = ["SCHEMA_VERSION", "SqliteJobStore"]
