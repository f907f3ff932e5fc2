"""The blob contract against the stores on this machine: memory, a file per key, and
the embedded default, one SQLite file."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from core.adapters.blobs import FileBlobStore, MemoryBlobStore
from core.adapters.sqlite.blobs import SqliteBlobStore
from tests.contract.blob_contract import BlobContract, BulkBlobContract, LocalBlobContract


class TestMemoryBlobs(BlobContract, LocalBlobContract):
    @pytest.fixture
    def blobs(self) -> MemoryBlobStore:
        return MemoryBlobStore()


class TestFileBlobs(BlobContract, LocalBlobContract):
    @pytest.fixture
    def blobs(self, tmp_path: Path) -> FileBlobStore:
        return FileBlobStore(tmp_path / "files")


class TestSqliteBlobs(BlobContract, BulkBlobContract, LocalBlobContract):
    @pytest.fixture
    def blobs(self, tmp_path: Path) -> Iterator[SqliteBlobStore]:
        store = SqliteBlobStore(tmp_path / "blobs.db")
        yield store
        store.close()
