"""imggo_cli.polling: the first poll learns when ImgGo is probably done, retries back off."""

from __future__ import annotations

import random

import pytest

from imggo_cli.polling import JITTER, QUANTILE, RETRY_MAX_S, PollPlan


def _run(plan: PollPlan, latencies: list[float]) -> list[bool]:
    """Each job first polled on time, at the estimate: whether it was found unfinished."""
    misses = []
    for latency in latencies:
        age = plan.expected_s
        plan.learn(age_s=age, finished=latency <= age)
        misses.append(latency > age)
    return misses


def test_a_steady_time_is_learnt_from_a_low_first_guess_and_polls_then_hit():
    plan = PollPlan(first_s=0.5, rng=random.Random(1))
    misses = _run(plan, [2.0] * 400)
    assert sum(misses[:20]) <= 8  # a handful of early polls, then the estimate is past 2 s
    assert 1.9 <= plan.expected_s <= 2.0 * 1.3
    assert sum(misses[200:]) / 200 <= 1 - QUANTILE + 0.05


def test_a_high_first_guess_comes_down_to_what_imggo_needs():
    plan = PollPlan(first_s=20.0)
    _run(plan, [1.0] * 400)
    assert 0.95 <= plan.expected_s <= 1.3  # it hovers just around 1 s


def test_varying_times_leave_about_one_job_in_ten_to_a_second_poll():
    rng = random.Random(7)
    plan = PollPlan(first_s=1.0, rng=rng)
    latencies = [rng.uniform(0.5, 2.0) for _ in range(3000)]
    misses = _run(plan, latencies)
    share = sum(misses[500:]) / len(misses[500:])
    assert 0.04 <= share <= 0.2, share
    assert 1.5 <= plan.expected_s <= 2.3  # near the 90th percentile, 1.85 s


def test_many_polls_planned_at_one_estimate_raise_it_once():
    plan = PollPlan(first_s=1.0)
    for _ in range(16):  # all sent at once, all asked at 1 s, all still running
        plan.learn(age_s=1.0, finished=False)
    assert plan.expected_s == pytest.approx(1.0 * 2.718281828 ** (0.25 * QUANTILE))


def test_a_late_poll_that_finds_the_job_done_teaches_nothing():
    plan = PollPlan(first_s=1.0)
    plan.learn(age_s=30.0, finished=True)  # queued behind other calls: says nothing of 1 s
    assert plan.expected_s == 1.0
    plan.learn(age_s=30.0, finished=False)  # but a job unfinished at 30 s says a lot
    assert plan.expected_s > 30.0


def test_retries_back_off_from_half_the_estimate_with_jitter_and_a_cap():
    plan = PollPlan(first_s=2.0, rng=random.Random(3))
    for misses, base in [(1, 1.0), (2, 2.0), (3, 4.0), (4, 8.0), (12, RETRY_MAX_S)]:
        delays = [plan.retry_delay_s(misses) for _ in range(200)]
        assert all(base * (1 - JITTER) <= d <= base * (1 + JITTER) for d in delays)
        assert max(delays) - min(delays) > base * JITTER  # spread, not one instant
