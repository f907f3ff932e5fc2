"""Counts of what each API key sent and how it was answered, for benchmarks and tests.

Read at `GET /_sim/stats` (control.py) and from `SimulatorServer.stats()`: the same
snapshot. Keys are named by their key id (callers.key_id), never by the key. A request
is counted once, when it is answered:

- `requests`: every /api request answered to a caller presenting this (accepted) key:
  exactly the requests its rate-limit window was charged with, 429s included;
- `rate_limited`: those answered 429, whether the window refused them or chaos did;
- `ingests`: POST /api/patterns/{id}/ingest requests, replays and refusals included;
- `jobs_created`: ingests that created a job (not idempotent replays, not refusals);
- `polls`: GET /api/jobs/{id} requests, whatever the answer.

Requests no key is charged for (the health check, unknown routes, a missing or refused
key) are counted under `unattributed`. /_sim requests themselves are never counted:
reading the counters must not change them.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from .ratelimit import WINDOW_S
from .timestamps import iso_ms


@dataclass(slots=True)
class Counts:
    requests: int = 0
    rate_limited: int = 0
    ingests: int = 0
    jobs_created: int = 0
    polls: int = 0

    def add(self, other: Counts) -> None:
        self.requests += other.requests
        self.rate_limited += other.rate_limited
        self.ingests += other.ingests
        self.jobs_created += other.jobs_created
        self.polls += other.polls


class RequestStats:
    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._keys: dict[str, Counts] = {}
        self._unattributed = Counts()
        self._since = clock()

    def answered(self, key_id: str | None, *, status: int, ingest: bool, poll: bool) -> None:
        """Count one answered /api request; `key_id` None when no key was charged."""
        with self._lock:
            counts = self._bucket(key_id)
            counts.requests += 1
            counts.rate_limited += status == 429
            counts.ingests += ingest
            counts.polls += poll

    def job_created(self, key_id: str) -> None:
        with self._lock:
            self._bucket(key_id).jobs_created += 1

    def totals(self) -> Counts:
        with self._lock:
            return self._totals()

    def snapshot(self, rate_limit_per_minute: int) -> dict[str, Any]:
        """The counts since the start or the last reset, and the limit now configured."""
        with self._lock:
            return self._snapshot(rate_limit_per_minute)

    def reset(self, rate_limit_per_minute: int) -> dict[str, Any]:
        """Zero every counter; returns the snapshot just before, taken atomically, so a
        benchmark that resets between phases loses no request to a race."""
        with self._lock:
            before = self._snapshot(rate_limit_per_minute)
            self._keys = {}
            self._unattributed = Counts()
            self._since = self._clock()
            return before

    # Under the lock, all of them.
    def _bucket(self, key_id: str | None) -> Counts:
        if key_id is None:
            return self._unattributed
        counts = self._keys.get(key_id)
        if counts is None:
            counts = self._keys[key_id] = Counts()
        return counts

    def _totals(self) -> Counts:
        totals = Counts()
        totals.add(self._unattributed)
        for counts in self._keys.values():
            totals.add(counts)
        return totals

    def _snapshot(self, rate_limit_per_minute: int) -> dict[str, Any]:
        return {
            "since": iso_ms(self._since),
            "rate_limit_per_minute": rate_limit_per_minute,  # 0 = no limit
            "window_s": WINDOW_S,
            "keys": {key: asdict(counts) for key, counts in sorted(self._keys.items())},
            "unattributed": asdict(self._unattributed),
            "totals": asdict(self._totals()),
        }
