"""Which azure-core failures are transient, and the one error they become.

Every Azure adapter wraps its SDK calls in `unavailable_on_outage("Table Storage")`
(Queue Storage, Blob Storage, Key Vault): a failure azure-core's retry policy treats as
transient - no connection, a timeout, 408, 429 or a 5xx answer (but not a refused TLS
certificate) - and still got after the
client's bounded attempts (core.adapters.outages.CallLimits, applied by
core.adapters.azure.clients) is raised as UnavailableError `store_unavailable` (HTTP 503
with Retry-After). Everything else - a missing table, a refused SAS, a 409 or 412 the
adapter expects - passes through unchanged.
"""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from contextlib import contextmanager

from azure.core.exceptions import HttpResponseError, ServiceRequestError, ServiceResponseError

from core.adapters.outages import unavailable

# What azure-core's RetryPolicy retries by status (its `_RETRY_CODES` and 408/429).
TRANSIENT_STATUSES = frozenset({408, 429, 500, 502, 503, 504})


def _certificate_refused(exc: BaseException) -> bool:
    """azure-core wraps the transport's error; the TLS verdict is somewhere in the chain."""
    seen: BaseException | None = exc
    for _ in range(10):  # a bounded walk: chains can loop
        if seen is None:
            return False
        if isinstance(seen, ssl.SSLCertVerificationError):
            return True
        seen = seen.__cause__ or seen.__context__ or getattr(seen, "inner_exception", None)
    return False


def is_transient(exc: BaseException) -> bool:
    if isinstance(exc, ServiceRequestError | ServiceResponseError):
        # Never connected, or the answer never came - unless the certificate was refused:
        # that is a configuration mistake no retry mends.
        return not _certificate_refused(exc)
    return isinstance(exc, HttpResponseError) and exc.status_code in TRANSIENT_STATUSES


@contextmanager
def unavailable_on_outage(backend: str) -> Iterator[None]:
    """Raise a transient azure-core failure inside the block as `store_unavailable`."""
    try:
        yield
    except Exception as exc:
        if is_transient(exc):
            raise unavailable(backend, exc) from exc
        raise


__all__ = ["TRANSIENT_STATUSES", "is_transient", "unavailable_on_outage"]
