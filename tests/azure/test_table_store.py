"""The store contract, unchanged, against AzureTableJobStore on Azurite (a fresh table per
test, large manifests in a fresh Blob Storage container), its outage contract, plus what
only Table Storage has: index rows a crash or a lost race leaves behind, the property-size
split, transactions over 100 operations."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from azure.core.pipeline import PipelineRequest
from azure.data.tables import TableClient, UpdateMode

from core.adapters.azure.blob_store import AzureBlobStore
from core.adapters.azure.clients import CONNECTION_SETTING
from core.adapters.azure.table_layout import key_part, newest_first, oldest_first
from core.adapters.azure.table_store import (
    TRANSACTION_MAX,
    AzureTableJobStore,
    parse_url,
)
from core.adapters.clock import ManualClock
from core.adapters.stores import open_store
from core.adapters.stores._base import JobRow
from core.adapters.stores._records import dump_job
from core.domain.errors import PayloadTooLargeError
from core.domain.job import Job, JobStatus
from core.ports import BlobStore
from tests.azure.azurite import ACCOUNT, KEY
from tests.azure.conftest import unique
from tests.contract.accepted_input import AcceptedInputContract
from tests.contract.store_contract import BulkStoreContract, StoreContract
from tests.contract.store_outage import OUTAGE_LIMITS, StoreOutageContract
from tests.support.blobs import MemoryBlobs

NOW = 1_700_000_000.0


class AzuriteBlobs(AzureBlobStore):
    """Blob Storage on Azurite behind the real adapter, plus a listing of what the
    container holds."""

    def stored_keys(self) -> set[str]:
        container = self.service.get_container_client(self.container)
        return {str(blob.name) for blob in container.list_blobs()}


@pytest.fixture
def manifest_blobs(storage: str) -> Iterator[AzuriteBlobs]:
    blobs = AzuriteBlobs(unique("manifests"))
    blobs.create_container()
    yield blobs
    blobs.service.delete_container(blobs.container)
    blobs.close()


def fresh_store(clock: ManualClock, **options: Any) -> AzureTableJobStore:
    store = AzureTableJobStore(unique("jobs"), clock=clock, **options)
    store.create_table()
    return store


def drop(store: AzureTableJobStore) -> None:
    store.client.delete_table()
    store.close()


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
    """The layout of core.adapters.azure.table_layout, written with the SDK's own client."""
    exp = {} if expires_at is None else {"exp": expires_at}
    job = {"PartitionKey": "j|" + key_part(job_id), "RowKey": "", "kind": "job", "id": job_id}
    job.update({"v": 1, "tenant": tenant, "st": status, "ca": created_at, "ua": updated_at})
    client.upsert_entity({**job, **exp, "doc": raw}, mode=UpdateMode.REPLACE)
    index = {"kind": "ix", "job": job_id, "v": 1, "ca": created_at, **exp}
    order = newest_first(created_at, job_id)
    tenant_pk = "t|" + key_part(tenant)
    client.upsert_entity({**index, "PartitionKey": tenant_pk, "RowKey": "a|" + order})
    status_row = {**index, "PartitionKey": tenant_pk, "RowKey": f"s|{status}|{order}"}
    client.upsert_entity({**status_row, "st": status})
    if status not in ("succeeded", "failed", "rejected"):
        pending = {"kind": "ix", "job": job_id, "v": 1, "ua": updated_at, **exp}
        client.upsert_entity(
            {**pending, "PartitionKey": "p|0", "RowKey": oldest_first(updated_at, job_id)}
        )


def row_of(job: Job) -> JobRow:
    return JobRow.of(job, dump_job(job))


def index_rows_of(store: AzureTableJobStore, job_id: str) -> list[Any]:
    rows = store.client.query_entities("kind eq 'ix' and job eq @id", parameters={"id": job_id})
    return list(rows)


class TestAzureTableStore(BulkStoreContract, AcceptedInputContract):
    # Every operation is an HTTP round trip to a node process on the same two cores.
    race_threads = 16
    cas_increments = 6

    @pytest.fixture
    def store(self, clock: ManualClock, blobs: BlobStore) -> Iterator[AzureTableJobStore]:
        # By URL, as deployed: the blob store reaches the store through open_store's path.
        url = f"azuretables://{unique('jobs')}?pending_shards=3"
        store = AzureTableJobStore.from_url(url, clock=clock, blobs=blobs)
        store.create_table()
        yield store
        drop(store)

    @pytest.fixture
    def blobs(self, manifest_blobs: AzuriteBlobs) -> AzuriteBlobs:
        return manifest_blobs

    def blob_keys(self, blobs: BlobStore) -> set[str]:
        assert isinstance(blobs, AzuriteBlobs)
        return blobs.stored_keys()

    def plant_raw(self, store: Any, **row: Any) -> None:
        plant_entities(store.client, **row)


