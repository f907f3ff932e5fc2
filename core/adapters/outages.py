"""Outages, decided once: how long one call to a backend may take, and what a backend
that cannot be reached becomes.

Every SDK client our adapters build (botocore for S3, SQS, SSM and Secrets Manager;
google-cloud-* for GCS, Pub/Sub and Secret Manager) gets its connect and read timeouts
and its retries from a `CallLimits`, so a dead or stuck backend holds a call for at
most `worst_case_s` - well inside the shortest function timeout (API Gateway gives an
integration 29 s). SDK defaults are far longer: botocore reads for 60 s, google-api-core
retries for up to 600 s, and an unreachable Firestore emulator once held a request for
four and a half minutes before it answered 500.

What the SDK still could not do after its retries becomes ONE domain error,
`unavailable(...)`: UnavailableError with code `store_unavailable`, which the HTTP
surface answers as 503 with Retry-After and a queue trigger as "retry later". Which SDK
failures are transient is each cloud's knowledge: core.adapters.aws.errors and
core.adapters.gcp.errors, next to the clients.
"""

from __future__ import annotations

from dataclasses import dataclass

from core.domain.errors import UnavailableError

STORE_UNAVAILABLE = "store_unavailable"
RETRY_AFTER_S = 5.0  # what a client is told to wait when the backend said nothing itself
# botocore's standard retry mode sleeps rand(0, 1) * min(scale * 2**i, 20) s before
# retry i; `scale` is 1 s for throttling (50 ms otherwise), so this bounds every sleep.
_BOTOCORE_MAX_BACKOFF_S = 20.0


@dataclass(frozen=True, eq=False)
class CallLimits:
    """The bounds of one port call (one put, get, send, secret read), retries included."""

    connect_s: float = 2.0
    read_s: float = 4.0  # per socket read: a 10 MB upload is not one read
    attempts: int = 3  # tries in all, the first included (botocore total_max_attempts)
    # google-api-core retries until a deadline rather than a count: how long it may
    # keep starting new tries.
    retry_s: float = 6.0

    def __post_init__(self) -> None:
        if min(self.connect_s, self.read_s, self.retry_s) <= 0 or self.attempts < 1:
            raise ValueError("call limits must be positive, with at least one attempt")

    @property
    def per_try_s(self) -> float:
        return self.connect_s + self.read_s

    @property
    def worst_case_s(self) -> float:
        """An upper bound on one call's wall time against a backend that refuses, drops
        or never answers: counted tries with botocore's longest backoff, or Google's
        retry deadline plus the try that was running when it passed."""
        backoff = sum(min(2.0**i, _BOTOCORE_MAX_BACKOFF_S) for i in range(self.attempts - 1))
        counted = self.attempts * self.per_try_s + backoff
        deadline = self.retry_s + self.per_try_s
        return max(counted, deadline)


DEFAULT_LIMITS = CallLimits()


def unavailable(
    backend: str,
    exc: BaseException | None = None,
    *,
    reason: str | None = None,
    retry_after_s: float = RETRY_AFTER_S,
) -> UnavailableError:
    """The one error an unreachable backend becomes. `backend` names it for people
    ("S3", "Pub/Sub"); the details carry `reason`, or the SDK exception's name - never
    its message, which may hold a URL with a signature in it."""
    details = {"backend": backend}
    if reason is None and exc is not None:
        reason = type(exc).__name__
    if reason is not None:
        details["reason"] = reason
    return UnavailableError(
        f"{backend} is not reachable right now; try again shortly",
        code=STORE_UNAVAILABLE,
        details=details,
        retry_after_s=retry_after_s,
    )


__all__ = ["DEFAULT_LIMITS", "RETRY_AFTER_S", "STORE_UNAVAILABLE", "CallLimits", "unavailable"]
