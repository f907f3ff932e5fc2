"""The store contract against MemoryJobStore, the reference the core's unit tests use:
as it is (documents of any length), and with an item limit, as a backend with one has."""

from __future__ import annotations

from typing import Any

import pytest

from core.adapters.clock import ManualClock
from core.adapters.stores._base import JobRow
from core.adapters.stores.memory import MemoryJobStore
from core.ports import BlobStore
from tests.contract.accepted_input import AcceptedInputContract
from tests.contract.store_contract import BulkStoreContract


class TestMemoryStore(BulkStoreContract, AcceptedInputContract):
    @pytest.fixture
    def store(self, clock: ManualClock, blobs: BlobStore) -> MemoryJobStore:
        return MemoryJobStore(clock=clock, blobs=blobs)

    def plant_raw(self, store: Any, *, job_id: str, raw: str, status: str, **fields: Any) -> None:
        # The row the store keeps: index fields beside the document, as in a real table.
        pending = status not in ("succeeded", "failed", "rejected")
        row = JobRow(id=job_id, status=status, pending=pending, version=1, doc=raw, **fields)
        with store._lock:
            store._jobs[job_id] = row


class TestMemoryStoreWithAnItemLimit(TestMemoryStore):
    """64 KiB, Azure Tables' limit for one property: every test of the contract again,
    and the large-manifest tests for real."""

    @pytest.fixture
    def store(self, clock: ManualClock, blobs: BlobStore) -> MemoryJobStore:
        return MemoryJobStore(clock=clock, blobs=blobs, max_doc_bytes=64 * 1024)
