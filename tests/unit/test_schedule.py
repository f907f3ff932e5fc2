"""imggo_cli.schedule: what the ingest sends next - submissions first, due polls at most
one per submission while images wait, deferred submissions sent again."""

from __future__ import annotations

import io
import threading
import time
from dataclasses import dataclass, replace

import pytest

from core.adapters.imggo.budget import NO_BUDGET, SharedRateBudget
from core.domain.job import JobStatus
from core.ports import ImageApiError, ImageUpload, RemoteJob, Submission
from core.service.batch import BatchItem, run_batch
from imggo_cli.output import Progress
from imggo_cli.polling import PollPlan
from imggo_cli.schedule import SENDS_PER_POLL, Scheduler
from tests.fakes import FakeImggo, make_services
from tests.support.images import png


@dataclass
class QuickImggo(FakeImggo):
    """ImgGo that is done with a job as soon as it has it, and notes each call."""

    calls: list[str] | None = None

    def submit(self, submission: Submission, *, deadline: float | None = None) -> RemoteJob:
        remote = super().submit(submission, deadline=deadline)
        self.finish(remote.id, {"ok": True})
        assert self.calls is not None
        self.calls.append("submit")
        return remote

    def get_job(self, imggo_job_id: str, *, deadline: float | None = None) -> RemoteJob:
        assert self.calls is not None
        self.calls.append("poll")
        return super().get_job(imggo_job_id, deadline=deadline)


def _run(imggo: FakeImggo, count: int, *, plan: PollPlan, wait_s: float = 10.0):
    services = make_services(imggo=imggo)
    items = [
        BatchItem(upload=ImageUpload(png(i), f"{i}.png", ""), idempotency_key=f"k{i}")
        for i in range(count)
    ]
    scheduler = Scheduler(
        services,
        NO_BUDGET,
        Progress(count, "test", stream=io.StringIO()),
        concurrency=1,
        deadline=time.monotonic() + wait_s,
        stop=threading.Event(),
        plan=plan,
    )
    with scheduler:
        run_batch(replace(services, queue=scheduler), "local", "invoice", items)
    return scheduler.jobs()


def test_while_images_wait_due_polls_get_one_call_per_submission():
    imggo = QuickImggo(calls=[])
    jobs = _run(imggo, 5, plan=PollPlan(first_s=0.0))  # every poll due at once
    assert SENDS_PER_POLL == 1
    assert imggo.calls == ["submit", "poll"] * 5
    assert {j.status for j in jobs.values()} == {JobStatus.SUCCEEDED}


def test_no_job_is_polled_before_it_is_due():
    imggo = QuickImggo(calls=[])
    jobs = _run(imggo, 4, plan=PollPlan(first_s=30.0), wait_s=0.5)
    assert imggo.calls == ["submit"] * 4  # the run ended before any job was due
    assert {j.status for j in jobs.values()} == {JobStatus.QUEUED}


def test_deferred_submissions_are_sent_again_and_no_job_is_left_accepted():
    busy = ImageApiError("no slot", code="rate_limited", retryable=True, retry_after_s=1.0)
    imggo = QuickImggo(calls=[], fail_next=[busy, busy, busy])
    started = time.monotonic()
    jobs = _run(imggo, 4, plan=PollPlan(first_s=0.0))
    assert {j.status for j in jobs.values()} == {JobStatus.SUCCEEDED}
    assert imggo.submit_calls == 4 + 3 and len(imggo.jobs) == 4  # each image once at ImgGo
    assert time.monotonic() - started < 5  # after a backoff, not at the end of the wait


def test_a_failing_caller_ends_the_wait_for_a_far_slot_at_once():
    services = make_services(imggo=QuickImggo(calls=[]))
    budget = SharedRateBudget(services.store, "imggo-test", start_limit=60)
    budget.observe(None, retry_after_s=30.0)  # ImgGo said: nothing for 30 s
    scheduler = Scheduler(
        services,
        budget,
        Progress(1, "test", stream=io.StringIO()),
        concurrency=1,
        deadline=time.monotonic() + 5.0,
        stop=threading.Event(),
    )
    item = BatchItem(upload=ImageUpload(png(1), "1.png", ""), idempotency_key="k1")
    started = time.monotonic()
    with pytest.raises(RuntimeError), scheduler:
        run_batch(replace(services, queue=scheduler), "local", "invoice", [item])
        time.sleep(0.3)  # the dispatcher is waiting for the slot now
        raise RuntimeError("the caller failed")
    assert time.monotonic() - started < 1.5
