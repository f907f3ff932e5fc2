"""`imggo-fn ingest` paced on the ImgGo rate budget it shares with every process using
the same store and API key (core.adapters.imggo.budget), and the ETA that follows.

Every call takes a slot from that budget, and waits for it inside the client. A CLI
with many workers asking at once would have each of them reserve a slot further ahead
and sleep in it: uninterruptibly (a Ctrl-C waits, and leaks the slots), and at a low
limit past the time a call may wait, so calls would be deferred that had only to wait
their turn. So the CLI looks before it asks: `SlotGate.wait` lets the next call start
only once the budget's next free slot - as the store says now, and never before one
interval after the slot of the call it let through last, which may not have reserved
it yet - is at most GATE_LEAD_S away, and sleeps until then, interruptibly, holding
nothing. Every CLI process on the store does the same, so they take turns on the one
budget instead of queueing up in it, and each has at most a slot or two reserved.

The ETA (`eta_s`) counts the calls still needed in the time between two of this
process's calls (`CallSpacing`): the budget's interval while the process has the
budget to itself, more when other processes share it. That is measured, not guessed:
while this process has calls waiting, each call starts some slots after its previous
one - one when no one else wants the budget, three when two other processes take their
turns between. The last submission's job still needs ImgGo's processing time after
it, so that is added where it ends later than the remaining calls. Until the spacing
is measured the budget's interval stands in for it, and the progress line says `ETA at
least`: a process that shares the budget finds out only by its first gaps.
"""

from __future__ import annotations

import statistics
import time
from collections import deque
from collections.abc import Callable

from core.adapters.imggo.budget import RateBudget
from core.domain.rate_budget import BudgetState, interval_s

# How far ahead of its slot a call is let through: enough for the store round trips
# before it reaches the budget, and short enough that a Ctrl-C is never kept waiting.
GATE_LEAD_S = 0.5
# The spacing between this process's calls: the median of this many recent gaps, once
# there are MIN_GAPS of them.
SPACING_GAPS, MIN_GAPS = 9, 3


class SlotGate:
    """Start calls only as the shared budget can take them. One thread calls `wait`
    (the ingest's dispatcher): the gate remembers the slot it let through last."""

    def __init__(
        self,
        budget: RateBudget,
        *,
        lead_s: float = GATE_LEAD_S,
        wall_clock: Callable[[], float] = time.time,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._budget = budget
        self._lead = lead_s
        self._wall = wall_clock
        self._clock = clock
        self._granted: float | None = None
        self.state: BudgetState | None = budget.peek()

    def wait(self, *, deadline: float, pause: Callable[[float], bool]) -> float | None:
        """The wall time of the slot the next call will take, once it is near; None when
        `deadline` (a `clock` time) comes first or `pause(seconds)` (a sleep that says
        whether it was interrupted, such as Event.wait) is interrupted."""
        while True:
            self.state = state = self._budget.peek()
            now = self._wall()
            if state is None:  # no budget: nothing to pace on
                slot = now
            else:
                slot = max(state.next_at, state.hold_until, now)
                if self._granted is not None:
                    slot = max(slot, self._granted + interval_s(state.limit))
            early = slot - now - self._lead
            if early <= 0:
                self._granted = slot
                return slot
            left = deadline - self._clock()
            if left <= 0 or pause(min(early, left)):
                return None

    def limit_text(self) -> str:
        """`120/min`, with a `?` while it is the starting guess, not ImgGo's word; empty
        without a budget."""
        if self.state is None:
            return ""
        return f"{self.state.limit}/min" + ("" if self.state.learned else "?")

    def interval_s(self) -> float | None:
        return interval_s(self.state.limit) if self.state is not None else None


class CallSpacing:
    """The time between two consecutive calls of this process while it has more to
    send: the median of the last SPACING_GAPS gaps between slots (a machine too busy to
    run a thread for a moment must not make the ETA leap), counting a gap only when
    another call was already waiting as the first one went (otherwise it is idleness)."""

    def __init__(self) -> None:
        self._last: float | None = None
        self._busy = False
        self._gaps: deque[float] = deque(maxlen=SPACING_GAPS)

    def record(self, slot: float, *, more_waiting: bool) -> None:
        if self._busy and self._last is not None:
            self._gaps.append(max(0.0, slot - self._last))
        self._last, self._busy = slot, more_waiting

    @property
    def measured(self) -> bool:
        """Whether `seconds` is measured; until then it is the floor, a lower bound."""
        return len(self._gaps) >= MIN_GAPS

    def seconds(self, floor: float | None) -> float | None:
        """The measured spacing, never below `floor` (the budget's interval: no process
        calls faster than that); the floor alone until MIN_GAPS gaps were measured."""
        if not self.measured:
            return floor
        return max(statistics.median(self._gaps), floor or 0.0)


def eta_s(
    *,
    calls: float,
    calls_to_last_send: float,
    spacing_s: float,
    processing_s: float,
    until_due_s: float,
) -> float:
    """Seconds until the last result is in. The calls still needed take `calls` spacings
    of this process's calls; and the last submission goes after `calls_to_last_send` of
    them, then its job needs `processing_s` at ImgGo before its poll can find it done
    (the other calls left run meanwhile); and the last poll already planned is due in
    `until_due_s`. The latest of the three."""
    last_result = calls_to_last_send * spacing_s + processing_s if calls_to_last_send else 0.0
    return max(calls * spacing_s, last_result, until_due_s)


__all__ = ["GATE_LEAD_S", "CallSpacing", "SlotGate", "eta_s"]
