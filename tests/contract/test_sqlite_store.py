"""The store contract against SqliteJobStore, on a fresh file per test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from core.adapters.clock import ManualClock
from core.adapters.stores.sqlite import SqliteJobStore
from tests.contract.accepted_input import AcceptedInputContract
from tests.contract.store_contract import BulkStoreContract
from tests.support.unreadable import plant_sqlite


class TestSqliteStore(BulkStoreContract, AcceptedInputContract):
    @pytest.fixture
    def store(self, clock: ManualClock, tmp_path: Path) -> Iterator[SqliteJobStore]:
        store = SqliteJobStore(tmp_path / "jobs.db", clock=clock)
        yield store
        store.close()

    def plant_raw(self, store: Any, **row: Any) -> None:
        plant_sqlite(store.path, **row)
