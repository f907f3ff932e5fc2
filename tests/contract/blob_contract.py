"""The BlobStore contract: the behaviour every blob store must show, written once.

Each backend runs THIS suite by subclassing the classes it qualifies for, in a module
named `test_<backend>_blobs.py`, and providing the fixtures they name:

    class TestS3Blobs(BlobContract, SigningBlobContract, BlobOutageContract):
        @pytest.fixture
        def blobs(self, moto_url): ...            # a fresh, EMPTY store, with a prefix
        @pytest.fixture
        def locate(self, blobs): ...              # key -> (bucket, object name), read
                                                  # from the backend itself
        @pytest.fixture
        def outage_blobs(self): ...               # (port, CallLimits) -> a store whose
                                                  # endpoint is 127.0.0.1:port

The suites:
- BlobContract, for every store: bytes round trip exactly (empty and binary too), a
  missing key is None, a put overwrites, `describe` gives size and type, `delete` is
  idempotent, and unsafe keys are refused by every call with the same error.
- BulkBlobContract, for stores that offer `put_many`.
- LocalBlobContract, for stores on this machine: no signed URLs (None) and no object
  events (`key_for_object` is None).
- SigningBlobContract, for cloud stores: the signed PUT and GET URLs work with a real
  HTTP request against the backend, and object names map back to keys.
- BlobOutageContract, for networked stores: a refused connection and a server that
  never answers both end in UnavailableError `store_unavailable` within the limits.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import ClassVar

import httpx
import pytest

from core.adapters.outages import CallLimits
from core.domain.errors import UnavailableError, ValidationError
from core.ports import BlobInfo, BlobStore, BulkBlobStore
from tests.support.outage import dead_port, tarpit, timed

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4
ALL_BYTES = bytes(range(256))

UNSAFE_KEYS = [
    "",
    "/abs",
    "a/",
    "a//b",
    "..",
    "../escape",
    "uploads/../../etc/passwd",
    "a/./b",
    ".",
    "a\nb",
    "a\x00b",
    "a\\b",
    "a?b",
    "a#b",
    "a%2fb",
    "ü",
    "x" * 513,
]
SAFE_KEYS = ["uploads/acme corp/abc", "a", "a.b_c-d/E F", "incoming/t/0b6a3d0e-1111-4a4a"]


def _unsafe(action: Callable[[], object]) -> ValidationError:
    with pytest.raises(ValidationError) as caught:
        action()
    return caught.value


class BlobContract:
    @pytest.mark.parametrize(
        "data",
        [PNG, b"", ALL_BYTES, b"\r\n\r\n--boundary\r\n", b"\x00" * 10_000],
        ids=["png", "empty", "all-bytes", "crlf", "zeros"],
    )
    def test_bytes_round_trip_exactly(self, blobs: BlobStore, data: bytes) -> None:
        blobs.put("uploads/acme corp/abc", data, "image/png")
        got = blobs.get("uploads/acme corp/abc")
        assert isinstance(got, bytes) and got == data

    @pytest.mark.parametrize("key", SAFE_KEYS)
    def test_safe_keys_are_kept_apart(self, blobs: BlobStore, key: str) -> None:
        blobs.put(key, key.encode(), "text/plain")
        blobs.put(key + "-2", b"other", "text/plain")
        assert blobs.get(key) == key.encode()
        assert blobs.get(key + "-2") == b"other"

    def test_a_missing_key_is_none(self, blobs: BlobStore) -> None:
        assert blobs.get("uploads/t/nothing") is None
        assert blobs.describe("uploads/t/nothing") is None
        blobs.put("uploads/t/something", PNG, "image/png")
        assert blobs.get("uploads/t/some") is None  # no prefix matching
        assert blobs.get("uploads/t") is None

    def test_put_overwrites_bytes_and_type(self, blobs: BlobStore) -> None:
        blobs.put("incoming/t/j", PNG, "image/png")
        blobs.put("incoming/t/j", b"GIF89a", "image/gif")
        assert blobs.get("incoming/t/j") == b"GIF89a"
        assert blobs.describe("incoming/t/j") == BlobInfo(size=6, content_type="image/gif")

    def test_describe_gives_size_and_content_type(self, blobs: BlobStore) -> None:
        blobs.put("uploads/t/a", PNG, "image/png")
        blobs.put("uploads/t/empty", b"", "application/octet-stream")
        assert blobs.describe("uploads/t/a") == BlobInfo(size=len(PNG), content_type="image/png")
        assert blobs.describe("uploads/t/empty") == BlobInfo(
            size=0, content_type="application/octet-stream"
        )

    def test_delete_removes_and_is_idempotent(self, blobs: BlobStore) -> None:
        blobs.put("uploads/t/a", PNG, "image/png")
        blobs.put("uploads/t/b", PNG, "image/png")
        blobs.delete("uploads/t/a")
        assert blobs.get("uploads/t/a") is None and blobs.describe("uploads/t/a") is None
        assert blobs.get("uploads/t/b") == PNG
        blobs.delete("uploads/t/a")  # already gone: not an error
        blobs.delete("uploads/t/never")

    @pytest.mark.parametrize("key", UNSAFE_KEYS)
    def test_unsafe_keys_are_refused_by_every_call(self, blobs: BlobStore, key: str) -> None:
        errors = [
            _unsafe(lambda: blobs.put(key, PNG, "image/png")),
            _unsafe(lambda: blobs.get(key)),
            _unsafe(lambda: blobs.describe(key)),
            _unsafe(lambda: blobs.delete(key)),
            _unsafe(lambda: blobs.signed_get_url(key, expires_s=60)),
            _unsafe(
                lambda: blobs.signed_put_url(key, content_type="image/png", size=3, expires_s=60)
            ),
        ]
        assert {(e.status, e.code) for e in errors} == {(422, "unsafe_blob_key")}
        assert all(len(e.message) < 200 for e in errors)  # a long key is not echoed whole

    def test_threads_share_one_store(self, blobs: BlobStore) -> None:
        payloads = {f"uploads/t/{i}": PNG + bytes([i]) for i in range(16)}
        threads = [
            threading.Thread(target=blobs.put, args=(key, data, "image/png"))
            for key, data in payloads.items()
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert {key: blobs.get(key) for key in payloads} == payloads


class BulkBlobContract:
    def test_put_many_is_put_for_each(self, blobs: BlobStore) -> None:
        assert isinstance(blobs, BulkBlobStore)
        blobs.put_many([("uploads/t/a", PNG, "image/png"), ("uploads/t/b", b"", "image/gif")])
        assert blobs.get("uploads/t/a") == PNG
        assert blobs.describe("uploads/t/b") == BlobInfo(size=0, content_type="image/gif")

    def test_put_many_with_an_unsafe_key_writes_nothing(self, blobs: BlobStore) -> None:
        assert isinstance(blobs, BulkBlobStore)
        error = _unsafe(
            lambda: blobs.put_many([("uploads/t/a", PNG, "image/png"), ("../x", PNG, "image/png")])
        )
        assert error.code == "unsafe_blob_key"
        assert blobs.get("uploads/t/a") is None


class LocalBlobContract:
    def test_local_stores_sign_no_urls(self, blobs: BlobStore) -> None:
        blobs.put("uploads/t/a", PNG, "image/png")
        assert blobs.signed_get_url("uploads/t/a", expires_s=60) is None
        signed = blobs.signed_put_url("uploads/t/a", content_type="image/png", size=3, expires_s=60)
        assert signed is None

    def test_local_stores_hear_no_object_events(self, blobs: BlobStore) -> None:
        blobs.put("incoming/t/j", PNG, "image/png")
        assert blobs.key_for_object("", "incoming/t/j") is None
        assert blobs.key_for_object("any-bucket", "incoming/t/j") is None


Locate = Callable[[str], tuple[str, str]]


class SigningBlobContract:
    def test_a_signed_put_url_takes_the_declared_upload(self, blobs: BlobStore) -> None:
        key = "incoming/acme corp/0b6a3d0e-1111-4a4a-9c9c-000000000001"
        before = time.time()
        signed = blobs.signed_put_url(key, content_type="image/png", size=len(PNG), expires_s=900)
        assert signed is not None and signed.method == "PUT"
        assert signed.headers["Content-Type"] == "image/png"
        assert before + 900 - 1 <= signed.expires_at <= time.time() + 900 + 1
        assert blobs.get(key) is None  # signing writes nothing
        put = httpx.request(signed.method, signed.url, headers=signed.headers, content=PNG)
        assert put.is_success, put.text
        assert blobs.get(key) == PNG
        assert blobs.describe(key) == BlobInfo(size=len(PNG), content_type="image/png")

    def test_a_signed_get_url_fetches_the_bytes(self, blobs: BlobStore) -> None:
        blobs.put("uploads/acme corp/get-me", ALL_BYTES, "image/png")
        url = blobs.signed_get_url("uploads/acme corp/get-me", expires_s=3600)
        assert url is not None
        fetched = httpx.get(url)
        assert fetched.status_code == 200 and fetched.content == ALL_BYTES
        missing = blobs.signed_get_url("uploads/acme corp/not-there", expires_s=3600)
        assert missing is not None and httpx.get(missing).status_code == 404

    def test_object_names_map_back_to_keys(self, blobs: BlobStore, locate: Locate) -> None:
        key = "incoming/acme corp/0b6a3d0e-1111-4a4a-9c9c-000000000002"
        blobs.put(key, PNG, "image/png")
        bucket, name = locate(key)
        assert blobs.key_for_object(bucket, name) == key
        assert blobs.key_for_object(bucket + "-other", name) is None
        assert blobs.key_for_object(bucket, "elsewhere/" + key) is None  # not under the prefix
        outside = name.removesuffix(key)
        for unsafe in ("../x", "a//b", "", "a\nb"):
            assert blobs.key_for_object(bucket, outside + unsafe) is None


OutageBlobs = Callable[[int, CallLimits], BlobStore]


class BlobOutageContract:
    # Short limits, so a test takes about a second; the production limits are checked
    # against the function timeouts in tests/unit/test_call_limits.py.
    outage_limits: ClassVar[CallLimits] = CallLimits(
        connect_s=0.5, read_s=0.5, attempts=2, retry_s=1.0
    )
    slack_s: ClassVar[float] = 2.0  # SDK overhead on a shared, busy machine

    def _assert_unavailable(self, action: Callable[[], object]) -> None:
        elapsed, outcome = timed(action)
        assert isinstance(outcome, UnavailableError), repr(outcome)
        assert (outcome.status, outcome.code) == (503, "store_unavailable")
        assert outcome.retry_after_s is not None and outcome.retry_after_s > 0
        assert elapsed < self.outage_limits.worst_case_s + self.slack_s, elapsed

    @pytest.mark.parametrize("call", ["put", "get", "describe", "delete"])
    def test_a_refused_connection_is_store_unavailable(
        self, outage_blobs: OutageBlobs, call: str
    ) -> None:
        blobs = outage_blobs(dead_port(), self.outage_limits)
        actions: dict[str, Callable[[], object]] = {
            "put": lambda: blobs.put("uploads/t/a", PNG, "image/png"),
            "get": lambda: blobs.get("uploads/t/a"),
            "describe": lambda: blobs.describe("uploads/t/a"),
            "delete": lambda: blobs.delete("uploads/t/a"),
        }
        self._assert_unavailable(actions[call])

    @pytest.mark.parametrize("call", ["put", "get"])
    def test_a_server_that_never_answers_is_store_unavailable(
        self, outage_blobs: OutageBlobs, call: str
    ) -> None:
        with tarpit() as port:
            blobs = outage_blobs(port, self.outage_limits)
            if call == "put":
                self._assert_unavailable(lambda: blobs.put("uploads/t/a", PNG, "image/png"))
            else:
                self._assert_unavailable(lambda: blobs.get("uploads/t/a"))
