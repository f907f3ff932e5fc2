"""BlobStore on Google Cloud Storage: `gs://bucket[/prefix]`, with V4 signed URLs.

- `put` / `get` / `describe` / `delete` use the storage client (JSON API). Objects are
  named `prefix/key`; every key is checked by core.adapters.blobs.check_key, as on every
  other backend, and `key_for_object` maps a finalize event's bucket and name back.
- `signed_put_url` is a V4 signed PUT bound to the declared content type and size: both
  `Content-Type` and `x-goog-content-length-range: N,N` are signed headers, so GCS
  refuses an upload of any other type (signature mismatch) or size (400). The client
  must send exactly the headers returned in SignedUpload.headers.
- `signed_get_url` is a V4 signed GET that ImgGo fetches the image from; the bytes of
  a direct upload never pass through a function.

Signing is local RSA when the credentials hold a private key (a service-account key
file in GOOGLE_APPLICATION_CREDENTIALS: tests use a throwaway one). On Cloud Functions
the credentials come from the metadata server and hold no key: then the URL is signed by
the IAM Credentials signBlob API with the function's service account, which needs
roles/iam.serviceAccountTokenCreator on itself (deploy/gcp.sh grants it).

With STORAGE_EMULATOR_HOST set (tests: a loopback stand-in), the client sends requests
there without credentials and signed URLs point there too.

Outages: each call carries `limits`' (connect, read) timeout and a retry policy that
stops after `limits.retry_s` (the library's own default retries for 120 s); what is
still failing then is UnavailableError `store_unavailable` (core.adapters.gcp.errors).

The google-cloud-storage import (~0.4 s) happens on first use, not when the adapter is
built, so a cold start that never touches a blob never pays for it.

No bucket reads: google-cloud-storage 3.11+ starts a thread at a client's first object
call that reads the bucket's metadata (`storage.buckets.get`), only to label
OpenTelemetry spans (googleapis/google-cloud-python#17650). The function's role on the
bucket is object-only (deploy/gcp.sh: roles/storage.objectAdmin), so GCS denies that
read and writes an ERROR audit entry for each new instance; in an outage the thread
retries for up to 120 s, outside every deadline here, and its requests land wherever
the process then points. We label no spans with it, so the store switches it off with
the library's own variable, DISABLE_GCS_PYTHON_CLIENT_OTEL_BUCKET_METADATA, unless the
deployer set it.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from core.adapters.blobs import DEFAULT_CONTENT_TYPE, check_key, container_url, key_under
from core.adapters.gcp.errors import retry_policy, unavailable_on_outage
from core.adapters.outages import DEFAULT_LIMITS, CallLimits
from core.ports import BlobInfo, SignedUpload

if TYPE_CHECKING:
    # google-cloud-storage ships no type information.
    from google.cloud import storage  # type: ignore[attr-defined]

_SCOPES = ("https://www.googleapis.com/auth/cloud-platform",)
SIGNER_EMAIL_ENV = "IMGGO_FN_GCS_SIGNER_EMAIL"
MAX_V4_EXPIRY_S = 7 * 24 * 3600  # GCS refuses V4 URLs valid for longer
# Read by the library at each call (see the docstring: No bucket reads).
BUCKET_METADATA_OFF_ENV = "DISABLE_GCS_PYTHON_CLIENT_OTEL_BUCKET_METADATA"
_BACKEND = "GCS"


def parse_url(url: str) -> tuple[str, str]:
    """`gs://bucket/some/prefix` -> ("bucket", "some/prefix")."""
    return container_url(url, "gs", "a GCS", "gs://bucket[/prefix]")


class GcsBlobStore:
    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        *,
        project: str | None = None,
        client: storage.Client | None = None,
        signing_credentials: Any = None,
        limits: CallLimits = DEFAULT_LIMITS,
    ) -> None:
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self._project = project or os.environ.get("GOOGLE_CLOUD_PROJECT") or None
        self._client = client
        self._limits = limits
        self._retry: Any = None
        self._signing = signing_credentials
        self._lock = threading.Lock()
        os.environ.setdefault(BUCKET_METADATA_OFF_ENV, "true")  # an injected client too

    @classmethod
    def from_url(cls, url: str) -> GcsBlobStore:
        bucket, prefix = parse_url(url)
        return cls(bucket, prefix)

    # ------------------------------------------------------------------ naming
    def object_name(self, key: str) -> str:
        check_key(key)
        return f"{self.prefix}/{key}" if self.prefix else key

    def key_for_object(self, bucket: str, name: str) -> str | None:
        """The blob key of object `name` in `bucket` (a finalize event), or None when the
        object is not under this store or not a key we could have handed out."""
        if bucket != self.bucket:
            return None
        return key_under(self.prefix + "/" if self.prefix else "", name)

    # ------------------------------------------------------------------ BlobStore
    def put(self, key: str, data: bytes, content_type: str) -> None:
        blob = self._blob(key)
        with unavailable_on_outage(_BACKEND):
            # An overwrite of the same key is idempotent, so retrying it is safe (the
            # library only retries uploads that carry a generation precondition).
            blob.upload_from_string(data, content_type=content_type, **self._call())

    def get(self, key: str) -> bytes | None:
        from google.api_core.exceptions import NotFound

        blob = self._blob(key)
        with unavailable_on_outage(_BACKEND):
            try:
                data: bytes = blob.download_as_bytes(**self._call())
            except NotFound:
                return None
        return data

    def describe(self, key: str) -> BlobInfo | None:
        name = self.object_name(key)
        with unavailable_on_outage(_BACKEND):
            blob = self._storage().bucket(self.bucket).get_blob(name, **self._call())
        if blob is None:
            return None
        # GCS stores application/octet-stream for an object written without a type.
        return BlobInfo(int(blob.size), blob.content_type or DEFAULT_CONTENT_TYPE)

    def delete(self, key: str) -> None:
        from google.api_core.exceptions import NotFound

        blob = self._blob(key)
        # Already gone is what delete wanted.
        with unavailable_on_outage(_BACKEND), contextlib.suppress(NotFound):
            blob.delete(**self._call())

    def signed_get_url(self, key: str, *, expires_s: int) -> str | None:
        return self._sign(key, method="GET", expires_s=expires_s)

    def signed_put_url(
        self, key: str, *, content_type: str, size: int, expires_s: int
    ) -> SignedUpload | None:
        headers = {"x-goog-content-length-range": f"{size},{size}"}
        url = self._sign(
            key, method="PUT", expires_s=expires_s, content_type=content_type, headers=headers
        )
        return SignedUpload(
            url=url,
            method="PUT",
            headers={"Content-Type": content_type, **headers},
            expires_at=time.time() + expires_s,
        )

    def close(self) -> None:
        if self._client is not None:
            self._client.close()

    # ------------------------------------------------------------------ internals
    def _storage(self) -> storage.Client:
        if self._client is None:
            with self._lock:
                if self._client is None:
                    from google.cloud import storage as gcs  # type: ignore[attr-defined]

                    # credentials=None: ADC on Cloud Functions; anonymous when
                    # STORAGE_EMULATOR_HOST points at a local stand-in.
                    self._client = gcs.Client(project=self._project)
        return self._client

    def _blob(self, key: str) -> Any:
        return self._storage().bucket(self.bucket).blob(self.object_name(key))

    def _call(self) -> dict[str, Any]:
        """The timeout and retry every storage call gets."""
        if self._retry is None:
            self._retry = retry_policy(self._limits)
        return {"timeout": (self._limits.connect_s, self._limits.read_s), "retry": self._retry}

    def _signer(self) -> Any:
        """The credentials that sign, fetched once (no network: ADC reads a key file or
        describes the metadata server's account lazily)."""
        if self._signing is None:
            with self._lock:
                if self._signing is None:
                    import google.auth

                    credentials, _ = google.auth.default(scopes=_SCOPES)
                    self._signing = credentials
        return self._signing

    def _sign(
        self,
        key: str,
        *,
        method: str,
        expires_s: int,
        content_type: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> str:
        import google.auth.credentials

        credentials = self._signer()
        extra: dict[str, Any] = {}
        if not isinstance(credentials, google.auth.credentials.Signing):
            # No private key here (Cloud Functions): sign through IAM signBlob.
            extra = self._iam_signing(credentials)
        url: str = self._blob(key).generate_signed_url(
            version="v4",
            method=method,
            expiration=timedelta(seconds=min(max(1, expires_s), MAX_V4_EXPIRY_S)),
            content_type=content_type,
            headers=dict(headers or {}),
            credentials=credentials,
            **extra,
        )
        return url

    def _iam_signing(self, credentials: Any) -> dict[str, str]:
        from google.auth.transport.requests import Request

        with self._lock:
            if not credentials.valid:
                credentials.refresh(Request())  # also learns the account's e-mail
        email = os.environ.get(SIGNER_EMAIL_ENV) or getattr(
            credentials, "service_account_email", None
        )
        if not email or email == "default":
            raise RuntimeError(
                "cannot sign GCS URLs: the credentials have no private key and no service "
                f"account e-mail; set {SIGNER_EMAIL_ENV} to the function's service account"
            )
        return {"service_account_email": email, "access_token": credentials.token}


def from_url(url: str) -> GcsBlobStore:
    """What core.bootstrap calls for `gs://` blob URLs."""
    return GcsBlobStore.from_url(url)


__all__ = ["GcsBlobStore", "from_url", "parse_url"]
