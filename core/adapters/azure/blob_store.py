"""BlobStore on Azure Blob Storage: `azureblob://CONTAINER[/prefix]`, with SAS URLs.

- `put` / `get` / `describe` / `delete` use the blob client. Blobs are named
  `prefix/key`; every key is checked by core.adapters.blobs.check_key, as on every
  other backend, and `key_for_object` maps a BlobCreated event (container, blob name)
  back to the key.
- `signed_put_url`: a service SAS for that one blob, create + write only, valid for
  `expires_s`. A SAS cannot bind Content-Length or Content-Type, so the declared size and
  type are checked when the upload lands (core.service.uploads via FunctionHost), and a
  blob that does not match is refused there. The client sends `x-ms-blob-type:
  BlockBlob` and the Content-Type, as SignedUpload.headers says.
- `signed_get_url`: a read-only SAS for that one blob, which ImgGo fetches the image from.

Signing: with a connection string (Azurite, a laptop) the SAS is signed with the account
key; with the managed identity (no key anywhere) it is a user delegation SAS, signed
with a user delegation key fetched from the service (needs "Storage Blob Delegator",
part of "Storage Blob Data Contributor") and kept until shortly before it expires.

The azure-storage-blob import happens on first use, not when the adapter is built.
"""

from __future__ import annotations

import contextlib
import threading
import time
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from core.adapters.azure import clients
from core.adapters.azure.errors import unavailable_on_outage
from core.adapters.blobs import DEFAULT_CONTENT_TYPE, check_key, container_url, key_under
from core.adapters.outages import DEFAULT_LIMITS, CallLimits
from core.ports import BlobInfo, SignedUpload

if TYPE_CHECKING:
    from azure.storage.blob import BlobServiceClient, UserDelegationKey

BACKEND = "Blob Storage"
_DELEGATION_S = 6 * 3600  # a user delegation key's life; renewed an hour before it ends
_CLOCK_SKEW_S = 300  # SAS start time in the past: the service's clock may be ahead


def parse_url(url: str) -> tuple[str, str]:
    """`azureblob://container/some/prefix` -> ("container", "some/prefix")."""
    return container_url(url, "azureblob", "an Azure", "azureblob://container[/prefix]")


