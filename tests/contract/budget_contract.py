"""The rate budget's part of the store contract (read_budget / write_budget), and the
shared budget run over it: what every store must show so that all processes sharing it
share one ImgGo allowance. Mixed into StoreContract, so every backend runs it.

The budget's rule is core.domain.rate_budget; these tests drive the real
SharedRateBudget on the store under test with a frozen wall clock and a sleep that only
records, so the slots it hands out can be checked exactly, under real concurrency.
"""

from __future__ import annotations

import itertools
import threading
import uuid
from collections.abc import Callable
from typing import Any, ClassVar

from core.adapters.imggo.budget import SharedRateBudget
from core.adapters.imggo.headers import RateLimit
from core.domain.rate_budget import WINDOW_S, BudgetState, interval_s
from core.ports import ImageApiError, JobStore
from tests.contract.racing import race

T0 = 1_700_000_000.0


def _bucket() -> str:
    return f"imggo-{uuid.uuid4().hex[:12]}"


def _budget(store: JobStore, bucket: str, *, now: Callable[[], float] = lambda: T0) -> Any:
    return SharedRateBudget(store, bucket, start_limit=60, wall_clock=now, sleep=lambda s: None)


class BudgetContract:
    budget_threads: ClassVar[int] = 8
    budget_takes: ClassVar[int] = 10  # per thread

    def test_a_budget_is_written_once_per_version(self, store: JobStore) -> None:
        bucket = _bucket()
        assert store.read_budget(bucket) is None
        assert store.write_budget(bucket, '{"a":1}', expected=0) is True
        assert store.write_budget(bucket, '{"a":2}', expected=0) is False
        first = store.read_budget(bucket)
        assert first is not None and (first.doc, first.version) == ('{"a":1}', 1)
        assert store.write_budget(bucket, '{"a":3}', expected=1) is True
        assert store.write_budget(bucket, '{"a":4}', expected=1) is False
        latest = store.read_budget(bucket)
        assert latest is not None and (latest.doc, latest.version) == ('{"a":3}', 2)
        assert store.read_budget(_bucket()) is None  # buckets are apart

    def test_racing_budget_writers_have_one_winner_per_version(self, store: JobStore) -> None:
        bucket = _bucket()
        store.write_budget(bucket, "v1", expected=0)
        wins: list[int] = []
        race(
            self.budget_threads,
            lambda i: wins.append(i) if store.write_budget(bucket, f"by-{i}", expected=1) else None,
        )
        assert len(wins) == 1
        stored = store.read_budget(bucket)
        assert stored is not None and stored.version == 2 and stored.doc == f"by-{wins[0]}"

    def test_concurrent_takers_never_overspend(self, store: JobStore) -> None:
        bucket = _bucket()
        limit = 600
        teacher = _budget(store, bucket)
        teacher.observe(RateLimit(limit, limit, None), None)  # the plan, as ImgGo states it
        slots: list[float] = []
        lock = threading.Lock()

        def take(_: int) -> None:
            budget = _budget(store, bucket)  # one per "process": nothing shared but the store
            taken = 0
            while taken < self.budget_takes:
                try:
                    at = budget.acquire(max_wait_s=3600)
                except ImageApiError as exc:
                    # Every attempt lost to other takers (each of which won a slot):
                    # the budget's "busy, ask again" - as the client's retry would.
                    assert exc.code == "rate_limited"
                    continue
                taken += 1
                with lock:
                    slots.append(at)

        race(self.budget_threads, take)
        slots.sort()
        taken = self.budget_threads * self.budget_takes
        assert len(slots) == taken
        gap = interval_s(limit)
        # Every taker has a slot of its own, one interval from the next...
        assert all(b - a >= gap * 0.999 for a, b in itertools.pairwise(slots))
        # ...so no 60 s holds more calls than the plan allows, wherever the minute starts.
        for i, start in enumerate(slots):
            in_window = sum(1 for s in slots[i:] if s < start + WINDOW_S)
            assert in_window <= limit
        assert slots[-1] - slots[0] < gap * taken  # and none was wasted on the way

    def test_a_crashed_taker_leaks_only_its_own_slot(self, store: JobStore) -> None:
        bucket = _bucket()
        _budget(store, bucket).observe(RateLimit(120, 120, None), None)
        crashed = _budget(store, bucket)
        # A taker that read the budget and died before writing holds nothing.
        assert store.read_budget(bucket) is not None
        reserved = crashed.acquire(max_wait_s=60)  # ...and one that reserved, then died
        after = _budget(store, bucket).acquire(max_wait_s=60)
        assert after == reserved + interval_s(120)

    def test_a_slot_too_far_off_is_not_reserved(self, store: JobStore) -> None:
        bucket = _bucket()
        budget = _budget(store, bucket)
        budget.observe(RateLimit(5, 5, None), None)
        first = budget.acquire(max_wait_s=0)
        before = store.read_budget(bucket)
        try:
            budget.acquire(max_wait_s=1.0)
        except Exception as exc:
            assert getattr(exc, "code", None) == "rate_limited"
            assert abs(exc.retry_after_s - interval_s(5)) < 1e-6  # type: ignore[attr-defined]
        else:
            raise AssertionError("a slot 15 s away was handed to a call that may wait 1 s")
        assert store.read_budget(bucket) == before  # nothing was reserved
        assert first == T0

    def test_a_429_holds_every_taker_until_retry_after(self, store: JobStore) -> None:
        bucket = _bucket()
        one, other = _budget(store, bucket), _budget(store, bucket)
        one.observe(RateLimit(600, 0, None), 30.0)
        stored = store.read_budget(bucket)
        assert stored is not None
        assert BudgetState.from_doc(stored.doc).hold_until == T0 + 30.0
        assert other.acquire(max_wait_s=60) == T0 + 30.0

    def test_peek_shows_the_shared_budget_and_reserves_nothing(self, store: JobStore) -> None:
        bucket = _bucket()
        fresh = _budget(store, bucket).peek()
        assert (fresh.limit, fresh.learned, fresh.next_at) == (60, False, 0.0)
        taker = _budget(store, bucket)
        taker.observe(RateLimit(120, 120, None), None)
        slots = [taker.acquire(max_wait_s=60) for _ in range(3)]
        before = store.read_budget(bucket)
        seen = _budget(store, bucket).peek()  # another process, looking before it asks
        assert (seen.limit, seen.learned) == (120, True)
        assert seen.next_at == slots[-1] + interval_s(120)
        assert store.read_budget(bucket) == before
