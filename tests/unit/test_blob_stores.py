"""The local blob stores (memory, files, SQLite) behave alike; the SQLite one, the
embedded default, is also shared by threads, processes and reopenings."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from core.adapters.blobs import FileBlobStore, MemoryBlobStore
from core.adapters.sqlite.blobs import SqliteBlobStore
from core.bootstrap import open_blobs
from core.config import Settings
from core.ports import BlobStore

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4


@pytest.fixture(params=["memory", "file", "sqlite"])
def blobs(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[BlobStore]:
    makers: dict[str, Callable[[], BlobStore]] = {
        "memory": MemoryBlobStore,
        "file": lambda: FileBlobStore(tmp_path / "files"),
        "sqlite": lambda: SqliteBlobStore(tmp_path / "blobs.db"),
    }
    store = makers[request.param]()
    yield store
    closer = getattr(store, "close", None)
    if closer is not None:
        closer()


def test_put_then_get_returns_the_same_bytes(blobs: BlobStore) -> None:
    blobs.put("uploads/acme corp/abc", PNG, "image/png")
    assert blobs.get("uploads/acme corp/abc") == PNG
    assert blobs.get("uploads/acme corp/other") is None


def test_local_stores_sign_no_urls(blobs: BlobStore) -> None:
    blobs.put("uploads/t/a", PNG, "image/png")
    assert blobs.signed_get_url("uploads/t/a", expires_s=60) is None
    signed = blobs.signed_put_url("uploads/t/a", content_type="image/png", size=3, expires_s=60)
    assert signed is None


@pytest.mark.parametrize("key", ["../escape", "uploads/../../etc/passwd", "", "a\nb", "x" * 513])
def test_unsafe_keys_are_refused(blobs: BlobStore, key: str) -> None:
    with pytest.raises(ValueError, match="unsafe blob key"):
        blobs.put(key, PNG, "image/png")


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