class AzureBlobStore:
    def __init__(
        self,
        container: str,
        prefix: str = "",
        *,
        connection: str | None = None,
        limits: CallLimits = DEFAULT_LIMITS,
    ) -> None:
        """`connection`: a connection string, instead of the account the environment
        names (core.adapters.azure.clients)."""
        self.container = container
        self.prefix = prefix.strip("/")
        self._connection = connection
        self._limits = limits
        self._service: BlobServiceClient | None = None
        self._delegation: tuple[UserDelegationKey, float] | None = None
        self._lock = threading.Lock()

    @classmethod
    def from_url(cls, url: str) -> AzureBlobStore:
        container, prefix = parse_url(url)
        return cls(container, prefix)

    # ------------------------------------------------------------------ naming
    def blob_name(self, key: str) -> str:
        check_key(key)
        return f"{self.prefix}/{key}" if self.prefix else key

    def key_for_object(self, bucket: str, name: str) -> str | None:
        """The key of blob `name` in container `bucket`, or None when it is not ours."""
        if bucket != self.container:
            return None
        return key_under(self.prefix + "/" if self.prefix else "", name)

    # ------------------------------------------------------------------ BlobStore
    def put(self, key: str, data: bytes, content_type: str) -> None:
        from azure.storage.blob import ContentSettings

        blob = self._blob(key)
        with unavailable_on_outage(BACKEND):
            blob.upload_blob(
                data, overwrite=True, content_settings=ContentSettings(content_type=content_type)
            )

    def get(self, key: str) -> bytes | None:
        from azure.core.exceptions import ResourceNotFoundError

        blob = self._blob(key)
        with unavailable_on_outage(BACKEND):
            try:
                data: bytes = blob.download_blob().readall()
            except ResourceNotFoundError:
                return None
        return data

    def describe(self, key: str) -> BlobInfo | None:
        from azure.core.exceptions import ResourceNotFoundError

        blob = self._blob(key)
        with unavailable_on_outage(BACKEND):
            try:
                props = blob.get_blob_properties()
            except ResourceNotFoundError:
                return None
        content_type = props.content_settings.content_type or DEFAULT_CONTENT_TYPE
        return BlobInfo(int(props.size), content_type)

    def delete(self, key: str) -> None:
        from azure.core.exceptions import ResourceNotFoundError

        blob = self._blob(key)
        # Already gone is what delete wanted.
        with unavailable_on_outage(BACKEND), contextlib.suppress(ResourceNotFoundError):
            blob.delete_blob()

    def signed_get_url(self, key: str, *, expires_s: int) -> str | None:
        return self._sas_url(key, expires_s=expires_s, read=True)

    def signed_put_url(
        self, key: str, *, content_type: str, size: int, expires_s: int
    ) -> SignedUpload | None:
        url = self._sas_url(key, expires_s=expires_s, read=False)
        return SignedUpload(
            url=url,
            method="PUT",
            headers={"Content-Type": content_type, "x-ms-blob-type": "BlockBlob"},
            expires_at=time.time() + expires_s,
        )

    def create_container(self) -> None:
        """Create the container if missing (tests, local stacks; Bicep on Azure)."""
        from azure.core.exceptions import ResourceExistsError

        with unavailable_on_outage(BACKEND), contextlib.suppress(ResourceExistsError):
            self.service.create_container(self.container)

    def close(self) -> None:
        with self._lock:
            service, self._service = self._service, None
        if service is not None:
            service.close()

    # ------------------------------------------------------------------ internals
    @property
    def service(self) -> BlobServiceClient:
        if self._service is None:
            with self._lock:
                if self._service is None:
                    self._service = _service(self._limits, self._connection)
        return self._service

    def _blob(self, key: str) -> Any:
        return self.service.get_blob_client(self.container, self.blob_name(key))

    def _sas_url(self, key: str, *, expires_s: int, read: bool) -> str:
        from azure.storage.blob import BlobSasPermissions, generate_blob_sas

        name = self.blob_name(key)
        service = self.service
        now = datetime.now(UTC)
        permission = (
            BlobSasPermissions(read=True) if read else BlobSasPermissions(create=True, write=True)
        )
        signing: dict[str, Any]
        account_key = service.credential.account_key if service.credential else None
        if account_key:
            signing = {"account_key": account_key}
        else:
            signing = {"user_delegation_key": self._delegation_key()}
        token = generate_blob_sas(
            account_name=str(service.account_name),
            container_name=self.container,
            blob_name=name,
            permission=permission,
            start=now - timedelta(seconds=_CLOCK_SKEW_S),
            expiry=now + timedelta(seconds=max(1, expires_s)),
            protocol="https" if service.url.startswith("https:") else "https,http",
            **signing,
        )
        base = service.url.rstrip("/")
        return f"{base}/{quote(self.container)}/{quote(name)}?{token}"

    def _delegation_key(self) -> UserDelegationKey:
        with self._lock:
            held = self._delegation
        if held is not None and held[1] > time.time() + 3600:
            return held[0]
        now = datetime.now(UTC)
        with unavailable_on_outage(BACKEND):
            key = self.service.get_user_delegation_key(
                now - timedelta(seconds=_CLOCK_SKEW_S), now + timedelta(seconds=_DELEGATION_S)
            )
        with self._lock:
            self._delegation = (key, time.time() + _DELEGATION_S)
        return key


def _service(limits: CallLimits, connection: str | None) -> BlobServiceClient:
    from azure.storage.blob import BlobServiceClient, LinearRetry

    address, credential = (connection, None) if connection else clients.account("blob")
    options = clients.storage_options(limits, LinearRetry)
    if credential is None:
        return BlobServiceClient.from_connection_string(address, **options)
    return BlobServiceClient(address, credential=credential, **options)


def from_url(url: str) -> AzureBlobStore:
    """What core.bootstrap calls for `azureblob://` blob URLs."""
    return AzureBlobStore.from_url(url)


__all__ = ["BACKEND", "AzureBlobStore", "from_url", "parse_url"]
