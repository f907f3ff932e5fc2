"""One SQLite file used from many threads (and processes): what the embedded job store
and blob store share.

- One connection per thread for reads: a sqlite3 connection must not be shared by
  threads mid-statement, and per-thread connections let readers run alongside the
  writer. Writes use one more connection of their own (see group_commit).
- WAL so readers never block the writer; synchronous=NORMAL because in WAL mode that can
  lose only the last commits on power loss, never corrupt the file; a busy timeout so a
  writer waits for another process's lock instead of failing at once.
- Writes go through a GroupCommitter: this process's concurrent writers share
  transactions, queued on an in-process lock rather than in SQLite's busy handler
  (which polls with sleeps of up to tens of milliseconds and is not woken when the lock
  frees).
- The schema version lives in PRAGMA user_version; a file written by newer code is
  refused, not misread.
"""

from __future__ import annotations

import logging
import os
import re
import sqlite3
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TypeVar
from urllib.parse import unquote, urlsplit

from core.adapters.sqlite.group_commit import GroupCommitter, Operation

log = logging.getLogger("imggo.sqlite")

T = TypeVar("T")

_WINDOWS_DRIVE = re.compile(r"^/[A-Za-z]:")


def path_from_url(url: str) -> str:
    """`sqlite:///abs/path.db` -> `/abs/path.db`; `sqlite:///./rel.db` -> `./rel.db`
    (relative to the working directory, as `./` or `../` after the third slash says)."""
    parts = urlsplit(url)
    if parts.scheme != "sqlite":
        raise ValueError(f"not a sqlite URL: {parts.scheme}://")
    if parts.netloc:
        raise ValueError(
            "a sqlite URL has no host: use sqlite:///abs/path.db or sqlite:///./relative.db"
        )
    if parts.query or parts.fragment:
        raise ValueError("a sqlite URL takes no query string or fragment")
    path = unquote(parts.path)
    if path in ("", "/"):
        raise ValueError("a sqlite URL needs a file path: sqlite:///abs/path.db")
    if path == "/:memory:":
        # Every thread would get its own empty database; memory:// is the shared one.
        raise ValueError("sqlite:///:memory: is not supported; use memory://")
    if path.startswith(("/./", "/../")) or _WINDOWS_DRIVE.match(path):
        path = path[1:]
    return path


