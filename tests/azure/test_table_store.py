"""The store contract, unchanged, against AzureTableJobStore on Azurite (a fresh table
per test), plus what only Table Storage has: index rows a crash leaves behind, the
property-size split, transactions over 100 operations."""

from __future__ import annotations

import functools
from collections.abc import Iterator
from typing import Any

import pytest
from azure.data.tables import TableClient, UpdateMode

from core.adapters.azure.table_store import (
    TRANSACTION_MAX,
    AzureTableJobStore,
    key_part,
    newest_first,
    oldest_first,
    parse_url,
)
from core.adapters.clock import ManualClock
from core.adapters.stores import open_store
from core.domain.job import JobStatus
from tests.azure.conftest import unique
from tests.contract.accepted_input import AcceptedInputContract
from tests.contract.store_contract import BulkStoreContract, StoreContract


def fresh_store(clock: ManualClock, **options: Any) -> AzureTableJobStore:
    store = AzureTableJobStore(unique("jobs"), clock=clock, **options)
    store.create_table()
    return store


def plant_entities(
    client: TableClient,
    *,
    job_id: str,
    tenant: str,
    raw: str,
    created_at: float,
    updated_at: float,
    status: str,
    expires_at: float | None,
) -> None:
    """The layout of the module docstring, written with the SDK's own client."""
    exp = {} if expires_at is None else {"exp": expires_at}
    job = {"PartitionKey": "j|" + key_part(job_id), "RowKey": "", "kind": "job", "id": job_id}
    job.update({"v": 1, "tenant": tenant, "st": status, "ca": created_at, "ua": updated_at})
    client.upsert_entity({**job, **exp, "doc": raw}, mode=UpdateMode.REPLACE)
    index = {"kind": "ix", "job": job_id, "v": 1, "ca": created_at, **exp}
    order = newest_first(created_at, job_id)
    tenant_pk = "t|" + key_part(tenant)
    client.upsert_entity({**index, "PartitionKey": tenant_pk, "RowKey": "a|" + order})
    client.upsert_entity({**index, "PartitionKey": tenant_pk, "RowKey": f"s|{status}|{order}"})
    if status not in ("succeeded", "failed", "rejected"):
        pending = {"kind": "ix", "job": job_id, "v": 1, "ua": updated_at, **exp}
        client.upsert_entity(
            {**pending, "PartitionKey": "p|0", "RowKey": oldest_first(updated_at, job_id)}
        )


def _no_offload(name: str) -> Any:
    """The contract's large-manifest test `name`, expected to fail here: this store is
    not on BaseJobStore yet, so it has no large-manifest offload and refuses a document
    past one entity (open work of the Azure issue)."""
    base = getattr(BulkStoreContract, name)

    @functools.wraps(base)
    def test(self: Any, *args: Any, **kwargs: Any) -> None:
        base(self, *args, **kwargs)

    return pytest.mark.xfail(strict=True, reason="Azure table store: no manifest offload yet")(test)


class TestAzureTableStore(BulkStoreContract, AcceptedInputContract):
    test_a_2_mib_manifest_comes_back_from_every_read = _no_offload(
        "test_a_2_mib_manifest_comes_back_from_every_read"
    )
    test_a_document_just_over_the_item_limit_keeps_its_manifest_in_the_blob_store = _no_offload(
        "test_a_document_just_over_the_item_limit_keeps_its_manifest_in_the_blob_store"
    )
    test_replacing_a_large_manifest_leaves_no_blob_behind = _no_offload(
        "test_replacing_a_large_manifest_leaves_no_blob_behind"
    )
    test_expiry_takes_the_manifest_blob_with_its_job = _no_offload(
        "test_expiry_takes_the_manifest_blob_with_its_job"
    )
    test_racing_writers_of_large_manifests_leave_only_the_winners_blob = _no_offload(
        "test_racing_writers_of_large_manifests_leave_only_the_winners_blob"
    )
    test_a_job_whose_manifest_blob_is_damaged_is_contained_like_any_unreadable_job = _no_offload(
        "test_a_job_whose_manifest_blob_is_damaged_is_contained_like_any_unreadable_job"
    )

    # Every operation is an HTTP round trip to a node process on the same two cores.
    race_threads = 16
    cas_increments = 6

    @pytest.fixture
    def store(self, clock: ManualClock, storage: str) -> Iterator[AzureTableJobStore]:
        store = fresh_store(clock)
        yield store
        store.client.delete_table()
        store.close()

    def plant_raw(self, store: Any, **row: Any) -> None:
        plant_entities(store.client, **row)


def test_keys_sort_as_the_orders_they_encode() -> None:
    values = [-1e300, -2.5, -0.0, 0.0, 1e-300, 1.5, 1_700_000_000.123456, 1e300]
    pairs = [(v, i) for v in values for i in ("a", "ab", "b", "ü", "")]
    assert sorted(pairs, key=lambda p: oldest_first(*p)) == sorted(pairs)
    assert sorted(pairs, key=lambda p: newest_first(*p)) == sorted(pairs, reverse=True)