class TestAzureTableOutage(StoreOutageContract):
    @pytest.fixture
    def unreachable_store(
        self, endpoint: str, monkeypatch: pytest.MonkeyPatch
    ) -> Iterator[AzureTableJobStore]:
        # The account's table endpoint goes nowhere; as deployed, large manifests have
        # a blob store (so the sweep has leases to look for).
        connection = (
            f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={KEY};"
            f"TableEndpoint=http://{endpoint}/{ACCOUNT};"
        )
        monkeypatch.setenv(CONNECTION_SETTING, connection)
        store = AzureTableJobStore(unique("jobs"), blobs=MemoryBlobs(), limits=OUTAGE_LIMITS)
        yield store
        store.close()


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
        "azuretables://ok?pending_shards=x",
        "dynamodb://ok",
    ],
)
def test_bad_urls_are_refused(url: str) -> None:
    with pytest.raises(ValueError):
        parse_url(url)


def test_open_store_by_url_passes_the_blob_store_on(
    storage: str, manifest_blobs: AzuriteBlobs
) -> None:
    table = unique("jobs")
    store = open_store(f"azuretables://{table}?pending_shards=2", blobs=manifest_blobs)
    assert isinstance(store, AzureTableJobStore) and store.table == table
    assert store.pending_partitions == 2
    store.create_table()
    store.ping()
    # A manifest no entity can hold goes to the blob store open_store was given.
    clock = ManualClock(start=NOW)
    limit = StoreContract.item_limit(store)
    job, _ = store.create(StoreContract.make_job(clock, manifest=StoreContract.big_manifest(limit)))
    assert len(manifest_blobs.stored_keys()) == 1
    assert store.get(job.id) == job
    drop(store)


def test_a_crash_between_the_index_and_the_job_write_hides_nothing(storage: str) -> None:
    # The index rows of a state are written first: a writer that dies before the job
    # write leaves rows pointing at a state the job does not have. Readers skip them.
    clock = ManualClock(start=NOW)
    store = fresh_store(clock)
    job, _ = store.create(StoreContract.make_job(clock, status=JobStatus.QUEUED))
    ahead = job.replace(version=2, status=JobStatus.RUNNING, updated_at=clock.now() + 5)
    store._write_index(store._index_rows(row_of(ahead)))  # ...and the process dies here
    orphan = StoreContract.make_job(clock, status=JobStatus.RUNNING, created_at=clock.now() + 1)
    store._write_index(store._index_rows(row_of(orphan.replace(version=1))))  # a create that died
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
    order = newest_first(job.created_at, job.id)
    assert sorted(str(row["RowKey"]) for row in index_rows_of(store, job.id)) == sorted(
        ["a|" + order, "s|running|" + order, oldest_first(saved.updated_at, job.id)]
    )
    drop(store)


def test_a_lost_create_leaves_the_winners_index_rows_to_the_winners_expiry(
    storage: str,
) -> None:
    # The loser of a create writes its index rows first, like every writer; when it has
    # the winner's id and created_at they are the winner's rows, now carrying the loser's
    # expiry. The sweep must not take a live job out of its listings at that expiry.
    clock = ManualClock(start=NOW)
    store = fresh_store(clock)
    winner, _ = store.create(
        StoreContract.make_job(clock, status=JobStatus.RUNNING, expires_at=NOW + 1000)
    )
    assert store.create(winner.replace(version=0, expires_at=NOW + 10)) == (winner, False)
    clock.advance(20)
    assert store.delete_expired(now=clock.now()).skipped == 0
    assert store.list_jobs("tenant-a").items == [winner]
    assert store.list_jobs("tenant-a", status=JobStatus.RUNNING).items == [winner]
    assert store.list_pending(updated_before=clock.now(), limit=10).items == [winner]
    # The sweep set the rows' expiry back to the job's: the next sweep does not meet them.
    assert {row.get("exp") for row in index_rows_of(store, winner.id)} == {NOW + 1000}
    drop(store)


