"""Which Google client failures are transient, the retry policy built on that, and the
one error they become.

Every GCP adapter passes `retry_policy(limits)` and a timeout to each client call (the
google-cloud libraries otherwise retry for up to 120-600 s with no read timeout), and
wraps the call in `unavailable_on_outage("GCS")` (Pub/Sub, Secret Manager, ...): what
is still transient when the retry deadline passes is raised as UnavailableError
`store_unavailable` (HTTP 503 with Retry-After). Everything else - not found, permission
denied, a bad argument - passes through unchanged.

Nothing is imported from the Google libraries until a failure is classified or a
policy built, so importing this module costs an adapter's cold start nothing.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from core.adapters.outages import CallLimits, unavailable


@functools.cache
def _transient_types() -> tuple[type[BaseException], ...]:
    from google.api_core import exceptions as api
    from google.auth import exceptions as auth

    types: list[type[BaseException]] = [
        api.TooManyRequests,  # 429, and gRPC RESOURCE_EXHAUSTED
        api.InternalServerError,
        api.Unknown,
        api.BadGateway,
        api.ServiceUnavailable,
        api.GatewayTimeout,  # and gRPC DEADLINE_EXCEEDED
        api.RetryError,  # the retry deadline passed on transient failures
        auth.TransportError,  # the token endpoint or metadata server did not answer
        ConnectionError,
        TimeoutError,  # also concurrent.futures.TimeoutError: a future not done in time
    ]
    try:  # the REST transports (GCS, Secret Manager over REST) use requests
        import requests

        types += [
            requests.ConnectionError,
            requests.Timeout,
            requests.exceptions.ChunkedEncodingError,
        ]
    except ImportError:  # pragma: no cover - requests comes with google-auth's transport
        pass
    return tuple(types)


def is_transient(exc: BaseException) -> bool:
    return isinstance(exc, _transient_types())


def retry_policy(limits: CallLimits) -> Any:
    """An api_core Retry that retries transient failures, with jittered exponential
    backoff, and starts no new try after `limits.retry_s`."""
    from google.api_core.retry import Retry

    return Retry(
        predicate=is_transient, initial=0.1, maximum=2.0, multiplier=2.0, timeout=limits.retry_s
    )


@contextmanager
def unavailable_on_outage(backend: str) -> Iterator[None]:
    """Raise a transient Google client failure inside the block as `store_unavailable`."""
    try:
        yield
    except Exception as exc:
        if is_transient(exc):
            raise unavailable(backend, exc) from exc
        raise


__all__ = ["is_transient", "retry_policy", "unavailable_on_outage"]