def test_key_parts_are_always_legal_and_distinct() -> None:
    assert key_part("job-1") == "job-1"
    made = {key_part(raw) for raw in ("a/b", "a#b", "a?b", "a\\b", "\x01", "~x", "a/c")}
    assert len(made) == 7
    assert all(m.startswith("~") and not set(m) & set("/\\#?") for m in made)


@pytest.mark.parametrize(
    "url",
    [
        "azuretables://",
        "azuretables://1abc",
        "azuretables://a-b",
        "azuretables://ok/x",
        "azuretables://ok?bogus=1",
        "azuretables://ok?pending_shards=0",
        "dynamodb://ok",
    ],
)
def test_bad_urls_are_refused(url: str) -> None:
    with pytest.raises(ValueError):
        parse_url(url)


def test_open_store_by_url(storage: str) -> None:
    table = unique("jobs")
    store = open_store(f"azuretables://{table}?pending_shards=2")
    assert isinstance(store, AzureTableJobStore) and store.table == table
    store.create_table()
    store.ping()
    store.client.delete_table()
    store.close()


def test_a_crash_between_the_index_and_the_job_write_hides_nothing(storage: str) -> None:
    # The index rows of a state are written first: a writer that dies before the job
    # write leaves rows pointing at a state the job does not have. Readers skip them.
    clock = ManualClock(start=1_700_000_000.0)
    store = fresh_store(clock)
    job, _ = store.create(StoreContract.make_job(clock, status=JobStatus.QUEUED))
    ahead = job.replace(version=2, status=JobStatus.RUNNING, updated_at=clock.now() + 5)
    store._write_index(store._index_rows(ahead))  # ...and the process dies here
    orphan = StoreContract.make_job(clock, status=JobStatus.RUNNING, created_at=clock.now() + 1)
    store._write_index(store._index_rows(orphan.replace(version=1)))  # a create that died
    assert store.list_jobs("tenant-a").items == [job]
    assert store.list_jobs("tenant-a", status=JobStatus.QUEUED).items == [job]
    assert store.list_jobs("tenant-a", status=JobStatus.RUNNING).items == []
    assert store.list_pending(updated_before=clock.now() + 100, limit=10).items == [job]
    # The in-flight rows (version ahead of the job's) are not pruned: the write may land.
    saved = store.compare_and_set(ahead.replace(version=1))
    assert saved is not None
    assert store.list_jobs("tenant-a", status=JobStatus.RUNNING).items == [saved]
    assert store.list_pending(updated_before=clock.now() + 100, limit=10).items == [saved]
    assert store.list_jobs("tenant-a", status=JobStatus.QUEUED).items == []
    # The superseded rows (queued, the old pending one) were pruned by the readers that
    # met them; what is left is exactly the index of the job's state.
    rows = store.client.query_entities("kind eq 'ix' and job eq @id", parameters={"id": job.id})
    order = newest_first(job.created_at, job.id)
    assert sorted(str(row["RowKey"]) for row in rows) == sorted(
        ["a|" + order, "s|running|" + order, oldest_first(saved.updated_at, job.id)]
    )
    store.client.delete_table()
    store.close()


def test_a_document_over_one_property_is_split_and_read_back(storage: str) -> None:
    clock = ManualClock(start=1_700_000_000.0)
    store = fresh_store(clock)
    big = {"rows": ["x" * 1000 for _ in range(200)]}  # 200 KB: seven properties' worth
    job, _ = store.create(StoreContract.make_job(clock, manifest=big))
    assert store.get(job.id) == job
    entity = store.client.get_entity("j|" + job.id, "")
    assert "doc6" in entity and all(len(entity[f"doc{n}"]) <= 30_000 for n in range(1, 7))
    too_big = StoreContract.make_job(clock, manifest={"x": "y" * 500_000})
    with pytest.raises(ValueError, match="more than a Table Storage entity holds"):
        store.create(too_big)
    assert store.get(too_big.id) is None
    store.client.delete_table()
    store.close()


def test_bulk_creates_split_transactions_at_100_operations(storage: str) -> None:
    clock = ManualClock(start=1_700_000_000.0)
    store = fresh_store(clock, pending_shards=1)
    jobs = [
        StoreContract.make_job(clock, status=JobStatus.QUEUED) for _ in range(TRANSACTION_MAX + 5)
    ]
    results = store.create_many(jobs)
    assert all(created for _, created in results)
    listed = StoreContract.all_pages(store, "tenant-a", limit=50)
    assert sum(len(page) for page in listed) == len(jobs)
    assert len(store.list_pending(updated_before=clock.now() + 1, limit=200).items) == len(jobs)
    store.client.delete_table()
    store.close()
