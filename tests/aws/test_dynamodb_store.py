"""The store contract against DynamoDbJobStore on moto's server, a fresh table per test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from core.adapters.clock import ManualClock
from core.adapters.stores import open_store
from core.adapters.stores.dynamodb import DynamoDbJobStore, order_key, parse_url
from tests.aws.conftest import unique
from tests.contract.accepted_input import AcceptedInputContract
from tests.contract.store_contract import StoreContract


class TestDynamoDbStore(StoreContract, AcceptedInputContract):
    sweeps_expired = False  # native TTL: delete_expired leaves it to DynamoDB
    # Every operation is an HTTP round trip to a server sharing this process's GIL:
    # the same 8 racing writers, fewer increments each (see the contract's docstring).
    cas_increments = 6

    @pytest.fixture
    def store(self, clock: ManualClock, moto_url: str) -> Iterator[DynamoDbJobStore]:
        store = DynamoDbJobStore(unique("jobs"), clock=clock, pending_shards=3)
        store.create_table()
        yield store
        store.client.delete_table(TableName=store.table)
        store.close()


def test_order_keys_sort_like_the_pairs_they_encode() -> None:
    values = [-1e300, -2.5, -1.0, -0.0, 0.0, 1e-300, 1.0, 1.5, 1_700_000_000.123456, 1e300]
    pairs = [(v, i) for v in values for i in ("a", "ab", "b")]
    assert sorted(pairs, key=lambda p: order_key(*p)) == sorted(pairs)


def test_url_options(moto_url: str) -> None:
    assert parse_url("dynamodb://jobs") == ("jobs", {})
    assert parse_url(f"dynamodb://jobs?endpoint={moto_url}&region=eu-west-1") == (
        "jobs",
        {"endpoint": moto_url, "region": "eu-west-1"},
    )
    for bad in (
        "dynamodb://",
        "dynamodb://a/b",
        "dynamodb://a?colour=red",
        "dynamodb://a?pending_shards=x",
    ):
        with pytest.raises(ValueError):
            parse_url(bad)
    store = open_store(f"dynamodb://{unique('jobs')}?endpoint={moto_url}&pending_shards=2")
    assert isinstance(store, DynamoDbJobStore)
    store.create_table()
    store.ping()
    store.close()
