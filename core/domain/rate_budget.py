"""The ImgGo rate budget every process holding one API key shares: its rule, pure.

ImgGo allows a plan's `limit` calls a minute per API key (5 to 200; CONTRACT.md), every
call counted: ingests, polls, exports. Every worker, instance and CLI holding the key
draws on that one allowance, so the budget is kept in the job store they share
(core.adapters.imggo.budget does the compare-and-set) and decided here.

The rule is GCRA, the "virtual scheduling" form of a token bucket: the budget remembers
`next_at`, the earliest time the next call may be sent. A taker reserves the slot at
max(next_at, now) and moves `next_at` one interval on, in a single compare-and-set, so
- concurrent takers never over-spend: each slot is won by exactly one writer;
- a taker waits for its own slot, computed at once, instead of waking with every other
  waiter to race for a freed token (no herd, one store write per call);
- a taker that crashes after reserving leaks exactly its own slot, nothing more: there
  is no lock to be left held.

Why not a fixed window aligned with ImgGo's (it resets its count each minute): we
cannot see where ImgGo's window starts, and calls reach it after varying latency; a
window-aligned budget spends its whole allowance in a burst at the window's start, so
the polls of jobs just submitted find nothing left. Slots spaced `60 / (limit - margin)`
seconds apart admit at most `limit` calls in ANY 60 s, wherever ImgGo's window falls,
and spread polls between submissions. The price is the margin: at least one slot a
minute, plus 1 % for jitter between our clock and ImgGo's (600/min: 594 used; 120: 119).

The limit is learnt from ImgGo's own answers: `X-RateLimit-Limit` on every answer sets
it; a 429's `Retry-After` (or, without one, `X-RateLimit-Remaining: 0` with a `Reset`
ahead) holds every slot until then (something else spent the key's allowance, or our
margin was not enough). Until the first answer the budget runs on a configured
starting limit and only lends the next slot (no queue of reservations made at a rate
nobody has confirmed).

Times are wall-clock unix seconds: the record is shared between machines.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, replace

WINDOW_S = 60.0
MIN_LIMIT = 1
# A header claiming more is a misconfigured proxy or a simulator without a limit: we
# still honour it, capped so the interval stays a sane float.
MAX_LIMIT = 10_000_000
# While the limit is unconfirmed, a taker whose slot is further off than this does not
# reserve it: it naps and asks again, by when an answer has probably taught the limit.
UNLEARNED_LEAD_S = 0.25


def interval_s(limit: int) -> float:
    """Seconds between two slots for a plan of `limit` calls a minute (see the module
    docstring for the margin)."""
    usable = max(limit - max(1, limit // 100), 1)
    return WINDOW_S / usable


@dataclass(frozen=True, slots=True)
class BudgetState:
    """The shared budget of one ImgGo key, as stored: the plan's limit and when the next
    call may go."""

    limit: int  # calls a minute, learnt or the starting value
    learned: bool  # the limit came from ImgGo's answer
    next_at: float  # the earliest time the next call may be sent
    hold_until: float = 0.0  # no call before this (Retry-After, Remaining: 0)

    @classmethod
    def fresh(cls, start_limit: int) -> BudgetState:
        return cls(limit=_clamp(start_limit), learned=False, next_at=0.0)

    # -- the stored form -------------------------------------------------------------

    def to_doc(self) -> str:
        return json.dumps(
            {
                "limit": self.limit,
                "learned": self.learned,
                "next_at": self.next_at,
                "hold_until": self.hold_until,
            },
            separators=(",", ":"),
        )

    @classmethod
    def from_doc(cls, doc: str) -> BudgetState:
        """ValueError for a document this code cannot read (the caller starts afresh:
        a budget is advisory state, never worth failing a call for)."""
        try:
            raw = json.loads(doc)
            state = cls(
                limit=_clamp(int(raw["limit"])),
                learned=bool(raw["learned"]),
                next_at=float(raw["next_at"]),
                hold_until=float(raw.get("hold_until", 0.0)),
            )
        except (TypeError, KeyError, ValueError, OverflowError) as exc:
            raise ValueError(f"unreadable rate budget ({type(exc).__name__})") from None
        if not (math.isfinite(state.next_at) and math.isfinite(state.hold_until)):
            raise ValueError("unreadable rate budget (not a finite time)")
        return state


@dataclass(frozen=True, slots=True)
class Reservation:
    """What a taker got: `send_at`, its slot (now or later), with `state` to store; or,
    when the slot is further off than the taker may wait, `state` None and `send_at`
    when it would have been - nothing is reserved then."""

    send_at: float
    state: BudgetState | None

    @property
    def reserved(self) -> bool:
        return self.state is not None


def reserve(state: BudgetState, *, now: float, max_wait_s: float) -> Reservation:
    """The next slot for a call that can wait at most `max_wait_s` for it."""
    send_at = max(state.next_at, state.hold_until, now)
    max_wait_s = max(0.0, max_wait_s)  # a slot free now is always taken
    lead = UNLEARNED_LEAD_S if not state.learned else max_wait_s
    if send_at - now > min(lead, max_wait_s):
        return Reservation(send_at, None)
    return Reservation(send_at, replace(state, next_at=send_at + interval_s(state.limit)))


def learn(
    state: BudgetState,
    *,
    now: float,
    limit: int | None,
    remaining: int | None,
    reset_at: float | None,
    retry_after_s: float | None,
) -> BudgetState:
    """`state` after one ImgGo answer's headers (the same state when they teach nothing
    new, so the caller can skip the write)."""
    learned = state
    if limit is not None and limit >= MIN_LIMIT:
        clamped = _clamp(limit)
        if clamped != state.limit or not state.learned:
            learned = replace(learned, limit=clamped, learned=True)
            if clamped > state.limit:
                # Slots reserved at the old, slower rate stand; the next one need not
                # wait a whole old interval.
                learned = replace(learned, next_at=min(learned.next_at, now + interval_s(clamped)))
    hold = learned.hold_until
    if retry_after_s is not None:
        # A 429's own word on when to come back beats the window's reset beside it.
        hold = max(hold, now + retry_after_s)
    elif remaining == 0 and reset_at is not None and reset_at > now:
        hold = max(hold, reset_at)
    if hold > learned.hold_until:
        learned = replace(learned, hold_until=hold)
    return learned


def _clamp(limit: int) -> int:
    return min(max(limit, MIN_LIMIT), MAX_LIMIT)


__all__ = ["BudgetState", "Reservation", "interval_s", "learn", "reserve"]
