"""Group commit in the SQLite store: writers that queue up together share one
transaction, each keeps its own result and its own failure, and none returns before its
write is committed."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from core.adapters.clock import ManualClock
from core.adapters.stores.sqlite import SqliteJobStore

WRITERS = 8


@pytest.fixture
def store(tmp_path: Path) -> SqliteJobStore:
    s = SqliteJobStore(tmp_path / "jobs.db", clock=ManualClock(1000.0), busy_timeout_s=0.2)
    yield s  # type: ignore[misc]
    s.close()


def _queued(store: SqliteJobStore) -> int:
    with store._db.writes._queue_lock:
        return len(store._db.writes._queue)


def _run_together(store: SqliteJobStore, work: list[Callable[[], object]]) -> list[object]:
    """Start every writer while the write lock is held, so they all queue; then let go.
    The first to get the lock leads them all in one transaction."""
    results: list[object] = [None] * len(work)

    def call(i: int) -> None:
        try:
            results[i] = work[i]()
        except Exception as exc:
            results[i] = exc

    threads = [threading.Thread(target=call, args=(i,)) for i in range(len(work))]
    with store._db.write_lock:
        for t in threads:
            t.start()
        deadline = time.monotonic() + 10
        while _queued(store) < len(work):
            assert time.monotonic() < deadline, "writers never queued"
            time.sleep(0.001)
    for t in threads:
        t.join(timeout=10)
    return results


def test_queued_writers_share_one_transaction(store: SqliteJobStore) -> None:
    before = store._db.writes.groups
    work: list[Callable[[], object]] = [
        (lambda i=i: store.claim_key(f"k{i}", f"job-{i}", expires_at=None, now=1000.0))
        for i in range(WRITERS)
    ]
    results = _run_together(store, work)
    assert results == [f"job-{i}" for i in range(WRITERS)]
    assert store._db.writes.groups - before == 1
    for i in range(WRITERS):  # committed, and visible to a reader on another connection
        assert store.lookup_key(f"k{i}", now=1000.0) == f"job-{i}"


def test_a_failing_write_is_undone_alone(store: SqliteJobStore) -> None:
    def broken(conn: sqlite3.Connection) -> None:
        conn.execute("INSERT INTO keys (key, job_id) VALUES ('broken', 'x')")
        raise ValueError("a bug in one caller")

    work: list[Callable[[], object]] = [
        (lambda i=i: store.claim_key(f"k{i}", f"job-{i}", expires_at=None, now=1000.0))
        for i in range(WRITERS)
    ]
    work.insert(WRITERS // 2, lambda: store._db.write(broken))
    results = _run_together(store, work)
    failed = results.pop(WRITERS // 2)
    assert isinstance(failed, ValueError)
    assert results == [f"job-{i}" for i in range(WRITERS)]
    assert store.lookup_key("broken", now=1000.0) is None
    assert all(store.lookup_key(f"k{i}", now=1000.0) == f"job-{i}" for i in range(WRITERS))


def test_a_failing_statement_is_undone_alone(store: SqliteJobStore) -> None:
    def null_job_id(conn: sqlite3.Connection) -> None:
        conn.execute("INSERT INTO keys (key, job_id) VALUES ('broken', NULL)")

    work: list[Callable[[], object]] = [
        (lambda i=i: store.claim_key(f"k{i}", f"job-{i}", expires_at=None, now=1000.0))
        for i in range(WRITERS)
    ]
    work.insert(1, lambda: store._db.write(null_job_id, statement=True))
    results = _run_together(store, work)
    assert isinstance(results.pop(1), sqlite3.IntegrityError)
    assert results == [f"job-{i}" for i in range(WRITERS)]
    assert all(store.lookup_key(f"k{i}", now=1000.0) == f"job-{i}" for i in range(WRITERS))


def test_a_lone_statement_runs_without_an_explicit_transaction(store: SqliteJobStore) -> None:
    # Autocommit: the statement is its own transaction, and its failure is its own.
    with pytest.raises(sqlite3.IntegrityError):
        store._db.write(
            lambda conn: conn.execute("INSERT INTO keys (key, job_id) VALUES ('k', NULL)"),
            statement=True,
        )
    assert store.claim_key("k", "j", expires_at=None, now=1000.0) == "j"


def test_a_transaction_that_cannot_start_fails_every_writer(
    store: SqliteJobStore, tmp_path: Path
) -> None:
    store.ping()
    other = sqlite3.connect(tmp_path / "jobs.db", isolation_level=None)  # another process
    other.execute("BEGIN IMMEDIATE")
    try:
        work: list[Callable[[], object]] = [
            (lambda i=i: store.claim_key(f"k{i}", f"job-{i}", expires_at=None, now=1000.0))
            for i in range(3)
        ]
        results = _run_together(store, work)
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert all(isinstance(r, sqlite3.OperationalError) for r in results), results
    assert all(store.lookup_key(f"k{i}", now=1000.0) is None for i in range(3))
    # and the store carries on once the lock is free
    assert store.claim_key("k0", "job-0", expires_at=None, now=1000.0) == "job-0"