class SqliteDatabase:
    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        schema: Sequence[str],
        schema_version: int,
        what: str,
        busy_timeout_s: float = 5.0,
    ) -> None:
        """`schema`: idempotent statements that create version `schema_version`;
        `what` names the file's role in error messages ("store", "blob store")."""
        self.path = os.fspath(path)
        self._schema = tuple(schema)
        self._schema_version = schema_version
        self._what = what
        self._busy_timeout_s = busy_timeout_s
        self._local = threading.local()
        # Every connection we opened, by owning thread: close() closes them all, and a
        # dead thread's connection is closed when the next one opens, so a server that
        # spawns a thread per request does not leak file handles.
        self._registry_lock = threading.Lock()
        self._connections: dict[threading.Thread, sqlite3.Connection] = {}
        self._pid = os.getpid()
        # Connections inherited through fork(): never used, and never closed either, since
        # closing one in the child could checkpoint or unlink files the parent is using.
        self._inherited: list[sqlite3.Connection] = []
        self._closed = False
        self._writer: sqlite3.Connection | None = None
        self._writer_pid = 0
        self.write_lock = threading.Lock()  # this process's writers queue here
        self.writes = GroupCommitter(self._writer_connection, self.write_lock)
        Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._migrate(self.connection())

    def write(self, operation: Operation[T], *, statement: bool = False) -> T:
        """Run `operation(conn)` in a write transaction; return once it is committed.
        `statement`: it executes exactly one SQL statement (cheaper, see group_commit)."""
        return self.writes.run(operation, statement=statement)

    def connection(self) -> sqlite3.Connection:
        """The calling thread's connection (autocommit: reads see the latest commit)."""
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        # A forked child inherits the parent's thread-locals; SQLite forbids carrying a
        # connection across fork(), so a new pid means a new connection.
        if conn is not None and self._local.pid == os.getpid() and not self._closed:
            return conn
        return self._open()

    def connection_count(self) -> int:
        with self._registry_lock:
            return len(self._connections)

    def close(self) -> None:
        """Close every connection; the database is unusable afterwards."""
        with self._registry_lock:
            self._closed = True
            connections, self._connections = list(self._connections.values()), {}
        for conn in connections:
            conn.close()
        with self.write_lock:  # not in the middle of a group's transaction
            writer, self._writer = self._writer, None
            if writer is not None and self._writer_pid == os.getpid():
                writer.close()

    def _connect(self) -> sqlite3.Connection:
        if self._closed:
            raise sqlite3.ProgrammingError(f"the {self._what} at {self.path} is closed")
        conn = sqlite3.connect(
            self.path,
            timeout=self._busy_timeout_s,  # sets sqlite3_busy_timeout
            isolation_level=None,  # autocommit; transactions are explicit
            check_same_thread=False,  # used by whichever thread holds the lock / closes
        )
        conn.execute("PRAGMA synchronous = NORMAL")
        return conn

    def _writer_connection(self) -> sqlite3.Connection:
        """The connection every write group runs on; called with write_lock held."""
        pid = os.getpid()
        if self._writer is None or self._writer_pid != pid:
            if self._writer is not None:  # the parent's, inherited through fork()
                self._inherited.append(self._writer)
            self._writer, self._writer_pid = self._connect(), pid
        return self._writer

    def _open(self) -> sqlite3.Connection:
        with self._registry_lock:
            conn = self._connect()
            pid = os.getpid()
            if pid != self._pid:
                self._inherited.extend(self._connections.values())
                self._connections, self._pid = {}, pid
            for thread in [t for t in self._connections if not t.is_alive()]:
                self._connections.pop(thread).close()
            self._connections[threading.current_thread()] = conn
            self._local.conn, self._local.pid = conn, pid
        return conn

    def _migrate(self, conn: sqlite3.Connection) -> None:
        mode = self._enable_wal(conn)
        if str(mode).lower() != "wal":
            # Still correct (rollback journal), only slower under concurrency: some
            # network file systems cannot share WAL's memory-mapped index.
            log.warning("%s: WAL unavailable, journal_mode is %s", self.path, mode)
        if _user_version(conn) == self._schema_version:
            return  # the common case: no write lock taken just to open

        def migrate(conn: sqlite3.Connection) -> None:
            found = _user_version(conn)  # another process may have just done it
            if found > self._schema_version:
                raise RuntimeError(
                    f"{self.path} has {self._what} schema {found}, newer than this code's "
                    f"{self._schema_version}: upgrade imggo-functions or use another file"
                )
            if found < self._schema_version:
                for statement in self._schema:
                    conn.execute(statement)
                conn.execute(f"PRAGMA user_version = {self._schema_version:d}")

        self.write(migrate)

    def _enable_wal(self, conn: sqlite3.Connection) -> str:
        """Switch the file to WAL (a no-op once it is). Two processes opening a new file
        together both need an exclusive lock for the switch; SQLite answers one of them
        SQLITE_BUSY at once, without the busy handler, to avoid a deadlock. So retry
        here, within the same patience the busy timeout gives everything else."""
        deadline = time.monotonic() + self._busy_timeout_s
        pause = 0.005
        while True:
            try:
                return str(conn.execute("PRAGMA journal_mode = WAL").fetchone()[0])
            except sqlite3.OperationalError as exc:
                if exc.sqlite_errorcode & 0xFF != sqlite3.SQLITE_BUSY:
                    raise
                if time.monotonic() + pause > deadline:
                    raise
            time.sleep(pause)
            pause = min(pause * 2, 0.1)


def _user_version(conn: sqlite3.Connection) -> int:
    return int(conn.execute("PRAGMA user_version").fetchone()[0])
