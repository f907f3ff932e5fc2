"""BlobStore on S3, with presigned URLs for direct uploads and for ImgGo's fetches.

    s3://BUCKET[/PREFIX][?endpoint=URL&region=NAME&addressing=path|virtual]

Keys given to the store (`incoming/tenant/job`, `uploads/tenant/sha`) live under
PREFIX in the bucket; `key_for_object` maps an S3 event's bucket and object key back.
Every key is checked by core.adapters.blobs.check_key, as on every other backend.

The presigned PUT signs `Content-Type` and `Content-Length` (SigV4 SignedHeaders), so
S3 itself refuses an upload of another size or type than the one declared; the S3
trigger still checks what landed. URLs are signed with the function's role
credentials: they stop working when those expire, so keep `expires_s` short.

Addressing: virtual-hosted style on AWS (the default), path style when an endpoint is
given (moto, MinIO on 127.0.0.1 have no per-bucket host names) or when asked.

Outages: the client has the timeouts and attempts of `limits`; a connection failure,
timeout, throttling or 5xx still there after them is UnavailableError
`store_unavailable` (core.adapters.aws.errors).
"""

from __future__ import annotations

import os
import threading
import time
from typing import Any
from urllib.parse import unquote, urlsplit

from core.adapters.aws import clients
from core.adapters.aws.errors import error_code, unavailable_on_outage
from core.adapters.blobs import DEFAULT_CONTENT_TYPE, check_key, key_under
from core.adapters.outages import DEFAULT_LIMITS, CallLimits
from core.ports import BlobInfo, SignedUpload

_OPTIONS = {
    "endpoint": "endpoint URL, e.g. http://127.0.0.1:5000 for moto",
    "region": "AWS region, default from AWS_REGION",
    "addressing": "path or virtual; path whenever an endpoint is set",
}
_MISSING = ("NoSuchKey", "404", "NotFound")
_BACKEND = "S3"


def parse_url(url: str) -> tuple[str, str, dict[str, str]]:
    """`s3://bucket/prefix?options` -> (bucket, prefix ending in '/' or '', options)."""
    parts = urlsplit(url)
    if parts.scheme != "s3":
        raise ValueError(f"not an s3 URL: {parts.scheme}://")
    bucket = parts.netloc
    if not bucket or parts.fragment:
        raise ValueError("an s3 URL names a bucket: s3://bucket[/prefix][?options]")
    prefix = unquote(parts.path).strip("/")
    options = clients.parse_options(parts.query, _OPTIONS)
    if options.get("addressing", "path") not in ("path", "virtual"):
        raise ValueError("addressing must be path or virtual")
    return bucket, f"{prefix}/" if prefix else "", options


class S3BlobStore:
    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        *,
        endpoint_url: str | None = None,
        region: str | None = None,
        addressing: str | None = None,
        limits: CallLimits = DEFAULT_LIMITS,
        client: Any = None,
    ) -> None:
        self.bucket = bucket
        self.prefix = prefix
        self._endpoint_url = endpoint_url
        self._region = region
        self._addressing = addressing
        self._limits = limits
        self._client = client
        self._lock = threading.Lock()

    @classmethod
    def from_url(cls, url: str) -> S3BlobStore:
        bucket, prefix, options = parse_url(url)
        return cls(
            bucket,
            prefix,
            endpoint_url=options.get("endpoint"),
            region=options.get("region"),
            addressing=options.get("addressing"),
        )

    @property
    def client(self) -> Any:
        """The S3 client, made on first use: a cold start that never touches a blob
        (most requests) does not pay for it."""
        with self._lock:
            if self._client is None:
                has_endpoint = bool(
                    self._endpoint_url
                    or os.environ.get("AWS_ENDPOINT_URL_S3")
                    or os.environ.get("AWS_ENDPOINT_URL")
                )
                style = self._addressing or ("path" if has_endpoint else "virtual")
                self._client = clients.client(
                    "s3",
                    endpoint_url=self._endpoint_url,
                    region=self._region,
                    limits=self._limits,
                    signature_version="s3v4",  # presigned URLs must be SigV4 to sign headers
                    s3={"addressing_style": style},
                )
            return self._client

    def object_key(self, key: str) -> str:
        return self.prefix + check_key(key)

    def key_for_object(self, bucket: str, name: str) -> str | None:
        """The store key of object `name` (decoded) in `bucket`, or None when it is not
        in our bucket, not under our prefix, or not a key we could have handed out."""
        return key_under(self.prefix, name) if bucket == self.bucket else None

    def put(self, key: str, data: bytes, content_type: str) -> None:
        name = self.object_key(key)
        with unavailable_on_outage(_BACKEND):
            self.client.put_object(
                Bucket=self.bucket, Key=name, Body=data, ContentType=content_type
            )

    def get(self, key: str) -> bytes | None:
        name = self.object_key(key)
        with unavailable_on_outage(_BACKEND):
            try:
                response = self.client.get_object(Bucket=self.bucket, Key=name)
            except clients.ClientError as exc:
                if error_code(exc) in _MISSING:
                    return None
                raise
            body: bytes = response["Body"].read()  # a read can time out too
        return body

    def describe(self, key: str) -> BlobInfo | None:
        """Size and type from a HEAD request. The S3 event carries the size but not the
        type, which the upload check needs."""
        name = self.object_key(key)
        with unavailable_on_outage(_BACKEND):
            try:
                head = self.client.head_object(Bucket=self.bucket, Key=name)
            except clients.ClientError as exc:
                if error_code(exc) in _MISSING:
                    return None
                raise
        # S3 stores binary/octet-stream for an object written without a type.
        return BlobInfo(int(head["ContentLength"]), head.get("ContentType") or DEFAULT_CONTENT_TYPE)

    def delete(self, key: str) -> None:
        name = self.object_key(key)
        with unavailable_on_outage(_BACKEND):
            self.client.delete_object(Bucket=self.bucket, Key=name)  # no error when absent

    def signed_get_url(self, key: str, *, expires_s: int) -> str | None:
        # Presigning is local computation (no request), so no outage can happen here.
        url: str = self.client.generate_presigned_url(
            "get_object",
            Params={"Bucket": self.bucket, "Key": self.object_key(key)},
            ExpiresIn=expires_s,
        )
        return url

    def signed_put_url(
        self, key: str, *, content_type: str, size: int, expires_s: int
    ) -> SignedUpload | None:
        expires_at = time.time() + expires_s
        url: str = self.client.generate_presigned_url(
            "put_object",
            Params={
                "Bucket": self.bucket,
                "Key": self.object_key(key),
                "ContentType": content_type,
                "ContentLength": size,
            },
            ExpiresIn=expires_s,
        )
        headers = {"Content-Type": content_type, "Content-Length": str(size)}
        return SignedUpload(url=url, method="PUT", headers=headers, expires_at=expires_at)

    def close(self) -> None:
        if self._client is not None:
            self._client.close()


def from_url(url: str) -> S3BlobStore:
    return S3BlobStore.from_url(url)


__all__ = ["S3BlobStore", "from_url", "parse_url"]
