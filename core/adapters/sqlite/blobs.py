"""Upload bytes in one SQLite file: the embedded default blob store (`sqlite:///path`).

Why not a file per upload: creating, writing and renaming a small file is several
journaled metadata operations, and with a batch's sixteen threads doing them at once
the kernel time of those operations was the largest cost left on the batch path (the
process's system time doubled against an in-memory blob store). Rows in one WAL file
are written in shared transactions instead (see group_commit), and a reader in another
process sees a blob whole or not at all, as the rename used to guarantee.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from core.adapters.blobs import LocalBlobs, check_key
from core.adapters.sqlite.database import SqliteDatabase, path_from_url
from core.ports import BlobInfo

SCHEMA_VERSION = 1
_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS blobs (
        key TEXT PRIMARY KEY,
        content_type TEXT NOT NULL,
        data BLOB NOT NULL
    )""",
)
_PUT = """
    INSERT INTO blobs (key, content_type, data) VALUES (:key, :content_type, :data)
    ON CONFLICT (key) DO UPDATE SET content_type = excluded.content_type, data = excluded.data
"""


class SqliteBlobStore(LocalBlobs):
    def __init__(self, path: str | os.PathLike[str], *, busy_timeout_s: float = 5.0) -> None:
        self._db = SqliteDatabase(
            path,
            schema=_SCHEMA,
            schema_version=SCHEMA_VERSION,
            what="blob store",
            busy_timeout_s=busy_timeout_s,
        )
        self.path = self._db.path

    @classmethod
    def from_url(cls, url: str) -> SqliteBlobStore:
        return cls(path_from_url(url))

    def put(self, key: str, data: bytes, content_type: str) -> None:
        params = {"key": check_key(key), "content_type": content_type, "data": data}
        self._db.write(lambda conn: conn.execute(_PUT, params), statement=True)

    def put_many(self, blobs: Sequence[tuple[str, bytes, str]]) -> None:
        rows = [
            {"key": check_key(key), "content_type": content_type, "data": data}
            for key, data, content_type in blobs
        ]
        # Not a `statement`: executemany in autocommit would commit row by row.
        self._db.write(lambda conn: conn.executemany(_PUT, rows))

    def get(self, key: str) -> bytes | None:
        row = self._db.connection().execute(
            "SELECT data FROM blobs WHERE key = ?", (check_key(key),)
        )
        found: tuple[bytes] | None = row.fetchone()
        return None if found is None else bytes(found[0])

    def describe(self, key: str) -> BlobInfo | None:
        row = self._db.connection().execute(
            "SELECT length(data), content_type FROM blobs WHERE key = ?", (check_key(key),)
        )
        found: tuple[int, str] | None = row.fetchone()
        return None if found is None else BlobInfo(found[0], found[1])

    def delete(self, key: str) -> None:
        params = {"key": check_key(key)}
        self._db.write(
            lambda conn: conn.execute("DELETE FROM blobs WHERE key = :key", params),
            statement=True,
        )

    def close(self) -> None:
        self._db.close()


def from_url(url: str) -> SqliteBlobStore:
    return SqliteBlobStore.from_url(url)


__all__ = ["SqliteBlobStore", "from_url"]
