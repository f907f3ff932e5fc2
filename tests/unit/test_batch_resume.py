"""Batches `imggo-fn ingest` can resume: per-item idempotency keys, and a stop signal."""

import threading

from core.domain.job import JobStatus
from core.ports import ImageApiError
from core.service.batch import BatchItem, run_batch
from tests.fakes import FakeImggo, make_services


def items(count: int, *, keyed: bool = True) -> list[BatchItem]:
    return [
        BatchItem(
            image_url=f"https://images.example/{i}.png",
            idempotency_key=f"item-{i}" if keyed else None,
        )
        for i in range(count)
    ]


def test_items_with_a_key_are_the_same_jobs_in_every_batch():
    imggo = FakeImggo()
    services = make_services(imggo=imggo)
    first = run_batch(services, "t", "invoice", items(3), concurrency=1)
    second = run_batch(services, "t", "invoice", items(3), concurrency=1)
    assert [o.job.id for o in first.items] == [o.job.id for o in second.items]
    assert first.batch.id != second.batch.id
    assert len(imggo.jobs) == 3  # ImgGo saw each image once
    assert all(o.job.dedupe_of is None for o in second.items)


def test_items_without_a_key_are_new_jobs_per_batch():
    services = make_services()
    first = run_batch(services, "t", "invoice", items(2, keyed=False), concurrency=1)
    second = run_batch(services, "t", "invoice", items(2, keyed=False), concurrency=1)
    assert {o.job.id for o in first.items}.isdisjoint(o.job.id for o in second.items)


def test_a_later_batch_sends_the_items_an_earlier_one_left_unsent():
    imggo = FakeImggo(fail_next=[ImageApiError("down", retryable=True)])
    services = make_services(imggo=imggo)
    first = run_batch(services, "t", "invoice", items(2), concurrency=1)
    assert [o.job.status for o in first.items] == [JobStatus.ACCEPTED, JobStatus.QUEUED]
    second = run_batch(services, "t", "invoice", items(2), concurrency=1)
    assert [o.job.status for o in second.items] == [JobStatus.QUEUED, JobStatus.QUEUED]
    assert len(imggo.jobs) == 2


def test_stop_ends_the_batch_after_the_calls_in_flight():
    stop = threading.Event()
    imggo = FakeImggo(on_submit=lambda _: stop.set())  # stopped during the first call
    services = make_services(imggo=imggo)
    result = run_batch(services, "t", "invoice", items(5), concurrency=1, stop=stop)
    statuses = [o.job.status for o in result.items]
    assert statuses == [JobStatus.QUEUED] + [JobStatus.ACCEPTED] * 4
    assert imggo.submit_calls == 1


def test_items_not_accepted_when_stopped_are_reported_stopped():
    stop = threading.Event()
    stop.set()
    services = make_services()
    result = run_batch(services, "t", "invoice", items(3), stop=stop)
    assert [o.job for o in result.items] == [None, None, None]
    assert {o.error["code"] for o in result.items} == {"stopped"}
    assert services.store.list_jobs("t").items == []
