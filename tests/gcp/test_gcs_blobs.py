"""The blob contract against GcsBlobStore, through google-cloud-storage, on the loopback
GCS stand-in, with V4 URLs signed by a throwaway service-account key and verified by
the stand-in; and what only GCS signing has (the signed size range)."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from core.adapters.gcp.gcs_blobs import BUCKET_METADATA_OFF_ENV, GcsBlobStore, parse_url
from core.adapters.outages import CallLimits
from core.bootstrap import open_blobs
from core.config import Settings
from tests.contract.blob_contract import BlobContract, BlobOutageContract, SigningBlobContract
from tests.gcp.gcs_standin import GcsStandIn
from tests.gcp.sa_key import ServiceAccountKey, throwaway_key
from tests.support.images import png

BUCKET = "imggo-test-bucket"


@pytest.fixture(scope="module")
def sa_key(tmp_path_factory: pytest.TempPathFactory) -> ServiceAccountKey:
    return throwaway_key(tmp_path_factory.mktemp("sa"))


@pytest.fixture(scope="module")
def standin(sa_key: ServiceAccountKey) -> Iterator[GcsStandIn]:
    server = GcsStandIn(sa_key.public_key)
    yield server
    server.close()


@pytest.fixture
def gcs_env(
    standin: GcsStandIn, sa_key: ServiceAccountKey, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", standin.url)
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(sa_key.path))


@pytest.fixture
def blobs(gcs_env: None) -> Iterator[GcsBlobStore]:
    store = GcsBlobStore.from_url(f"gs://{BUCKET}/fn")
    yield store
    store.close()


class TestGcsBlobs(BlobContract, SigningBlobContract, BlobOutageContract):
    @pytest.fixture
    def blobs(self, gcs_env: None) -> Iterator[GcsBlobStore]:
        # A bucket per test: the stand-in is shared by the module, the store is fresh.
        store = GcsBlobStore.from_url(f"gs://b-{uuid.uuid4().hex[:12]}/fn")
        yield store
        store.close()

    @pytest.fixture
    def locate(self, blobs: GcsBlobStore, standin: GcsStandIn) -> Callable[[str], tuple[str, str]]:
        def find(key: str) -> tuple[str, str]:
            [name] = [n for n in standin.names(blobs.bucket) if n.endswith(key)]
            return blobs.bucket, name

        return find

    @pytest.fixture
    def outage_blobs(
        self, gcs_env: None, monkeypatch: pytest.MonkeyPatch
    ) -> Iterator[Callable[[int, CallLimits], GcsBlobStore]]:
        made: list[GcsBlobStore] = []

        def make(port: int, limits: CallLimits) -> GcsBlobStore:
            # The client reads STORAGE_EMULATOR_HOST when it is built, on first use.
            monkeypatch.setenv("STORAGE_EMULATOR_HOST", f"http://127.0.0.1:{port}")
            store = GcsBlobStore(BUCKET, "fn", limits=limits)
            made.append(store)
            return store

        yield make
        for store in made:
            store.close()


def test_signed_put_is_bound_to_type_and_size(blobs: GcsBlobStore, standin: GcsStandIn) -> None:
    data = png(2)
    signed = blobs.signed_put_url(
        "incoming/tenant-a/0b6a3d0e-1111-4a4a-9c9c-000000000001",
        content_type="image/png",
        size=len(data),
        expires_s=900,
    )
    assert signed is not None and signed.method == "PUT"
    assert signed.headers == {
        "Content-Type": "image/png",
        "x-goog-content-length-range": f"{len(data)},{len(data)}",
    }
    query = parse_qs(urlsplit(signed.url).query)
    assert query["X-Goog-Algorithm"] == ["GOOG4-RSA-SHA256"]
    assert query["X-Goog-SignedHeaders"] == ["content-type;host;x-goog-content-length-range"]
    assert signed.url.startswith(f"{standin.url}/{BUCKET}/fn/incoming/tenant-a/")

    too_big = httpx.put(signed.url, headers=signed.headers, content=data + b"x")
    assert too_big.status_code == 400, too_big.text
    wrong_type = httpx.put(
        signed.url, headers={**signed.headers, "Content-Type": "image/gif"}, content=data
    )
    assert wrong_type.status_code == 403 and "SignatureDoesNotMatch" in wrong_type.text
    unsigned_range = httpx.put(signed.url, headers={"Content-Type": "image/png"}, content=data)
    assert unsigned_range.status_code == 403
    ok = httpx.put(signed.url, headers=signed.headers, content=data)
    assert ok.status_code == 200, ok.text
    assert blobs.get("incoming/tenant-a/0b6a3d0e-1111-4a4a-9c9c-000000000001") == data


@pytest.mark.parametrize("url", ["gs://", "s3://b/p", "gs://b/p?x=1"])
def test_bad_urls(url: str) -> None:
    with pytest.raises(ValueError):
        parse_url(url)


def test_bootstrap_picks_gcs_by_scheme(tmp_path: Path) -> None:
    blobs = open_blobs(Settings(blob_url="gs://bkt/some/prefix", data_dir=str(tmp_path)))
    assert isinstance(blobs, GcsBlobStore)
    assert (blobs.bucket, blobs.prefix) == ("bkt", "some/prefix")


def test_object_calls_never_read_the_bucket(
    gcs_env: None, standin: GcsStandIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The deployed role is object-only, so GCS denies a bucket read and audit-logs it as
    an ERROR: google-cloud-storage 3.11+ makes one on a thread of its own at the first
    object call unless told not to (core.adapters.gcp.gcs_blobs: No bucket reads)."""
    monkeypatch.delenv(BUCKET_METADATA_OFF_ENV, raising=False)  # as in a fresh instance
    bucket = f"b-{uuid.uuid4().hex[:12]}"
    store = GcsBlobStore(bucket, "fn")
    try:
        store.put("uploads/t/a", png(1), "image/png")
        assert store.get("uploads/t/a") == png(1)
        assert store.describe("uploads/t/a") is not None
        store.delete("uploads/t/a")
        time.sleep(1.0)  # the library's thread asks at once; give a busy machine a second
    finally:
        store.close()
    asked = [(m, p) for m, p, _ in standin.requests if bucket in p]
    assert asked and not [(m, p) for m, p in asked if p == f"/storage/v1/b/{bucket}"], asked


def test_a_deployer_who_wants_the_bucket_labels_keeps_them(
    gcs_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(BUCKET_METADATA_OFF_ENV, "false")
    GcsBlobStore("bkt", "fn").close()
    assert os.environ[BUCKET_METADATA_OFF_ENV] == "false"
