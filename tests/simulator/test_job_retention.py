"""The simulator's job table is bounded: finished jobs expire after `job_retention_s` and
beyond `max_finished_jobs` (oldest finished first); pending jobs are never evicted; an
expired job is unknown, 404 JOB_NOT_FOUND. Over real HTTP, on a manual retention clock."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from imggo_simulator import DEMO_API_KEY, SimulatorConfig, SimulatorServer
from imggo_simulator.__main__ import build_parser, config_from_args
from tests.simulator.helpers import SSL_CONTEXT, assert_error, upload


class ManualClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def sim(clock: ManualClock) -> Iterator[SimulatorServer]:
    config = SimulatorConfig(processing_s=3600, job_retention_s=60, max_finished_jobs=3)
    with SimulatorServer(config, retention_clock=clock) as server:
        yield server


@pytest.fixture
def client(sim: SimulatorServer) -> Iterator[httpx.Client]:
    with httpx.Client(
        base_url=sim.url,
        headers={"Authorization": f"Bearer {DEMO_API_KEY}"},
        timeout=5.0,
        trust_env=False,
        verify=SSL_CONTEXT,
    ) as c:
        yield c


def ingest(client: httpx.Client, key: str | None = None) -> str:
    headers = {"Idempotency-Key": key} if key else {}
    response = upload(client, "receipt.png", headers=headers)
    assert response.status_code == 202, response.text
    job_id: str = response.json()["data"]["job_id"]
    return job_id


def status(client: httpx.Client, job_id: str) -> int:
    return client.get(f"/api/jobs/{job_id}").status_code


def test_a_finished_job_expires_after_the_retention(
    client: httpx.Client, sim: SimulatorServer, clock: ManualClock
) -> None:
    job_id = ingest(client, key="order-1")
    sim.complete_now()
    clock.now += 59
    assert status(client, job_id) == 200
    clock.now += 1
    assert_error(client.get(f"/api/jobs/{job_id}"), 404, "JOB_NOT_FOUND")
    assert sim.jobs() == []
    assert sim.ingest_count() == 1  # jobs created: expiry does not uncount them
    # Its idempotency key went with it: the same key now makes a new job.
    again = upload(client, "receipt.png", headers={"Idempotency-Key": "order-1"})
    assert again.status_code == 202 and again.json()["data"]["job_id"] != job_id


def test_pending_jobs_are_never_evicted(
    client: httpx.Client, sim: SimulatorServer, clock: ManualClock
) -> None:
    pending = [ingest(client) for _ in range(5)]  # more than max_finished_jobs
    clock.now += 10**6
    assert [status(client, j) for j in pending] == [200] * 5
    assert {j["status"] for j in sim.jobs()} == {"queued"}


def test_beyond_the_count_the_oldest_finished_go_first(
    client: httpx.Client, sim: SimulatorServer, clock: ManualClock
) -> None:
    finished = []
    for _ in range(4):
        finished.append(ingest(client))
        sim.complete_now()
        clock.now += 1
    waiting = ingest(client)
    assert [status(client, j) for j in finished] == [404, 200, 200, 200]
    assert status(client, waiting) == 200
    finished.append(ingest(client))
    sim.complete_now()  # finishes `waiting` and the new one: two more finished jobs
    assert [status(client, j) for j in [*finished, waiting]] == [404, 404, 404, 200, 200, 200]


def test_the_bounds_are_flags_of_the_standalone_simulator() -> None:
    args = build_parser().parse_args(["--job-retention-s", "5", "--max-finished-jobs", "7"])
    config = config_from_args(args)
    assert (config.job_retention_s, config.max_finished_jobs) == (5.0, 7)
    defaults = config_from_args(build_parser().parse_args([]))
    assert (defaults.job_retention_s, defaults.max_finished_jobs) == (3600.0, 10_000)
