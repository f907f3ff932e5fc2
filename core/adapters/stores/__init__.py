"""JobStore adapters, chosen by URL so configuration alone picks the backend.

    memory://                  in-process (tests, one-shot CLI runs)
    sqlite:///abs/path.db      embedded file; sqlite:///./relative.db is relative to cwd

Each factory imports its adapter on first use: a function deployed with DynamoDB never
pays for sqlite3, and a cloud SDK is only imported when its scheme is asked for. A new
backend is one entry in core.adapters.registry (azuretables:// next).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from core.adapters.registry import open_adapter, schemes

if TYPE_CHECKING:
    from core.ports import Clock, JobStore

SUPPORTED_SCHEMES = tuple(f"{scheme}://" for scheme in schemes("store"))


def open_store(url: str, *, clock: Clock | None = None) -> JobStore:
    """The store `url` names (see core.adapters.registry). `clock` judges expiry for
    reads that take no `now` (get, list_*); the system clock when omitted.

    Raises ValueError for an unknown scheme or a malformed URL. The message names the
    scheme only, never the whole URL, which may one day carry a credential.
    """
    store: JobStore = open_adapter("store", url, clock=clock)
    return store


__all__ = ["SUPPORTED_SCHEMES", "open_store"]
