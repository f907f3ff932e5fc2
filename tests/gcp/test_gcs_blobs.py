"""GcsBlobStore through google-cloud-storage against the loopback GCS stand-in, with V4
URLs signed by a throwaway service-account key and verified by the stand-in."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from core.adapters.gcp.gcs_blobs import GcsBlobStore, parse_url
from core.bootstrap import open_blobs
from core.config import Settings
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
def blobs(
    standin: GcsStandIn, sa_key: ServiceAccountKey, monkeypatch: pytest.MonkeyPatch
) -> Iterator[GcsBlobStore]:
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", standin.url)
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(sa_key.path))
    store = GcsBlobStore.from_url(f"gs://{BUCKET}/fn")
    yield store
    store.close()


def test_put_get_round_trip(blobs: GcsBlobStore, standin: GcsStandIn) -> None:
    data = png(1)
    blobs.put("uploads/tenant-a/abc", data, "image/png")
    assert blobs.get("uploads/tenant-a/abc") == data
    assert "fn/uploads/tenant-a/abc" in standin.names(BUCKET)
    assert standin.objects[(BUCKET, "fn/uploads/tenant-a/abc")].content_type == "image/png"
    assert blobs.get("uploads/tenant-a/nothing") is None


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


def test_signed_get_fetches_the_object(blobs: GcsBlobStore) -> None:
    data = png(3)
    blobs.put("uploads/tenant-a/get-me", data, "image/png")
    url = blobs.signed_get_url("uploads/tenant-a/get-me", expires_s=3600)
    assert url is not None
    fetched = httpx.get(url)
    assert fetched.status_code == 200 and fetched.content == data
    tampered = url.replace("get-me", "get-you")
    assert httpx.get(tampered).status_code == 403


def test_key_for_maps_event_names_back(blobs: GcsBlobStore) -> None:
    assert blobs.key_for(BUCKET, "fn/incoming/t/j") == "incoming/t/j"
    assert blobs.key_for(BUCKET, "other/incoming/t/j") is None
    assert blobs.key_for("another-bucket", "fn/incoming/t/j") is None
    assert GcsBlobStore("b").key_for("b", "incoming/t/j") == "incoming/t/j"


def test_unsafe_keys_are_refused(blobs: GcsBlobStore) -> None:
    for key in ("", "/abs", "a/../b"):
        with pytest.raises(ValueError):
            blobs.object_name(key)


@pytest.mark.parametrize("url", ["gs://", "s3://b/p", "gs://b/p?x=1"])
def test_bad_urls(url: str) -> None:
    with pytest.raises(ValueError):
        parse_url(url)


def test_bootstrap_picks_gcs_by_scheme(tmp_path: Path) -> None:
    blobs = open_blobs(Settings(blob_url="gs://bkt/some/prefix", data_dir=str(tmp_path)))
    assert isinstance(blobs, GcsBlobStore)
    assert (blobs.bucket, blobs.prefix) == ("bkt", "some/prefix")
