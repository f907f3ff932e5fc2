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

    from core.ports import Clock, JobStore

    StoreFactory = Callable[[str, Clock | None], JobStore]


def _memory(url: str, clock: Clock | None) -> JobStore:
    if url.partition("://")[2]:
        raise ValueError("memory:// takes no path or options")
    from core.adapters.stores.memory import MemoryJobStore

    return MemoryJobStore(clock=clock)


def _sqlite(url: str, clock: Clock | None) -> JobStore:
    from core.adapters.stores.sqlite import SqliteJobStore

    return SqliteJobStore.from_url(url, clock=clock)


def _firestore(url: str, clock: Clock | None) -> JobStore:
    from core.adapters.stores.firestore import FirestoreJobStore

    return FirestoreJobStore.from_url(url, clock=clock)


def _dynamodb(url: str, clock: Clock | None) -> JobStore:
    from core.adapters.stores.dynamodb import DynamoDbJobStore

    return DynamoDbJobStore.from_url(url, clock=clock)


_FACTORIES: dict[str, StoreFactory] = {
    "memory": _memory,
    "sqlite": _sqlite,
    "dynamodb": _dynamodb,
    "firestore": _firestore,
}

SUPPORTED_SCHEMES = tuple(f"{scheme}://" for scheme in _FACTORIES)


def open_store(url: str, *, clock: Clock | None = None) -> JobStore:
    """The store `url` names. `clock` judges expiry for reads that take no `now`
    (get, list_*); the system clock when omitted.

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
    return factory(url, clock)


__all__ = ["SUPPORTED_SCHEMES", "open_store"]
