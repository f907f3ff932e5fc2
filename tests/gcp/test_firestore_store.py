"""The store contract, unchanged, against FirestoreJobStore on Google's Firestore emulator
(real transactions, preconditions and queries), plus what only Firestore has."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from google.cloud import firestore

from core.adapters.clock import ManualClock
from core.adapters.stores import open_store
from core.adapters.stores.firestore import FirestoreJobStore, doc_id, parse_url
from core.ports import BlobStore
from tests.contract.accepted_input import AcceptedInputContract
from tests.contract.store_contract import StoreContract
from tests.contract.store_outage import OUTAGE_LIMITS, StoreOutageContract
from tests.support.blobs import MemoryBlobs


class TestFirestoreStore(StoreContract, AcceptedInputContract):
    @pytest.fixture
    def store(
        self, clock: ManualClock, blobs: BlobStore, firestore_host: str, collection_prefix: str
    ) -> Iterator[FirestoreJobStore]:
        store = FirestoreJobStore(collection_prefix, clock=clock, blobs=blobs)
        yield store
        store.close()

    def plant_raw(
        self,
        store: Any,
        *,
        job_id: str,
        tenant: str,
        raw: str,
        created_at: float,
        updated_at: float,
        status: str,
        expires_at: float | None,
    ) -> None:
        # The document layout of _job_fields, written by the emulator's own client.
        fields = {
            "id": job_id,
            "tenant": tenant,
            "status": status,
            "pending": status not in ("succeeded", "failed", "rejected"),
            "version": 1,
            "created_at": created_at,
            "updated_at": updated_at,
            "exp": expires_at,
            "expires_at": None if expires_at is None else datetime.fromtimestamp(expires_at, UTC),
            "doc": raw,
        }
        client = firestore.Client()
        client.collection(f"{store.prefix}_jobs").document(doc_id(job_id)).set(fields)
        client.close()


class TestFirestoreOutage(StoreOutageContract):
    @pytest.fixture
    def unreachable_store(
        self, endpoint: str, collection_prefix: str, monkeypatch: pytest.MonkeyPatch
    ) -> Iterator[FirestoreJobStore]:
        monkeypatch.setenv("FIRESTORE_EMULATOR_HOST", endpoint)
        store = FirestoreJobStore(collection_prefix, blobs=MemoryBlobs(), limits=OUTAGE_LIMITS)
        yield store
        store.close()


def test_open_store_by_url(firestore_host: str, collection_prefix: str) -> None:
    store = open_store(f"firestore://{collection_prefix}")
    assert isinstance(store, FirestoreJobStore)
    store.ping()
    store.close()


@pytest.mark.parametrize(
    "url",
    [
        "firestore://",
        "firestore://1starts-with-digit",
        "firestore://has/slash",
        "firestore://ok?bogus=1",
        "firestore://ok#frag",
    ],
)
def test_bad_urls_are_refused(url: str) -> None:
    with pytest.raises(ValueError):
        parse_url(url)


def test_url_options() -> None:
    assert parse_url("firestore://imggo?project=p1&database=db2") == ("imggo", "p1", "db2")
    assert parse_url("firestore://imggo") == ("imggo", None, None)


def test_missing_project_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    # Without a project the client library would ask the metadata server for one.
    monkeypatch.delenv("GOOGLE_CLOUD_PROJECT", raising=False)
    with pytest.raises(ValueError, match="GOOGLE_CLOUD_PROJECT"):
        FirestoreJobStore.from_url("firestore://imggo")


def test_document_ids_are_always_legal() -> None:
    assert doc_id("job-1") == "job-1"
    for raw in ("a/b", "__x__", ".", "..", "x" * 400, "ü"):
        made = doc_id(raw)
        assert made.startswith("~") and "/" not in made
    assert doc_id("a/b") != doc_id("a/c")


def test_ttl_field_is_a_timestamp_and_float_expiry_rules(
    firestore_host: str, collection_prefix: str
) -> None:
    clock = ManualClock(start=1_700_000_000.25)
    store = FirestoreJobStore(collection_prefix, clock=clock)
    job = StoreContract.make_job(clock, id="job/with/slashes", expires_at=clock.now() + 30.5)
    store.create(job)
    client = firestore.Client()
    raw = client.collection(f"{collection_prefix}_jobs").document(doc_id(job.id)).get().to_dict()
    assert raw is not None
    # The TTL policy's field: a real Timestamp at the same instant.
    assert isinstance(raw["expires_at"], datetime)
    assert raw["expires_at"] == datetime.fromtimestamp(1_700_000_030.75, tz=UTC)
    assert raw["exp"] == 1_700_000_030.75 and raw["pending"] is True
    store.claim_key("k/1", job.id, expires_at=None, now=clock.now())
    key_raw = client.collection(f"{collection_prefix}_keys").document(doc_id("k/1")).get()
    assert key_raw.to_dict()["expires_at"] is None  # null: a TTL policy never deletes it
    clock.advance(30.5)
    assert store.get(job.id) is None  # hidden at the instant, before any sweep
    assert store.lookup_key("k/1", now=clock.now()) == job.id
    client.close()
    store.close()
