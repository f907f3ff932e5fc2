"""imggo_cli.pacing: the CLI starts a call only when the shared budget has a slot near,
reserving nothing itself, and measures how far apart its calls go."""

from __future__ import annotations

import pytest

from core.adapters.imggo.budget import NO_BUDGET, SharedRateBudget
from core.adapters.imggo.headers import RateLimit
from core.adapters.stores.memory import MemoryJobStore
from core.domain.rate_budget import interval_s
from imggo_cli.pacing import GATE_LEAD_S, CallSpacing, SlotGate, eta_s

T0 = 1_700_000_000.0
BUCKET = "imggo-test"


class FakeTime:
    """One clock for wall and monotonic time; a pause moves it on."""

    def __init__(self) -> None:
        self.now = T0
        self.pauses: list[float] = []

    def __call__(self) -> float:
        return self.now

    def pause(self, seconds: float) -> bool:
        self.pauses.append(seconds)
        self.now += seconds
        return False


@pytest.fixture
def clock() -> FakeTime:
    return FakeTime()


@pytest.fixture
def store() -> MemoryJobStore:
    return MemoryJobStore()


def _budget(store: MemoryJobStore, clock: FakeTime, limit: int | None = 120) -> SharedRateBudget:
    budget = SharedRateBudget(store, BUCKET, start_limit=60, wall_clock=clock, sleep=lambda _: None)
    if limit is not None:
        budget.observe(RateLimit(limit, limit, None), None)  # ImgGo states the plan
    return budget


def _gate(budget, clock: FakeTime) -> SlotGate:
    return SlotGate(budget, wall_clock=clock, clock=clock)


def test_a_call_goes_only_near_the_slot_others_left_and_reserves_nothing(store, clock):
    other = _budget(store, clock)  # another process, three calls ahead
    reserved = [other.acquire(max_wait_s=60) for _ in range(3)]
    gate = _gate(_budget(store, clock), clock)
    before = store.read_budget(BUCKET)
    slot = gate.wait(deadline=T0 + 60, pause=clock.pause)
    assert slot == pytest.approx(reserved[-1] + interval_s(120))
    assert clock.pauses == [pytest.approx(slot - T0 - GATE_LEAD_S)]
    assert store.read_budget(BUCKET) == before  # looking is free


def test_calls_let_through_are_spaced_before_they_have_reserved(store, clock):
    gate = _gate(_budget(store, clock), clock)
    first = gate.wait(deadline=T0 + 60, pause=clock.pause)
    second = gate.wait(deadline=T0 + 60, pause=clock.pause)  # the first has not called yet
    assert first == T0
    assert second == pytest.approx(T0 + interval_s(120))


def test_a_hold_after_a_429_keeps_every_call_back(store, clock):
    _budget(store, clock).observe(None, retry_after_s=5.0)
    gate = _gate(_budget(store, clock, limit=None), clock)
    assert gate.wait(deadline=T0 + 60, pause=clock.pause) == pytest.approx(T0 + 5.0)


def test_the_deadline_and_a_ctrl_c_end_the_wait(store, clock):
    _budget(store, clock).observe(None, retry_after_s=30.0)
    gate = _gate(_budget(store, clock, limit=None), clock)
    assert gate.wait(deadline=T0 + 2, pause=clock.pause) is None
    assert clock.now == pytest.approx(T0 + 2)  # it waited until the deadline, not longer
    assert gate.wait(deadline=T0 + 60, pause=lambda s: True) is None


def test_without_a_budget_calls_go_at_once(clock):
    gate = _gate(NO_BUDGET, clock)
    assert gate.wait(deadline=T0 + 1, pause=clock.pause) == T0
    assert gate.wait(deadline=T0 + 1, pause=clock.pause) == T0
    assert gate.limit_text() == "" and gate.interval_s() is None


def test_the_limit_shows_a_question_mark_until_imggo_states_it(store, clock):
    gate = _gate(_budget(store, clock, limit=None), clock)
    assert gate.limit_text() == "60/min?"
    _budget(store, clock, limit=120)
    gate.wait(deadline=T0 + 1, pause=clock.pause)
    assert gate.limit_text() == "120/min"


def test_spacing_counts_the_gaps_of_a_busy_process_only():
    spacing = CallSpacing()
    assert spacing.seconds(floor=0.5) == 0.5  # nothing measured: the budget's interval
    slots = [0.0, 1.5, 3.0]
    for slot in slots:  # 1.5 s apart while busy: others took their turns between
        spacing.record(slot, more_waiting=True)
    assert spacing.seconds(floor=0.5) == 0.5  # two gaps are not enough to go on
    assert not spacing.measured  # (the progress line says `ETA at least`)
    spacing.record(4.5, more_waiting=False)
    assert spacing.seconds(floor=0.5) == 1.5 and spacing.measured
    spacing.record(60.0, more_waiting=True)  # after an idle spell: not a gap of ours
    assert spacing.seconds(floor=0.5) == 1.5
    spacing.record(61.5, more_waiting=True)
    spacing.record(71.5, more_waiting=True)  # one call held up (a busy machine)...
    assert spacing.seconds(floor=0.5) == 1.5  # ...does not make the ETA leap
    assert spacing.seconds(floor=2.0) == 2.0  # never faster than the budget allows


def test_the_eta_is_the_calls_left_or_the_last_jobs_processing_whichever_ends_later():
    # 10 calls 1.5 s apart; the last submission after 4 of them, ImgGo needs 2 s for it.
    assert (
        eta_s(calls=10, calls_to_last_send=4, spacing_s=1.5, processing_s=2.0, until_due_s=0.0)
        == 15.0
    )
    # ... but 10 s for it: the last result comes after its processing.
    assert (
        eta_s(calls=10, calls_to_last_send=4, spacing_s=1.5, processing_s=10.0, until_due_s=0.0)
        == 16.0
    )
    # Everything sent: the polls, or the last one planned, whichever is later.
    assert (
        eta_s(calls=2, calls_to_last_send=0, spacing_s=0.5, processing_s=10.0, until_due_s=9.0)
        == 9.0
    )
