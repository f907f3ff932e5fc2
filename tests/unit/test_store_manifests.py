"""The large-manifest mechanism's own edges, on the memory store with an item limit (the
contract proves the rest on every backend): what a blob is called, what cannot be
stored at all, and a blob store that cannot delete."""

from __future__ import annotations

import pytest

from core.adapters.blobs import check_key
from core.adapters.clock import ManualClock
from core.adapters.stores._manifests import blob_key
from core.adapters.stores.memory import MemoryJobStore
from core.domain.errors import PayloadTooLargeError
from core.domain.job import Job, JobSource, JobStatus
from tests.support.blobs import MemoryBlobs

LIMIT = 4096


def job(**changes: object) -> Job:
    fields: dict[str, object] = {
        "id": "tenant secret/job 1",
        "tenant": "acme",
        "pattern_id": "p",
        "source": JobSource(kind="url", url="https://img.example/a.png"),
        "created_at": 1_700_000_000.0,
        "updated_at": 1_700_000_000.0,
        "status": JobStatus.SUCCEEDED,
    }
    fields.update(changes)
    return Job(**fields)  # type: ignore[arg-type]


def big(tag: str = "a") -> dict[str, object]:
    return {"text": tag * (2 * LIMIT)}


def test_a_blob_name_is_safe_says_nothing_and_is_its_versions_own() -> None:
    one = job(version=2)
    key = blob_key(one, "ab" * 32)
    assert check_key(key) == key  # every blob store takes it
    assert "secret" not in key and "acme" not in key
    assert blob_key(one, "ab" * 32) == key  # a retried write names the same blob
    assert blob_key(one.replace(version=3), "ab" * 32) != key
    assert blob_key(one.replace(expires_at=1.0), "ab" * 32) != key  # another incarnation


def test_what_no_blob_can_save_is_refused_as_too_large() -> None:
    clock = ManualClock(start=1_700_000_000.0)
    without_blobs = MemoryJobStore(clock=clock, max_doc_bytes=LIMIT)
    with pytest.raises(PayloadTooLargeError) as caught:
        without_blobs.create(job(manifest=big()))
    assert (caught.value.status, caught.value.code) == (413, "job_too_large")
    with_blobs = MemoryJobStore(clock=clock, blobs=MemoryBlobs(), max_doc_bytes=LIMIT)
    with pytest.raises(PayloadTooLargeError):  # the manifest is not what is too long
        with_blobs.create(job(extras={"note": "x" * 2 * LIMIT}, manifest={"small": 1}))
    assert with_blobs.get(job().id) is None
