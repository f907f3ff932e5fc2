"""The blob contract against S3BlobStore on moto's server (presigned URLs used over real
HTTP), and a dead S3 endpoint answering an upload with 503 and Retry-After."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from urllib.parse import parse_qs, urlsplit

import pytest

from core.adapters.aws import clients
from core.adapters.aws.s3_blobs import S3BlobStore, parse_url
from core.adapters.outages import CallLimits
from core.api.app import HttpApp
from core.api.auth import hash_key
from core.api.http import Headers, Request
from tests.aws.conftest import unique
from tests.contract.blob_contract import (
    PNG,
    BlobContract,
    BlobOutageContract,
    SigningBlobContract,
)
from tests.fakes import make_services
from tests.support.outage import dead_port, timed


@pytest.fixture
def bucket(moto_url: str) -> Iterator[str]:
    name = unique("blobs")
    s3 = clients.client("s3")
    s3.create_bucket(Bucket=name)
    yield name
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=name):
        for obj in page.get("Contents", []):
            s3.delete_object(Bucket=name, Key=obj["Key"])
    s3.delete_bucket(Bucket=name)


class TestS3Blobs(BlobContract, SigningBlobContract, BlobOutageContract):
    @pytest.fixture
    def blobs(self, bucket: str) -> Iterator[S3BlobStore]:
        store = S3BlobStore(bucket, "fn/")
        yield store
        store.close()

    @pytest.fixture
    def locate(self, bucket: str) -> Callable[[str], tuple[str, str]]:
        def find(key: str) -> tuple[str, str]:
            listed = clients.client("s3").list_objects_v2(Bucket=bucket)
            [name] = [o["Key"] for o in listed.get("Contents", []) if o["Key"].endswith(key)]
            return bucket, name

        return find

    @pytest.fixture
    def outage_blobs(self, moto_url: str) -> Iterator[Callable[[int, CallLimits], S3BlobStore]]:
        made: list[S3BlobStore] = []

        def make(port: int, limits: CallLimits) -> S3BlobStore:
            store = S3BlobStore(
                "no-bucket", "fn/", endpoint_url=f"http://127.0.0.1:{port}", limits=limits
            )
            made.append(store)
            return store

        yield make
        for store in made:
            store.close()


def test_the_presigned_put_signs_type_and_length(bucket: str) -> None:
    """S3 itself then refuses another size or type (moto does not check signatures, so
    what is proven here is that both are signed)."""
    signed = S3BlobStore(bucket).signed_put_url(
        "incoming/t/j", content_type="image/png", size=123, expires_s=60
    )
    assert signed is not None
    query = parse_qs(urlsplit(signed.url).query)
    assert query["X-Amz-Algorithm"] == ["AWS4-HMAC-SHA256"]
    assert query["X-Amz-SignedHeaders"] == ["content-length;content-type;host"]
    assert signed.headers == {"Content-Type": "image/png", "Content-Length": "123"}


def test_url_options(moto_url: str) -> None:
    assert parse_url("s3://b") == ("b", "", {})
    assert parse_url(f"s3://b/some/prefix?endpoint={moto_url}&addressing=path") == (
        "b",
        "some/prefix/",
        {"endpoint": moto_url, "addressing": "path"},
    )
    for bad in ("s3://", "gs://b", "s3://b?colour=red", "s3://b?addressing=sideways", "s3://b#x"):
        with pytest.raises(ValueError):
            parse_url(bad)


def test_an_upload_to_a_dead_s3_answers_503_with_retry_after(moto_url: str) -> None:
    """Through the HTTP surface: the image is kept before the job exists, so a dead blob
    store must answer 503 (retry later) in seconds, not 500 after minutes."""
    limits = CallLimits(connect_s=0.5, read_s=0.5, attempts=2, retry_s=1.0)
    blobs = S3BlobStore("b", endpoint_url=f"http://127.0.0.1:{dead_port()}", limits=limits)
    services = make_services(api_key_hashes={hash_key("k"): "t"})
    services.blobs = blobs
    request = Request(
        "POST",
        "/v1/jobs",
        Headers({"Authorization": "Bearer k", "Content-Type": "image/png"}),
        {"pattern_id": "invoice"},
        PNG,
    )
    elapsed, response = timed(lambda: HttpApp(services).handle(request))
    assert not isinstance(response, BaseException)
    assert response.status == 503, response.body
    assert response.json_body()["error"]["code"] == "store_unavailable"
    assert response.json_body()["error"]["details"] == {
        "backend": "S3",
        "reason": "EndpointConnectionError",
    }
    assert response.headers.get("retry-after") == "5"
    assert elapsed < limits.worst_case_s + 2
    assert services.store.list_jobs("t").items == []  # no job without its image
    blobs.close()


def test_a_missing_bucket_is_a_deployment_mistake_not_an_outage(moto_url: str) -> None:
    blobs = S3BlobStore(unique("never-created"))
    with pytest.raises(clients.ClientError) as caught:
        blobs.put("uploads/t/a", PNG, "image/png")
    assert clients.error_code(caught.value) == "NoSuchBucket"
    blobs.close()
