"""Group commit for the SQLite store: the writes of many threads share one transaction.

Why: in WAL mode a commit appends every page it touched to the log, and a job row
touches five B-trees (the table and its indexes). Sixteen threads committing one row
each write the same hot index pages sixteen times; committed together they write them
once. Measured on the bench machine: ~70 us per insert alone, ~20 us in groups of 16.

How (leader/follower, as LevelDB's write queue): a writer appends its operation to a
queue. The writer at the front of the queue is the leader: it takes everything queued
so far, runs it in one BEGIN IMMEDIATE ... COMMIT, removes it from the queue, wakes
each of those writers with its result, and wakes the new front writer to lead the next
group (made of whatever queued meanwhile). No thread waits for a timer or a batch to
fill, so a lone writer pays nothing extra, and no caller returns before its write is
committed. Each waiter sleeps on a lock of its own and is woken once, directly; they
do not file through a shared lock one by one to learn that their write is done.

Every group runs on one writer connection, whichever thread leads: only it writes (in
this process), so its page cache stays valid between transactions, where a connection
per leader would re-read the pages every other connection had just changed.

One operation's failure (a constraint, a bug) is undone alone and its exception
reaches its own caller; the others of its group still commit. An operation declared a
single `statement` is atomic by itself (SQLite undoes a failed statement), so it needs
nothing more, and alone in its group it runs in autocommit mode: one round trip into
SQLite instead of three, which matters because each one hands the GIL to another
thread and back. Other operations run inside a SAVEPOINT of their own. If the
transaction itself cannot start or commit (another process holds the lock past the
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
    __slots__ = ("done", "error", "operation", "result", "statement", "wake")

    def __init__(self, operation: Operation[T], statement: bool) -> None:
        self.operation = operation
        self.statement = statement
        self.done = False
        self.result: T | None = None
        self.error: BaseException | None = None
        # Held from the start; released once, when this writer is done or must lead.
        self.wake = threading.Lock()
        self.wake.acquire()


class GroupCommitter:
    """Runs write operations in shared transactions.

    `connection` returns the writer connection; it is only ever called, and the
    connection only used, while `lock` (the process-wide writer lock) is held.
    """

    def __init__(self, connection: Callable[[], sqlite3.Connection], lock: threading.Lock) -> None:
        self._connection = connection
        self._lock = lock
        self._queue: list[_Pending[object]] = []
        self._queue_lock = threading.Lock()
        self.groups = 0  # transactions committed (tests look)

    def run(self, operation: Operation[T], *, statement: bool = False) -> T:
        """Run `operation(conn)` in a write transaction; return once it is committed.
        `statement`: the operation executes exactly one SQL statement."""
        pending: _Pending[T] = _Pending(operation, statement)
        with self._queue_lock:
            self._queue.append(pending)  # type: ignore[arg-type]
            leads = self._queue[0] is pending
        if not leads:
            pending.wake.acquire()  # until a leader has run it, or it is at the front
        if not pending.done:
            self._lead(pending)
        if pending.error is not None:
            raise pending.error
        return pending.result  # type: ignore[return-value]

    def _lead(self, own: _Pending[T]) -> None:
        group: list[_Pending[object]] = [own]  # type: ignore[list-item]
        try:
            with self._lock:
                # Taken once the lock is ours: whatever queued while we waited joins.
                with self._queue_lock:
                    group = list(self._queue)
                self._commit(group)
        finally:
            self._hand_over(group)  # after the lock is free: the next leader needs it

    def _hand_over(self, group: list[_Pending[object]]) -> None:
        with self._queue_lock:
            del self._queue[: len(group)]
            following = self._queue[0] if self._queue else None
        for pending in group[1:]:  # the first is the leader's own
            pending.wake.release()
        if following is not None:
            following.wake.release()  # it leads the next group

    def _commit(self, group: list[_Pending[object]]) -> None:
        try:
            self._transaction(self._connection(), group)
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
        finally:
            for pending in group:
                pending.done = True

    @staticmethod
    def _transaction(conn: sqlite3.Connection, group: list[_Pending[object]]) -> None:
        if len(group) == 1 and group[0].statement:
            (pending,) = group
            try:
                pending.result = pending.operation(conn)  # autocommit: its own transaction
            except Exception as exc:
                pending.error = exc
            return
        conn.execute("BEGIN IMMEDIATE")
        try:
            for pending in group:
                if pending.statement:
                    try:
                        pending.result = pending.operation(conn)
                    except Exception as exc:
                        if not conn.in_transaction:
                            raise  # SQLite rolled the whole transaction back
                        pending.error = exc  # the statement was undone, the rest stands
                    continue
                conn.execute("SAVEPOINT operation")
                try:
                    pending.result = pending.operation(conn)
                except Exception as exc:
                    pending.error = exc
                    conn.execute("ROLLBACK TO operation")
                conn.execute("RELEASE operation")
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:  # some errors roll back on their own
                conn.execute("ROLLBACK")
            raise
