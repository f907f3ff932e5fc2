"""Where the ImgGo client takes its calls from: the rate budget shared through the job
store (`SharedRateBudget`), or none at all (`NO_BUDGET`).

The rule - slots, learning from ImgGo's headers - is core.domain.rate_budget's; this
module reads and compare-and-sets its record in the store (`read_budget` /
`write_budget`, proven on every backend by tests/contract), and waits for the slot it
won. A call that cannot have a slot within the time it may wait raises ImageApiError
`rate_limited` (retryable, with `retry_after_s`): the caller defers the work instead of
spending its deadline, and ImgGo never sees the call.

The budget is advisory. If the store cannot be read or written, the call goes ahead
unbudgeted (logged once per outage) and ImgGo's own 429s, which the client honours,
are the only brake: failing closed would stop every call for an outage of a record
that merely spreads them out.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Callable
from typing import Protocol

from core.adapters.imggo.headers import RateLimit
from core.domain.errors import DomainError
from core.domain.rate_budget import BudgetState, learn, reserve
from core.ports import ImageApiError, JobStore

log = logging.getLogger("imggo.budget")

# Lost compare-and-sets before a taker gives up for this call (each loss means another
# taker won a slot: under any real load a handful is plenty).
_CAS_ATTEMPTS = 32
_NAP_S = 0.05  # between asks while the limit is still unconfirmed


def bucket_for(api_key: str, base_url: str) -> str:
    """The budget's name in the store: one per key and ImgGo, never the key itself."""
    digest = hashlib.sha256(f"{base_url}\x00{api_key}".encode()).hexdigest()
    return f"imggo-{digest[:32]}"


class RateBudget(Protocol):
    def acquire(self, *, max_wait_s: float) -> float:
        """Return when the caller may send one call (having waited for its slot), with
        the slot's wall-clock time; or raise ImageApiError `rate_limited` when that
        would take longer than `max_wait_s`."""
        ...

    def observe(self, rate_limit: RateLimit | None, retry_after_s: float | None) -> None:
        """Learn from one ImgGo answer's headers."""
        ...

    def peek(self) -> BudgetState | None:
        """The budget as it stands now, reserving nothing (a caller pacing itself reads
        when the next slot is free); None when there is no budget."""
        ...


class _NoBudget:
    def acquire(self, *, max_wait_s: float) -> float:
        return time.time()

    def observe(self, rate_limit: RateLimit | None, retry_after_s: float | None) -> None:
        return None

    def peek(self) -> BudgetState | None:
        return None


NO_BUDGET: RateBudget = _NoBudget()


def rate_limited(wait_s: float) -> ImageApiError:
    return ImageApiError(
        f"ImgGo's rate budget has no call free for {wait_s:.1f} s",
        code="rate_limited",
        retryable=True,
        retry_after_s=wait_s,
    )


class SharedRateBudget:
    """The budget named `bucket` in `store`, shared with every process using it."""

    def __init__(
        self,
        store: JobStore,
        bucket: str,
        *,
        start_limit: int,
        wall_clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._store = store
        self._bucket = bucket
        self._start = BudgetState.fresh(start_limit)
        self._wall = wall_clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._last: BudgetState = self._start  # what this process last read or wrote
        self._outage = False

    def acquire(self, *, max_wait_s: float) -> float:
        until = self._wall() + max(0.0, max_wait_s)
        for _ in range(_CAS_ATTEMPTS):
            try:
                state, version = self._read()
                now = self._wall()
                slot = reserve(state, now=now, max_wait_s=until - now)
                if slot.state is None:
                    if not state.learned and slot.send_at <= until:
                        self._sleep(min(_NAP_S, max(0.0, until - now)))
                        continue
                    raise rate_limited(max(0.0, slot.send_at - now))
                won = self._store.write_budget(self._bucket, slot.state.to_doc(), expected=version)
            except DomainError as exc:
                self._store_failed(exc)
                return self._wall()
            if won:
                self._recovered()
                self._last = slot.state
                wait = slot.send_at - self._wall()
                if wait > 0:
                    self._sleep(wait)
                return slot.send_at
        # Every attempt lost to another taker: each of those won a slot, so the budget is
        # busy, not broken. Try again shortly, like a slot just out of reach.
        raise rate_limited(_NAP_S)

    def peek(self) -> BudgetState:
        """The budget as the store holds it now; what this process last saw when the
        store cannot be read (advisory, like every use of it)."""
        try:
            state, _ = self._read()
        except DomainError as exc:
            self._store_failed(exc)
            return self._last
        return state

    def observe(self, rate_limit: RateLimit | None, retry_after_s: float | None) -> None:
        if rate_limit is None and retry_after_s is None:
            return
        heard = rate_limit or RateLimit(None, None, None)

        def learnt(state: BudgetState) -> BudgetState:
            return learn(
                state,
                now=self._wall(),
                limit=heard.limit,
                remaining=heard.remaining,
                reset_at=heard.reset_at,
                retry_after_s=retry_after_s,
            )

        if learnt(self._last) == self._last:
            return  # nothing new since we last looked: no store call
        try:
            for _ in range(_CAS_ATTEMPTS):
                state, version = self._read()
                learned = learnt(state)
                if learned == state:
                    return
                if self._store.write_budget(self._bucket, learned.to_doc(), expected=version):
                    self._last = learned
                    if learned.limit != state.limit:
                        log.info("ImgGo's limit for this key: %d calls a minute", learned.limit)
                    return
        except DomainError as exc:
            self._store_failed(exc)

    def _read(self) -> tuple[BudgetState, int]:
        stored = self._store.read_budget(self._bucket)
        if stored is None:
            return self._start, 0
        try:
            state = BudgetState.from_doc(stored.doc)
        except ValueError as exc:
            # Overwritten by the next write (its version is still the one we read).
            log.warning("rate budget %s: %s; starting it afresh", self._bucket, exc)
            state = self._start
        self._last = state
        return state, stored.version

    def _store_failed(self, exc: DomainError) -> None:
        with self._lock:
            first, self._outage = not self._outage, True
        if first:
            log.warning(
                "rate budget unavailable (%s): calling ImgGo unbudgeted until it is back",
                exc.code,
            )

    def _recovered(self) -> None:
        if self._outage:
            with self._lock:
                self._outage = False
            log.info("rate budget available again")


__all__ = ["NO_BUDGET", "RateBudget", "SharedRateBudget", "bucket_for", "rate_limited"]
