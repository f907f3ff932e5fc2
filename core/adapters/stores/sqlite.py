"""The embedded JobStore: one SQLite file, safe for many threads and many processes.

The file handling (a connection per thread, WAL, group commit, schema versions) is
core.adapters.sqlite.database's; what every store decides is core.adapters.stores._base's.
What is particular to jobs in SQLite:
- Every write that depends on what is stored is a single conditional statement (insert
  on conflict, update where version = ?) judged by its rowcount, or several statements
  inside one write transaction, which holds the write lock from its start: a deferred
  transaction that upgrades from read to write can fail with SQLITE_BUSY without waiting.
- A job is one JSON document (what every store keeps) plus copies of the fields that
  are filtered or sorted on, so listings are index scans, never document parsing, and
  a row whose document cannot be decoded can still be listed past, swept and failed.
- A TEXT value holds up to a billion bytes, far beyond any job the HTTP surface takes:
  every manifest is kept inline (max_doc_bytes None), so no row ever names a blob.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Sequence
from typing import Any

from core.adapters.sqlite.database import SqliteDatabase, path_from_url
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
from core.domain.job import Job
from core.ports import BlobStore, Clock, StoredBudget, Sweep

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
    # One row per ImgGo key (core.domain.rate_budget); added without a schema version
    # bump: older code never reads it, and IF NOT EXISTS adds it to older files.
    """CREATE TABLE IF NOT EXISTS budgets (
        bucket TEXT PRIMARY KEY,
        version INTEGER NOT NULL,
        doc TEXT NOT NULL
    )""",
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
_JOB_COLUMNS = "id, doc, expires_at, version, tenant, created_at"  # a StoredJob's order
_GET_JOB = f"SELECT {_JOB_COLUMNS} FROM jobs WHERE id = :id"  # noqa: S608
_GET_LIVE_JOB = f"SELECT {_JOB_COLUMNS} FROM jobs WHERE id = :id AND {_LIVE}"  # noqa: S608
# Only over the very row read: any write since has changed its version or its document.
_REPLACE_JOB = f"""
    UPDATE jobs SET
        tenant = :tenant, status = :status, pending = :pending, version = :version,
        created_at = :created_at, updated_at = :updated_at, expires_at = :expires_at,
        doc = :doc
    WHERE id = :id AND version IS :old_version AND doc IS :old_doc AND {_LIVE}
"""  # noqa: S608

# The cursor bound is always present (+inf on the first page) so there is one plan per
# listing shape. The row-value comparison is a range on the index, not a filter.
_LIST_JOBS = f"""
    SELECT id, doc, expires_at, created_at FROM jobs
    WHERE tenant = :tenant AND (created_at, id) < (:after_created, :after_id) AND {_LIVE}
    ORDER BY created_at DESC, id DESC LIMIT :limit
"""  # noqa: S608
_LIST_JOBS_BY_STATUS = f"""
    SELECT id, doc, expires_at, created_at FROM jobs
    WHERE tenant = :tenant AND status = :status
      AND (created_at, id) < (:after_created, :after_id) AND {_LIVE}
    ORDER BY created_at DESC, id DESC LIMIT :limit
"""  # noqa: S608
_LIST_PENDING = f"""
    SELECT id, doc, expires_at, updated_at FROM jobs
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
_GET_KEY = "SELECT job_id, expires_at FROM keys WHERE key = :key"

_CREATE_BATCH = """
    INSERT INTO batches (id, tenant, created_at, expires_at, doc)
    VALUES (:id, :tenant, :created_at, :expires_at, :doc)
    ON CONFLICT (id) DO UPDATE SET
        tenant = excluded.tenant, created_at = excluded.created_at,
        expires_at = excluded.expires_at, doc = excluded.doc
    WHERE batches.expires_at IS NOT NULL AND batches.expires_at <= :now
"""
_GET_BATCH = "SELECT doc, expires_at FROM batches WHERE id = :id"
_GET_LIVE_BATCH = f"SELECT doc, expires_at FROM batches WHERE id = :id AND {_LIVE}"  # noqa: S608

