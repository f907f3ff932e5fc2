"""The job store's outage contract: a backend that cannot be reached makes every port call
raise UnavailableError `store_unavailable` (HTTP 503 with Retry-After), within the call
limits the store was built with. Never a raw SDK error (a 500), never a wait of minutes.

A networked store's test module subclasses `StoreOutageContract` and provides the fixture
`unreachable_store(endpoint)`: the store under test pointed at `endpoint` (`host:port` on
loopback), built with `OUTAGE_LIMITS` and, as deployed, a blob store (so that its sweep
has manifest leases to look for). Each test runs against two real outages: a
blackhole (the kernel completes the handshake, nothing ever answers: only a read timeout
ends the wait) and a refused port (nothing listens). The limits are small so that each
case takes about a second; the deployed limits are proven end to end by the cloud
scenario `test_a_store_outage_answers_503_within_seconds`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from core.adapters.outages import CallLimits
from core.domain.errors import UnavailableError
from core.domain.job import Job, JobSource
from core.ports import Batch, JobStore
from tests.support.loopback import Blackhole
from tests.support.outage import dead_port, timed

OUTAGE_LIMITS = CallLimits(connect_s=0.2, read_s=0.2, attempts=2, retry_s=0.3)
# Scheduling on a shared 2-core machine, and closing what the call opened.
_SLACK_S = 1.5
NOW = 1_700_000_000.0


def _job(version: int = 0) -> Job:
    return Job(
        id="job-1",
        tenant="tenant-a",
        pattern_id="pat_invoice",
        source=JobSource(kind="url", url="https://img.example/a.png"),
        created_at=NOW,
        updated_at=NOW,
        version=version,
    )


OPERATIONS: dict[str, Callable[[JobStore], object]] = {
    "get": lambda store: store.get("job-1"),
    "create": lambda store: store.create(_job()),
    "compare_and_set": lambda store: store.compare_and_set(_job(version=1)),
    "fail_unreadable": lambda store: store.fail_unreadable("job-1", now=NOW),
    "list_jobs": lambda store: store.list_jobs("tenant-a"),
    "list_pending": lambda store: store.list_pending(updated_before=NOW, limit=10),
    "claim_key": lambda store: store.claim_key("k", "job-1", expires_at=None, now=NOW),
    "lookup_key": lambda store: store.lookup_key("k", now=NOW),
    "release_key": lambda store: store.release_key("k", "job-1"),
    "create_batch": lambda store: store.create_batch(Batch("b-1", "tenant-a", "p", [], {}, NOW)),
    "get_batch": lambda store: store.get_batch("b-1"),
    "delete_expired": lambda store: store.delete_expired(now=NOW),
    "ping": lambda store: store.ping(),
}


class StoreOutageContract:
    @pytest.fixture(params=["blackhole", "refused"])
    def endpoint(self, request: pytest.FixtureRequest) -> Iterator[str]:
        if request.param == "blackhole":
            hole = Blackhole()
            yield hole.host
            hole.close()
        else:
            yield f"127.0.0.1:{dead_port()}"

    @pytest.fixture
    def unreachable_store(self, endpoint: str) -> JobStore:
        raise NotImplementedError("subclasses build the store against `endpoint`")

    @pytest.mark.parametrize("operation", sorted(OPERATIONS))
    def test_an_unreachable_backend_is_store_unavailable_within_the_limits(
        self, unreachable_store: JobStore, operation: str
    ) -> None:
        took, outcome = timed(lambda: OPERATIONS[operation](unreachable_store))
        assert isinstance(outcome, UnavailableError), repr(outcome)
        assert (outcome.status, outcome.code) == (503, "store_unavailable")
        assert outcome.retry_after_s is not None and outcome.retry_after_s >= 1
        assert took < OUTAGE_LIMITS.worst_case_s + _SLACK_S, f"{operation} took {took:.1f} s"
