"""JobStore adapters, chosen by URL so configuration alone picks the backend.

    memory://                  in-process (tests, one-shot CLI runs)
    sqlite:///abs/path.db      embedded file; sqlite:///./relative.db is relative to cwd
    dynamodb://TABLE, firestore://PREFIX, azuretables://TABLE   the clouds' stores

Each adapter is imported on first use (core.adapters.registry): a function deployed with
DynamoDB never pays for sqlite3, and a cloud SDK is only imported when its scheme is
asked for. A new backend is a subclass of _base.BaseJobStore (its primitives only) and
one entry in the registry.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from core.adapters.registry import open_adapter, schemes

if TYPE_CHECKING:
    from core.ports import BlobStore, Clock, JobStore

SUPPORTED_SCHEMES = tuple(f"{scheme}://" for scheme in schemes("store"))


def open_store(url: str, *, clock: Clock | None = None, blobs: BlobStore | None = None) -> JobStore:
    """The store `url` names. `clock` judges expiry for reads that take no `now`
    (get, list_*); the system clock when omitted. `blobs` keeps the manifests too large
    for the backend's items (core.adapters.stores._manifests); without it such a job is
    refused (413 `job_too_large`).

    Raises ValueError for an unknown scheme or a malformed URL. The message names the
    scheme only, never the whole URL, which may one day carry a credential.
    """
    store: JobStore = open_adapter("store", url, clock=clock, blobs=blobs)
    return store


__all__ = ["SUPPORTED_SCHEMES", "open_store"]
