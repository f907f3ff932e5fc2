"""What only the embedded default blob store has: one SQLite file shared by threads,
processes and reopenings, found in the data dir. The behaviour every blob store shares
is tests/contract/blob_contract.py (run on these stores by test_local_blobs.py)."""

from __future__ import annotations

import threading
from pathlib import Path

from core.adapters.sqlite.blobs import SqliteBlobStore
from core.bootstrap import open_blobs
from core.config import Settings

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4


def test_sqlite_blobs_are_shared_across_threads_and_reopenings(tmp_path: Path) -> None:
    first = SqliteBlobStore(tmp_path / "blobs.db")
    payloads = {f"uploads/t/{i}": PNG + bytes([i]) for i in range(64)}
    threads = [
        threading.Thread(target=first.put, args=(key, data, "image/png"))
        for key, data in payloads.items()
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    second = SqliteBlobStore(tmp_path / "blobs.db")  # another process would do the same
    try:
        assert {key: second.get(key) for key in payloads} == payloads
    finally:
        first.close()
        second.close()
    reopened = SqliteBlobStore(tmp_path / "blobs.db")
    assert reopened.get("uploads/t/0") == payloads["uploads/t/0"]
    reopened.close()


def test_the_default_blob_store_is_a_sqlite_file_in_the_data_dir(tmp_path: Path) -> None:
    store = open_blobs(Settings(data_dir=str(tmp_path)))
    assert isinstance(store, SqliteBlobStore)
    store.put("uploads/t/a", PNG, "image/png")
    assert (tmp_path / "blobs.db").exists()
    store.close()
    by_url = open_blobs(Settings(blob_url=f"sqlite:///{tmp_path}/blobs.db"))
    assert by_url.get("uploads/t/a") == PNG
