"""The store contract against DynamoDbJobStore on moto's server, a fresh table per test."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from core.adapters.aws import clients
from core.adapters.aws.s3_blobs import S3BlobStore
from core.adapters.clock import ManualClock
from core.adapters.stores import open_store
from core.adapters.stores._records import dump_job
from core.adapters.stores.dynamodb import DynamoDbJobStore, parse_url
from core.ports import BlobStore
from tests.aws.conftest import unique
from tests.aws.plant import plant_item
from tests.contract.accepted_input import AcceptedInputContract
from tests.contract.store_contract import StoreContract
from tests.contract.store_outage import OUTAGE_LIMITS, StoreOutageContract
from tests.support.blobs import MemoryBlobs


class S3Blobs(S3BlobStore):
    """S3 on moto behind the real adapter, plus the `delete` of the blob port to come
    (see tests.support.blobs) and a listing of what the bucket holds."""

    def delete(self, key: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=self.object_key(key))

    def stored_keys(self) -> set[str]:
        pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket)
        return {str(item["Key"]) for page in pages for item in page.get("Contents", [])}


class TestDynamoDbStore(StoreContract, AcceptedInputContract):
    sweeps_expired = False  # native TTL: delete_expired leaves it to DynamoDB
    # Every operation is an HTTP round trip to a server sharing this process's GIL:
    # the same 8 racing writers, fewer increments each (see the contract's docstring).
    cas_increments = 6

    @pytest.fixture
    def store(self, clock: ManualClock, blobs: BlobStore) -> Iterator[DynamoDbJobStore]:
        store = DynamoDbJobStore(unique("jobs"), clock=clock, blobs=blobs, pending_shards=3)
        store.create_table()
        yield store
        store.client.delete_table(TableName=store.table)
        store.close()

    @pytest.fixture
    def blobs(self, moto_url: str) -> Iterator[S3Blobs]:
        blobs = S3Blobs(unique("manifests"))
        blobs.client.create_bucket(Bucket=blobs.bucket)
        yield blobs
        for key in blobs.stored_keys():
            blobs.delete(key)
        blobs.client.delete_bucket(Bucket=blobs.bucket)

    def blob_keys(self, blobs: BlobStore) -> set[str]:
        assert isinstance(blobs, S3Blobs)
        return blobs.stored_keys()

    def plant_raw(self, store: Any, **row: Any) -> None:
        plant_item(store.client, store.table, **row)


class TestDynamoDbOutage(StoreOutageContract):
    @pytest.fixture
    def unreachable_store(self, endpoint: str, moto_url: str) -> Iterator[DynamoDbJobStore]:
        # moto_url: the fake credentials and region; the endpoint given here wins.
        store = DynamoDbJobStore(
            unique("jobs"),
            blobs=MemoryBlobs(),  # as deployed: so the sweep has leases to look for
            endpoint_url=f"http://{endpoint}",
            limits=OUTAGE_LIMITS,
        )
        yield store
        store.close()


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


def test_fail_unreadable_loses_to_a_good_write_between_its_read_and_its_write(
    moto_url: str,
) -> None:
    clock = ManualClock(start=1_700_000_000.0)
    store = DynamoDbJobStore(unique("jobs"), clock=clock)
    store.create_table()
    now = clock.now()
    row = {"job_id": "job-1", "tenant": "t", "created_at": now, "updated_at": now}
    plant_item(store.client, store.table, raw="{garbage", **row)
    good = StoreContract.make_job(clock, id="job-1", tenant="t").replace(version=1)
    writer = clients.client("dynamodb")  # another client: another instance, say

    def good_write_lands_first(params: dict[str, Any], **_: Any) -> None:
        if "attribute_exists(pk)" in params.get("ConditionExpression", ""):
            plant_item(writer, store.table, raw=dump_job(good), **row)

    store.client.meta.events.register(
        "before-parameter-build.dynamodb.PutItem", good_write_lands_first
    )
    assert store.fail_unreadable("job-1", now=now) is None
    assert store.get("job-1") == good
    writer.close()
    store.client.delete_table(TableName=store.table)
    store.close()
