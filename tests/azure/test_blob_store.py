"""The blob contract against AzureBlobStore on Azurite (SAS URLs used over real HTTP),
and what a SAS cannot do: bind the size or type of an upload."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from azure.storage.blob import BlobServiceClient

from core.adapters.azure.blob_store import AzureBlobStore, parse_url
from core.adapters.outages import CallLimits
from core.adapters.registry import open_adapter
from tests.azure.conftest import unique
from tests.contract.blob_contract import PNG, BlobContract, BlobOutageContract, SigningBlobContract


@pytest.fixture
def container(storage: str) -> Iterator[str]:
    name = unique("blobs")
    AzureBlobStore(name).create_container()
    yield name
    BlobServiceClient.from_connection_string(storage).delete_container(name)


class TestAzureBlobs(BlobContract, SigningBlobContract, BlobOutageContract):
    @pytest.fixture
    def blobs(self, container: str) -> Iterator[AzureBlobStore]:
        store = AzureBlobStore(container, "fn/")
        yield store
        store.close()

    @pytest.fixture
    def locate(self, storage: str, container: str) -> Callable[[str], tuple[str, str]]:
        def find(key: str) -> tuple[str, str]:
            client = BlobServiceClient.from_connection_string(storage)
            names = [b.name for b in client.get_container_client(container).list_blobs()]
            [name] = [n for n in names if n.endswith(key)]
            return container, name

        return find

    @pytest.fixture
    def outage_blobs(self) -> Iterator[Callable[[int, CallLimits], AzureBlobStore]]:
        made: list[AzureBlobStore] = []

        def make(port: int, limits: CallLimits) -> AzureBlobStore:
            connection = (
                "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=a2V5;"
                f"BlobEndpoint=http://127.0.0.1:{port}/devstoreaccount1;"
            )
            store = AzureBlobStore("gone", connection=connection, limits=limits)
            made.append(store)
            return store

        yield make
        for store in made:
            store.close()


def test_the_upload_sas_is_one_blob_write_only_and_short(container: str) -> None:
    store = AzureBlobStore(container)
    signed = store.signed_put_url("incoming/t/j", content_type="image/png", size=3, expires_s=60)
    assert signed is not None
    query = parse_qs(urlsplit(signed.url).query)
    assert query["sr"] == ["b"]  # one blob, not the container
    assert query["sp"] == ["cw"]  # create + write: no read, list or delete
    assert signed.headers == {"Content-Type": "image/png", "x-ms-blob-type": "BlockBlob"}
    # Write-only: the same SAS cannot read the blob back.
    assert httpx.put(signed.url, headers=signed.headers, content=PNG).status_code == 201
    assert httpx.get(signed.url).status_code == 403
    # A SAS binds neither size nor type: a different upload lands too, and is judged on
    # landing (core.service.uploads), which describe() feeds.
    other = {"Content-Type": "text/plain", "x-ms-blob-type": "BlockBlob"}
    assert httpx.put(signed.url, headers=other, content=b"x" * 10).status_code == 201
    info = store.describe("incoming/t/j")
    assert info is not None and (info.size, info.content_type) == (10, "text/plain")
    assert httpx.put(signed.url.split("?")[0], headers=signed.headers, content=PNG).status_code in (
        401,
        403,
        404,
    )
    store.close()


def test_open_by_url_and_url_forms(container: str) -> None:
    store = open_adapter("blobs", f"azureblob://{container}/fn")
    assert isinstance(store, AzureBlobStore) and store.prefix == "fn"
    store.put("uploads/t/a", PNG, "image/png")
    assert store.get("uploads/t/a") == PNG
    assert parse_url("azureblob://c") == ("c", "")
    for bad in ("azureblob://", "gs://b", "azureblob://c?x=1", "azureblob://c#f"):
        with pytest.raises(ValueError):
            parse_url(bad)