_DELETE_EXPIRED = tuple(
    f"DELETE FROM {table} WHERE expires_at IS NOT NULL AND expires_at <= :now"  # noqa: S608
    for table in ("jobs", "keys", "batches")
)


class SqliteJobStore(BaseJobStore):
    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        clock: Clock | None = None,
        busy_timeout_s: float = 5.0,
    ) -> None:
        super().__init__(clock=clock)
        self._db = SqliteDatabase(
            path,
            schema=_SCHEMA,
            schema_version=SCHEMA_VERSION,
            what="store",
            busy_timeout_s=busy_timeout_s,
        )
        self.path = self._db.path

    @classmethod
    def from_url(
        cls, url: str, *, clock: Clock | None = None, blobs: BlobStore | None = None
    ) -> SqliteJobStore:
        # `blobs` is not needed: SQLite has no item limit a manifest meets (kept inline).
        return cls(path_from_url(url), clock=clock)

    # ------------------------------------------------------------------ bulk
    def create_many(self, jobs: Sequence[Job]) -> list[tuple[Job, bool]]:
        """`create` for each, in one write transaction."""
        now = self._clock.now()
        encoded = [self._overflow.encode(job.replace(version=1)) for job in jobs]
        all_params = [_job_params(JobRow.of(e.job, e.doc), now) for e in encoded]

        def create_all(conn: sqlite3.Connection) -> list[str | None]:
            found: list[str | None] = []
            for params in all_params:
                if conn.execute(_CREATE_JOB, params).fetchall():
                    found.append(None)
                else:
                    found.append(str(conn.execute(_GET_LIVE_JOB, params).fetchone()[1]))
            return found

        existing = self._db.write(create_all)
        return [
            (e.read_back(), True) if doc is None else (self._decode(e.job.id, doc)[0], False)
            for e, doc in zip(encoded, existing, strict=True)
        ]

    def claim_many(
        self, claims: Sequence[tuple[str, str, float | None]], *, now: float
    ) -> list[str]:
        """`claim_key` for each, in one write transaction."""
        rows = [
            {"key": key, "job_id": job_id, "expires_at": expires_at, "now": now}
            for key, job_id, expires_at in claims
        ]
        return self._db.write(
            lambda conn: [str(conn.execute(_CLAIM_KEY, row).fetchall()[0][0]) for row in rows]
        )

    # ------------------------------------------------------------------ jobs
    def _get_job(self, job_id: str) -> StoredJob | None:
        row = self._conn().execute(_GET_JOB, {"id": job_id}).fetchone()
        return None if row is None else StoredJob(*row)

    def _put_job_if_absent(self, row: JobRow, now: float) -> Written | StoredJob:
        params = _job_params(row, now)
        # The common case (we create it) is one statement; only a lost race reads after.
        if self._write_returning(_CREATE_JOB, params):
            return Written()

        def create_or_read(conn: sqlite3.Connection) -> StoredJob | None:
            if conn.execute(_CREATE_JOB, params).fetchall():
                return None  # it expired meanwhile: ours now
            # Same transaction: the live job that beat us cannot vanish before we read it.
            return StoredJob(*conn.execute(_GET_LIVE_JOB, params).fetchone())

        found = self._db.write(create_or_read)
        return Written() if found is None else found

    def _put_job_if_version(
        self, row: JobRow, *, expected: int, seen: Seen | None, now: float
    ) -> Written | None:
        params = _job_params(row, now)
        params["expected"] = expected
        return Written() if self._write(_CAS_JOB, params) == 1 else None

    def _replace_job(self, old: StoredJob, row: JobRow, now: float) -> Written | None:
        params = _job_params(row, now)
        params["old_version"], params["old_doc"] = old.version, old.doc
        return Written() if self._write(_REPLACE_JOB, params) == 1 else None

    def _query_page(
        self, query: Query, resume: object | None, limit: int, now: float
    ) -> tuple[Sequence[ScanRow], object | None]:
        # Expiry is judged in SQL (`now`), so every row returned is live: one read is
        # always enough, and there is nothing to resume.
        params: dict[str, Any] = {"now": now, "limit": limit}
        if isinstance(query, Listing):
            # The bound is always present (+inf on the first page): one plan per shape.
            params["after_created"], params["after_id"] = query.after or (float("inf"), "")
            params["tenant"] = query.tenant
            if query.status is None:
                sql = _LIST_JOBS
            else:
                sql, params["status"] = _LIST_JOBS_BY_STATUS, query.status
        else:
            sql, params["updated_before"] = _LIST_PENDING, query.updated_before
        rows = self._conn().execute(sql, params).fetchall()
        return [ScanRow(job_id, doc, exp, (at, job_id)) for job_id, doc, exp, at in rows], None

    # ------------------------------------------------------------------ lookup keys
    def _claim_key(self, key: str, job_id: str, expires_at: float | None, now: float) -> str:
        params = {"key": key, "job_id": job_id, "expires_at": expires_at, "now": now}
        return str(self._write_returning(_CLAIM_KEY, params)[0][0])

    def _get_key(self, key: str) -> StoredKey | None:
        row = self._conn().execute(_GET_KEY, {"key": key}).fetchone()
        return None if row is None else StoredKey(str(row[0]), row[1])

    def _release_key(self, key: str, job_id: str) -> None:
        self._write(
            "DELETE FROM keys WHERE key = :key AND job_id = :job_id", {"key": key, "job_id": job_id}
        )

    # ------------------------------------------------------------------ budgets
    def _get_budget(self, bucket: str) -> StoredBudget | None:
        row = (
            self._conn()
            .execute("SELECT doc, version FROM budgets WHERE bucket = :bucket", {"bucket": bucket})
            .fetchone()
        )
        return None if row is None else StoredBudget(str(row[0]), int(row[1]))

    def _put_budget_if_version(self, bucket: str, doc: str, expected: int) -> bool:
        params = {"bucket": bucket, "doc": doc, "expected": expected}
        if expected == 0:
            sql = (
                "INSERT INTO budgets (bucket, version, doc) VALUES (:bucket, 1, :doc) "
                "ON CONFLICT (bucket) DO NOTHING"
            )
        else:
            sql = (
                "UPDATE budgets SET version = :expected + 1, doc = :doc "
                "WHERE bucket = :bucket AND version = :expected"
            )
        return self._write(sql, params) == 1

    # ------------------------------------------------------------------ batches
    def _put_batch_if_absent(self, row: BatchRow, now: float) -> StoredBatch | None:
        params = {
            "id": row.id,
            "tenant": row.tenant,
            "created_at": row.created_at,
            "expires_at": row.expires_at,
            "doc": row.doc,
            "now": now,
        }

        def create(conn: sqlite3.Connection) -> StoredBatch | None:
            if conn.execute(_CREATE_BATCH, params).rowcount == 1:
                return None
            return StoredBatch(*conn.execute(_GET_LIVE_BATCH, params).fetchone())

        return self._db.write(create)

    def _get_batch(self, batch_id: str) -> StoredBatch | None:
        row = self._conn().execute(_GET_BATCH, {"id": batch_id}).fetchone()
        return None if row is None else StoredBatch(*row)

    # ------------------------------------------------------------------ housekeeping
    def _delete_expired(self, now: float) -> Sweep:
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


def _job_params(row: JobRow, now: float) -> dict[str, Any]:
    return {
        "id": row.id,
        "tenant": row.tenant,
        "status": row.status,
        "pending": 1 if row.pending else 0,
        "version": row.version,
        "created_at": row.created_at,
        "updated_at": row.updated_at,
        "expires_at": row.expires_at,
        "doc": row.doc,
        "now": now,
    }


__all__ = ["SCHEMA_VERSION", "SqliteJobStore"]