def test_the_sweep_takes_an_expired_jobs_index_rows_and_leaves_the_live_ones(
    storage: str,
) -> None:
    clock = ManualClock(start=NOW)
    store = fresh_store(clock)
    gone, _ = store.create(
        StoreContract.make_job(clock, status=JobStatus.RUNNING, expires_at=NOW + 10)
    )
    kept, _ = store.create(StoreContract.make_job(clock, status=JobStatus.RUNNING))
    clock.advance(20)
    assert store.delete_expired(now=clock.now()).removed == 1
    assert index_rows_of(store, gone.id) == []
    assert len(index_rows_of(store, kept.id)) == 3
    drop(store)


def test_a_release_that_meets_a_new_holder_leaves_the_key_to_it(storage: str) -> None:
    # The old holder releases its expired key late; between its read and its delete the
    # key is claimed anew (by another instance). The delete's If-Match fails: the release
    # reads again, finds the key is no longer its own, and leaves it.
    clock = ManualClock(start=NOW)
    other = fresh_store(clock)
    other.claim_key("k", "job-1", expires_at=NOW + 1, now=NOW)
    claimed: list[str] = []

    def claim_before_the_delete(request: PipelineRequest[Any]) -> None:
        if request.http_request.method == "DELETE" and not claimed:
            claimed.append(other.claim_key("k", "job-2", expires_at=NOW + 60, now=NOW + 1))

    client = TableClient.from_connection_string(
        storage, other.table, raw_request_hook=claim_before_the_delete
    )
    late = AzureTableJobStore(other.table, clock=clock, client=client)
    late.release_key("k", "job-1")
    assert claimed == ["job-2"]
    assert late.lookup_key("k", now=NOW + 1) == "job-2"
    late.close()
    drop(other)


def test_a_document_over_one_property_is_split_and_read_back(storage: str) -> None:
    clock = ManualClock(start=NOW)
    store = fresh_store(clock)  # no blob store
    big = {"rows": ["x" * 1000 for _ in range(200)]}  # 200 KB: seven properties' worth
    job, _ = store.create(StoreContract.make_job(clock, manifest=big))
    assert store.get(job.id) == job
    entity = store.client.get_entity("j|" + job.id, "")
    assert "doc6" in entity and all(len(entity[f"doc{n}"]) <= 30_000 for n in range(1, 7))
    # Past one entity, without a blob store to keep the manifest: refused, nothing written.
    too_big = StoreContract.make_job(clock, manifest={"x": "y" * 500_000})
    with pytest.raises(PayloadTooLargeError) as caught:
        store.create(too_big)
    assert caught.value.code == "job_too_large"
    assert store.get(too_big.id) is None
    assert store.list_jobs("tenant-a").items == [job]
    drop(store)


def test_bulk_creates_split_transactions_at_100_operations(storage: str) -> None:
    clock = ManualClock(start=NOW)
    store = fresh_store(clock, pending_shards=1)
    jobs = [
        StoreContract.make_job(clock, status=JobStatus.QUEUED) for _ in range(TRANSACTION_MAX + 5)
    ]
    results = store.create_many(jobs)
    assert all(created for _, created in results)
    listed = StoreContract.all_pages(store, "tenant-a", limit=50)
    assert sum(len(page) for page in listed) == len(jobs)
    assert len(store.list_pending(updated_before=clock.now() + 1, limit=200).items) == len(jobs)
    drop(store)


def test_bulk_creates_keep_large_manifests_in_the_blob_store(
    storage: str, manifest_blobs: AzuriteBlobs
) -> None:
    clock = ManualClock(start=NOW)
    store = fresh_store(clock, blobs=manifest_blobs)
    manifest = StoreContract.big_manifest(StoreContract.item_limit(store))
    large = StoreContract.make_job(clock, status=JobStatus.SUCCEEDED, manifest=manifest)
    small = StoreContract.make_job(clock)
    stored = large.replace(version=1)
    # A duplicate within the call names the same blob: the winner's is kept, not deleted.
    assert store.create_many([large, small, large.replace(extras={"again": True})]) == [
        (stored, True),
        (small.replace(version=1), True),
        (stored, False),
    ]
    assert len(manifest_blobs.stored_keys()) == 1
    assert store.get(large.id) == stored
    assert store.list_jobs("tenant-a", status=JobStatus.SUCCEEDED).items == [stored]
    drop(store)
