"""The store contract against MemoryJobStore, the reference the core's unit tests use."""

from __future__ import annotations

import pytest

from core.adapters.clock import ManualClock
from core.adapters.stores.memory import MemoryJobStore
from tests.contract.accepted_input import AcceptedInputContract
from tests.contract.store_contract import BulkStoreContract


class TestMemoryStore(BulkStoreContract, AcceptedInputContract):
    @pytest.fixture
    def store(self, clock: ManualClock) -> MemoryJobStore:
        return MemoryJobStore(clock=clock)
