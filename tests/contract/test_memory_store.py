"""The store contract against MemoryJobStore, the reference the core's unit tests use."""

from __future__ import annotations

from typing import Any

import pytest

from core.adapters.clock import ManualClock
from core.adapters.stores._base import JobRow
from core.adapters.stores.memory import MemoryJobStore
from tests.contract.accepted_input import AcceptedInputContract
from tests.contract.store_contract import BulkStoreContract


class TestMemoryStore(BulkStoreContract, AcceptedInputContract):
    @pytest.fixture
    def store(self, clock: ManualClock) -> MemoryJobStore:
        return MemoryJobStore(clock=clock)

    def plant_raw(self, store: Any, *, job_id: str, raw: str, status: str, **fields: Any) -> None:
        # The row the store keeps: index fields beside the document, as in a real table.
        pending = status not in ("succeeded", "failed", "rejected")
        row = JobRow(id=job_id, status=status, pending=pending, version=1, doc=raw, **fields)
        with store._lock:
            store._jobs[job_id] = row
