"""The simulator's knobs: one mutable dataclass that the server re-reads on every request.

Tests flip chaos on and off at runtime by assigning to the fields of the instance the
server holds (`server.config.error_rate = 1.0`); nothing caches a copy of them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

DEMO_API_KEY = "imggo_test_simulator"
LOOPBACK_HOSTS: frozenset[str] = frozenset({"127.0.0.1", "localhost", "::1"})


@dataclass
class SimulatorConfig:
    # Bearer keys the simulator accepts; each key is its own tenant (jobs, webhooks, limits).
    api_keys: frozenset[str] = field(default_factory=lambda: frozenset({DEMO_API_KEY}))
    # Extra latency slept in the handler of POST .../ingest, like a slow upstream.
    ingest_latency_s: float = 0.0
    # Time a job spends queued + running before it reaches a terminal status; with
    # processing_max_s above it, each job takes a uniform random time between the two.
    processing_s: float = 0.05
    processing_max_s: float | None = None
    # 0 = unlimited; else a fixed one-minute window per API key (shared by every client
    # of the key), then 429 + Retry-After until the window ends.
    rate_limit_per_minute: int = 0
    # Chaos, applied to ingest and job reads BEFORE any state change:
    error_rate: float = 0.0  # answered 500/502/503 at random
    rate_limited_rate: float = 0.0  # answered 429 with Retry-After: 1
    timeout_rate: float = 0.0  # slept `timeout_sleep_s`, then answered normally
    timeout_sleep_s: float = 2.0
    # Chaos: the ingest creates the job, then answers 500 (a client must retry idempotently).
    accepted_then_error_rate: float = 0.0
    # Chaos: fraction of webhook deliveries silently never sent.
    webhook_drop_rate: float = 0.0
    # Fraction of jobs that end `failed`, decided from the image digest and the request's
    # idempotency key (or job id), so the same logical request always gets the same fate.
    fail_rate: float = 0.0
    # The only hosts image_url fetches and webhook deliveries may reach. Exact match on the
    # URL's host: other names are refused without ever being resolved.
    fetch_allow_hosts: frozenset[str] = field(default_factory=lambda: LOOPBACK_HOSTS)
    # Seeds the chaos RNG and the processing-time RNG so test runs are reproducible.
    seed: int | None = None
    # Finished jobs are forgotten (404 JOB_NOT_FOUND, as an unknown id) once they have been
    # finished this long, or beyond this many (the oldest finished first), so a long `serve`
    # stays bounded. Jobs still queued or running are never forgotten.
    job_retention_s: float = 3600.0
    max_finished_jobs: int = 10_000
