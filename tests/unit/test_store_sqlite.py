"""SqliteJobStore details the shared contract cannot see: the file, its schema, plans,
connections. Behaviour every store shares lives in tests/contract."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest

from core.adapters.clock import ManualClock
from core.adapters.stores import sqlite as sqlite_store
from core.adapters.stores.sqlite import SCHEMA_VERSION, SqliteJobStore
from core.domain.job import Job, JobSource, JobStatus


def _job(job_id: str, clock: ManualClock, **changes: object) -> Job:
    return Job(
        id=job_id,
        tenant="tenant-a",
        pattern_id="pat",
        source=JobSource(kind="url", url="https://img.example/a.png"),
        created_at=clock.now(),
        updated_at=clock.now(),
        **changes,  # type: ignore[arg-type]
    )


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "jobs.db"


def test_new_file_gets_wal_and_schema_version(db: Path) -> None:
    SqliteJobStore(db).close()
    raw = sqlite3.connect(db)
    try:
        assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert raw.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        tables = {r[0] for r in raw.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        assert {"jobs", "keys", "batches"} <= tables
    finally:
        raw.close()


def test_reopening_keeps_data_and_schema(db: Path, clock: ManualClock) -> None:
    first = SqliteJobStore(db, clock=clock)
    first.create(_job("j1", clock))
    first.claim_key("k", "j1", expires_at=None, now=clock.now())
    first.close()
    second = SqliteJobStore(db, clock=clock)
    try:
        stored = second.get("j1")
        assert stored is not None
        assert stored.version == 1
        assert second.lookup_key("k", now=clock.now()) == "j1"
    finally:
        second.close()


def test_two_stores_on_one_file_see_each_others_writes(db: Path, clock: ManualClock) -> None:
    a, b = SqliteJobStore(db, clock=clock), SqliteJobStore(db, clock=clock)
    try:
        stored, _ = a.create(_job("j1", clock))
        assert b.create(_job("j1", clock)) == (stored, False)
        assert b.compare_and_set(stored.replace(attempts=1)) is not None
        assert a.compare_and_set(stored.replace(attempts=2)) is None
    finally:
        a.close()
        b.close()


def test_file_from_newer_code_is_refused(db: Path) -> None:
    SqliteJobStore(db).close()
    raw = sqlite3.connect(db)
    raw.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    raw.commit()
    raw.close()
    with pytest.raises(RuntimeError, match="newer"):
        SqliteJobStore(db)


def test_closed_store_refuses_work(db: Path, clock: ManualClock) -> None:
    store = SqliteJobStore(db, clock=clock)
    store.ping()
    store.close()
    with pytest.raises(sqlite3.ProgrammingError):
        store.ping()
    with pytest.raises(sqlite3.ProgrammingError):
        store.get("j1")
    store.close()  # closing twice is harmless


def test_failed_transaction_rolls_back_and_connection_stays_usable(
    db: Path, clock: ManualClock
) -> None:
    store = SqliteJobStore(db, clock=clock)

    def half_done(conn: sqlite3.Connection) -> None:
        conn.execute("INSERT INTO keys (key, job_id) VALUES ('k', 'j')")
        raise RuntimeError("boom")

    try:
        with pytest.raises(RuntimeError):
            store._db.write(half_done)
        assert store.lookup_key("k", now=clock.now()) is None
        assert store.claim_key("k", "j2", expires_at=None, now=clock.now()) == "j2"
    finally:
        store.close()


def test_connections_of_finished_threads_are_closed(db: Path, clock: ManualClock) -> None:
    # A server that starts a thread per request must not keep one connection per request.
    store = SqliteJobStore(db, clock=clock)
    try:
        for _ in range(20):
            worker = threading.Thread(target=store.ping)
            worker.start()
            worker.join()
        assert store._db.connection_count() <= 2  # this thread's and the last worker's
    finally:
        store.close()


@pytest.mark.parametrize(
    "name",
    [
        "_LIST_JOBS",
        "_LIST_JOBS_BY_STATUS",
        "_LIST_PENDING",
        "_GET_JOB",
        "_CAS_JOB",
        "_REPLACE_JOB",
        "_GET_KEY",
    ],
)
def test_queries_are_index_searches_without_sorting(db: Path, name: str) -> None:
    # A full scan or a temp b-tree sort works on a laptop and falls over at a million jobs.
    SqliteJobStore(db).close()
    params = {
        "tenant": "t",
        "status": JobStatus.QUEUED.value,
        "after_created": 1.0,
        "after_id": "x",
        "now": 1.0,
        "limit": 10,
        "updated_before": 1.0,
        "id": "j",
        "key": "k",
        "expected": 1,
        "version": 2,
        "pending": 1,
        "created_at": 1.0,
        "updated_at": 1.0,
        "expires_at": None,
        "doc": "{}",
        "old_version": 1,
        "old_doc": "{}",
    }
    raw = sqlite3.connect(db)
    try:
        plan = " | ".join(
            row[3]
            for row in raw.execute("EXPLAIN QUERY PLAN " + getattr(sqlite_store, name), params)
        )
    finally:
        raw.close()
    assert "USING INDEX" in plan, plan
    assert "SCAN" not in plan, plan
    assert "TEMP B-TREE" not in plan, plan


def test_delete_expired_is_an_index_search(db: Path) -> None:
    SqliteJobStore(db).close()
    raw = sqlite3.connect(db)
    try:
        for sql in sqlite_store._DELETE_EXPIRED:
            plan = " | ".join(r[3] for r in raw.execute("EXPLAIN QUERY PLAN " + sql, {"now": 1.0}))
            assert "USING INDEX" in plan, plan
    finally:
        raw.close()
