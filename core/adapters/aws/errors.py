"""Which botocore failures are transient, and the one error they become.

Every AWS adapter wraps its SDK calls in `unavailable_on_outage("S3")` (SQS, SSM, ...):
a failure botocore's standard retry mode treats as transient, and still got after the
client's bounded attempts (core.adapters.outages.CallLimits), is raised as
UnavailableError `store_unavailable` (HTTP 503 with Retry-After). Everything else - a
missing bucket, access denied, a validation error - passes through unchanged: it is a
deployment mistake to be seen, not a reason to ask the caller to retry.

The lists follow botocore's own (botocore.retries.standard: TransientRetryableChecker,
ThrottledRetryableChecker, ThrottlingStatusCodeChecker), so what reaches us is exactly
what botocore already gave up retrying.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from botocore.exceptions import ClientError, HTTPClientError
from botocore.exceptions import ConnectionError as BotoConnectionError

from core.adapters.outages import unavailable

THROTTLING_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestThrottledException",
        "TooManyRequestsException",
        "ProvisionedThroughputExceededException",
        "TransactionInProgressException",
        "RequestLimitExceeded",
        "BandwidthLimitExceeded",
        "LimitExceededException",
        "RequestThrottled",
        "SlowDown",
        "EC2ThrottledException",
    }
)
TRANSIENT_CODES = frozenset(
    {
        "RequestTimeout",
        "RequestTimeoutException",
        "PriorRequestNotComplete",
        "InternalError",
        "InternalFailure",
        "InternalServerError",
        "ServiceUnavailable",
    }
)


def error_code(exc: BaseException) -> str:
    """The AWS error code of a ClientError ('ConditionalCheckFailedException', ...)."""
    if isinstance(exc, ClientError):
        return str(exc.response.get("Error", {}).get("Code", ""))
    return ""


def is_transient(exc: BaseException) -> bool:
    """True for connection failures, timeouts, throttling and AWS-side 5xx answers."""
    if isinstance(exc, BotoConnectionError | HTTPClientError):
        return True
    if not isinstance(exc, ClientError):
        return False
    if error_code(exc) in THROTTLING_CODES | TRANSIENT_CODES:
        return True
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return isinstance(status, int) and (status >= 500 or status == 429)


@contextmanager
def unavailable_on_outage(backend: str) -> Iterator[None]:
    """Raise a transient botocore failure inside the block as `store_unavailable`."""
    try:
        yield
    except Exception as exc:
        if is_transient(exc):
            raise unavailable(backend, exc) from exc
        raise


__all__ = [
    "THROTTLING_CODES",
    "TRANSIENT_CODES",
    "error_code",
    "is_transient",
    "unavailable_on_outage",
]
