"""GET /_sim/stats: per-key counts for benchmarks and tests, outside ImgGo's /api."""

from __future__ import annotations

from typing import Any

import httpx

from imggo_simulator import DEMO_API_KEY, SimulatorServer, key_id
from tests.simulator.helpers import ISO_MS, OTHER_KEY, SSL_CONTEXT, assert_error, upload

COUNTERS = ("requests", "rate_limited", "ingests", "jobs_created", "polls")


def _counts(**values: int) -> dict[str, int]:
    return {name: values.get(name, 0) for name in COUNTERS}


def _stats(sim: SimulatorServer, **kw: Any) -> httpx.Response:
    return httpx.get(f"{sim.url}/_sim/stats", trust_env=False, verify=SSL_CONTEXT, **kw)


def test_stats_count_what_each_key_sent_and_was_answered(
    sim: SimulatorServer, client: httpx.Client
) -> None:
    sim.config.rate_limit_per_minute = 5
    key = {"Idempotency-Key": "stats-1"}
    job_id = upload(client, "invoice.png", headers=key).json()["data"]["job_id"]
    assert upload(client, "invoice.png", headers=key).status_code == 200  # a replay: no job
    assert client.get(f"/api/jobs/{job_id}").status_code == 200
    assert client.get(f"/api/jobs/{job_id}").status_code == 200
    assert client.get("/api/patterns").status_code == 200  # the window's 5th and last
    assert client.get("/api/patterns").status_code == 429
    assert client.get(f"/api/jobs/{job_id}").status_code == 429  # a poll all the same
    other = {"Authorization": f"Bearer {OTHER_KEY}"}
    assert upload(client, "receipt.png", headers=other).status_code == 202
    stranger = {"Authorization": "Bearer imggo_test_not_accepted"}
    assert upload(client, "receipt.png", headers=stranger).status_code == 401
    assert client.get("/api/_health").status_code == 200

    response = _stats(sim)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")
    stats = response.json()
    assert stats["rate_limit_per_minute"] == 5 and stats["window_s"] == 60
    assert ISO_MS.match(stats["since"])
    assert stats["keys"] == {
        key_id(DEMO_API_KEY): _counts(
            requests=7, rate_limited=2, ingests=2, jobs_created=1, polls=3
        ),
        key_id(OTHER_KEY): _counts(requests=1, ingests=1, jobs_created=1),
    }
    assert stats["unattributed"] == _counts(requests=2, ingests=1)  # the 401 and the health
    assert stats["totals"] == _counts(
        requests=10, rate_limited=2, ingests=4, jobs_created=2, polls=3
    )
    # The in-process view is the same, and the existing counters agree with it.
    assert sim.stats() == stats
    assert sim.ingest_count() == 2 and sim.ingest_calls() == 4


def test_stats_never_show_an_api_key(sim: SimulatorServer, client: httpx.Client) -> None:
    client.get("/api/patterns")
    client.get("/api/patterns", headers={"Authorization": f"Bearer {OTHER_KEY}"})
    text = _stats(sim).text
    assert DEMO_API_KEY not in text and OTHER_KEY not in text
    assert key_id(DEMO_API_KEY) in text and key_id(OTHER_KEY) in text
    assert key_id(DEMO_API_KEY) != key_id(OTHER_KEY)


def test_stats_are_outside_the_api_and_its_rate_limit(
    sim: SimulatorServer, client: httpx.Client
) -> None:
    sim.config.rate_limit_per_minute = 1
    assert client.get("/api/patterns").status_code == 200
    assert client.get("/api/patterns").status_code == 429
    # No key needed, a key is not charged, and reading them changes none of them.
    for headers in ({}, {"Authorization": f"Bearer {DEMO_API_KEY}"}):
        for _ in range(3):
            response = _stats(sim, headers=headers)
            assert response.status_code == 200, response.text
            assert not any(h.lower().startswith("x-ratelimit") for h in response.headers)
            assert "retry-after" not in response.headers
    assert sim.stats()["keys"][key_id(DEMO_API_KEY)]["requests"] == 2
    assert sim.stats()["totals"]["requests"] == 2
    # ImgGo's API has no such path, and the simulator does not pretend it does.
    assert_error(client.get("/api/_sim/stats"), 404, "NOT_FOUND")
    assert_error(client.get("/_sim/nope"), 404, "NOT_FOUND")
    assert_error(client.get("/_sim/stats/reset"), 405, "METHOD_NOT_ALLOWED")
    assert_error(client.delete("/_sim/stats"), 405, "METHOD_NOT_ALLOWED")


def test_reset_answers_the_counts_and_starts_again_from_zero(
    sim: SimulatorServer, client: httpx.Client
) -> None:
    sim.config.rate_limit_per_minute = 2
    upload(client, "invoice.png")
    client.get("/api/patterns")
    assert client.get("/api/patterns").status_code == 429
    since = sim.stats()["since"]

    reset = httpx.post(f"{sim.url}/_sim/stats/reset", trust_env=False, verify=SSL_CONTEXT)
    assert reset.status_code == 200, reset.text
    before = reset.json()
    assert before["totals"] == _counts(requests=3, rate_limited=1, ingests=1, jobs_created=1)
    assert before["since"] == since
    after = sim.stats()
    assert after["keys"] == {} and after["totals"] == _counts()
    assert after["since"] >= since
    assert sim.ingest_count() == 0 and sim.ingest_calls() == 0
    # Counters only: the key's window is ImgGo's state and is still spent.
    assert client.get("/api/patterns").status_code == 429
    assert sim.reset_stats()["totals"] == _counts(requests=1, rate_limited=1)
    assert sim.stats()["totals"] == _counts()
