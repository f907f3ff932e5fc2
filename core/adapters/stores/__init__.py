"""JobStore adapters, chosen by URL so configuration alone picks the backend.

    memory://                  in-process (tests, one-shot CLI runs)
    sqlite:///abs/path.db      embedded file; sqlite:///./relative.db is relative to cwd
    dynamodb://TABLE[?...]     see core.adapters.stores.dynamodb
    firestore://PREFIX[?...]   see core.adapters.stores.firestore

Each factory imports its adapter on first use: a function deployed with DynamoDB never
pays for sqlite3, and a cloud SDK is only imported when its scheme is asked for. A new
backend is a subclass of _base.BaseJobStore (its primitives only) and one entry in
`_FACTORIES` (azuretables:// next).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable

    from core.ports import BlobStore, Clock, JobStore

    StoreFactory = Callable[[str, Clock | None, BlobStore | None], JobStore]


def _memory(url: str, clock: Clock | None, blobs: BlobStore | None) -> JobStore:
    if url.partition("://")[2]:
        raise ValueError("memory:// takes no path or options")
    from core.adapters.stores.memory import MemoryJobStore

    return MemoryJobStore(clock=clock, blobs=blobs)


def _sqlite(url: str, clock: Clock | None, blobs: BlobStore | None) -> JobStore:
    from core.adapters.stores.sqlite import SqliteJobStore

    return SqliteJobStore.from_url(url, clock=clock)  # keeps every manifest inline


def _firestore(url: str, clock: Clock | None, blobs: BlobStore | None) -> JobStore:
    from core.adapters.stores.firestore import FirestoreJobStore

    return FirestoreJobStore.from_url(url, clock=clock, blobs=blobs)


def _dynamodb(url: str, clock: Clock | None, blobs: BlobStore | None) -> JobStore:
    from core.adapters.stores.dynamodb import DynamoDbJobStore

    return DynamoDbJobStore.from_url(url, clock=clock, blobs=blobs)


_FACTORIES: dict[str, StoreFactory] = {
    "memory": _memory,
    "sqlite": _sqlite,
    "dynamodb": _dynamodb,
    "firestore": _firestore,
}

SUPPORTED_SCHEMES = tuple(f"{scheme}://" for scheme in _FACTORIES)


def open_store(url: str, *, clock: Clock | None = None, blobs: BlobStore | None = None) -> JobStore:
    """The store `url` names. `clock` judges expiry for reads that take no `now`
    (get, list_*); the system clock when omitted. `blobs` keeps the manifests too large
    for the backend's items (core.adapters.stores._manifests); without it such a job is
    refused (413 `job_too_large`).

    Raises ValueError for an unknown scheme or a malformed URL. The message names the
    scheme only, never the whole URL, which may one day carry a credential.
    """
    scheme, sep, _ = url.partition("://")
    factory = _FACTORIES.get(scheme.lower()) if sep else None
    if factory is None:
        shown = f"{scheme}://" if sep else "a URL without a scheme"
        raise ValueError(
            f"unsupported store URL ({shown}); supported schemes: {', '.join(SUPPORTED_SCHEMES)}"
        )
    return factory(url, clock, blobs)


__all__ = ["SUPPORTED_SCHEMES", "open_store"]
