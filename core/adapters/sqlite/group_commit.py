"""Group commit for the SQLite store: the writes of many threads share one transaction.

Why: in WAL mode a commit appends every page it touched to the log, and a job row
touches five B-trees (the table and its indexes). Sixteen threads committing one row
each write the same hot index pages sixteen times; committed together they write them
once. Measured on the bench machine: ~70 us per insert alone, ~20 us in groups of 16.

How (leader/follower): a writer queues its operation, then takes the write lock. If a
leader already ran the operation while this thread waited, it just picks up the
result. Otherwise it becomes the leader: it takes everything queued so far and runs it
in one BEGIN IMMEDIATE ... COMMIT. No thread waits for a timer or a batch to fill, so
a lone writer pays nothing extra, and no caller returns before its write is committed.

Each operation runs inside its own SAVEPOINT, so one that fails (a constraint, a bug)
is undone alone and its exception reaches its own caller; the others still commit. If
the transaction itself cannot start or commit (another process holds the lock past the
busy timeout, a full disk), every operation of the group gets that error: none of them
was written.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")
Operation = Callable[[sqlite3.Connection], T]


class _Pending(Generic[T]):
    __slots__ = ("done", "error", "operation", "result")

    def __init__(self, operation: Operation[T]) -> None:
        self.operation = operation
        self.done = False
        self.result: T | None = None
        self.error: BaseException | None = None


class GroupCommitter:
    """Runs write operations in shared transactions on the calling threads' connections.

    `connection` returns the calling thread's connection (the leader's is used for the
    whole group). `lock` is the process-wide writer lock, held for the whole group.
    """

    def __init__(self, connection: Callable[[], sqlite3.Connection], lock: threading.Lock) -> None:
        self._connection = connection
        self._lock = lock
        self._queue: list[_Pending[object]] = []
        self._queue_lock = threading.Lock()
        self.groups = 0  # transactions committed, for tests and the bench
        self.operations = 0

    def run(self, operation: Operation[T]) -> T:
        """Run `operation(conn)` in a write transaction; return once it is committed."""
        pending: _Pending[T] = _Pending(operation)
        conn = self._connection()  # before the lock: opening a connection may migrate
        with self._queue_lock:
            self._queue.append(pending)  # type: ignore[arg-type]
        with self._lock:
            if not pending.done:
                with self._queue_lock:
                    group, self._queue = self._queue, []
                self._commit(conn, group)
        if pending.error is not None:
            raise pending.error
        return pending.result  # type: ignore[return-value]

    def _commit(self, conn: sqlite3.Connection, group: list[_Pending[object]]) -> None:
        try:
            self._transaction(conn, group)
        except BaseException as exc:
            # Nothing of the group was written. A KeyboardInterrupt stops the leader;
            # the followers get an ordinary error instead of a signal from another thread.
            failure = (
                exc
                if isinstance(exc, Exception)
                else sqlite3.OperationalError("the write transaction was interrupted")
            )
            for pending in group:
                pending.result, pending.error = None, failure
            raise
        else:
            self.groups += 1
            self.operations += len(group)
        finally:
            for pending in group:
                pending.done = True

    @staticmethod
    def _transaction(conn: sqlite3.Connection, group: list[_Pending[object]]) -> None:
        conn.execute("BEGIN IMMEDIATE")
        try:
            for pending in group:
                conn.execute("SAVEPOINT operation")
                try:
                    pending.result = pending.operation(conn)
                except Exception as exc:  # this caller's problem, not the group's
                    pending.error = exc
                    conn.execute("ROLLBACK TO operation")
                conn.execute("RELEASE operation")
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:  # some errors roll back on their own
                conn.execute("ROLLBACK")
            raise
