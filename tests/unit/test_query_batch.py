import threading

import pytest

from core.domain.errors import ConflictError, NotFoundError, ValidationError
from core.domain.job import JobStatus
from core.ports import ImageApiError, WorkItem
from core.service.batch import BatchItem, batch_status, process_item, run_batch
from core.service.query import export_job, get_job, list_jobs
from core.service.submit import NewJob, submit
from core.service.webhook import apply_webhook, sign
from tests.fakes import FakeImggo, make_services
from tests.unit.test_webhook import SECRET, body_for


def new(tenant="t"):
    return NewJob(tenant=tenant, pattern_id="invoice", image_url="https://images.example/a.png")


def test_poll_through_refreshes_a_stale_job_and_saves_it():
    imggo = FakeImggo()
    services = make_services(imggo=imggo, poll_after_s=5)
    job = submit(services, new()).job
    imggo.finish(job.imggo_job_id, manifest={"k": "v"})
    assert get_job(services, "t", job.id).status is JobStatus.QUEUED  # fresh: not asked
    assert imggo.get_calls == 0
    services.clock.advance(6)
    refreshed = get_job(services, "t", job.id)
    assert refreshed.status is JobStatus.SUCCEEDED and refreshed.manifest == {"k": "v"}
    assert services.store.get(job.id).status is JobStatus.SUCCEEDED
    get_job(services, "t", job.id)
    assert imggo.get_calls == 1  # terminal jobs are never polled again


def test_poll_through_survives_an_unreachable_imggo():
    imggo = FakeImggo()
    services = make_services(imggo=imggo, poll_after_s=0)
    job = submit(services, new()).job
    imggo.fail_next.append(ImageApiError("down", retryable=True))
    services.clock.advance(1)
    assert get_job(services, "t", job.id).status is JobStatus.QUEUED


def _race_webhook_against_poll() -> None:
    imggo = FakeImggo()
    services = make_services(imggo=imggo, poll_after_s=0)
    job = submit(services, new()).job
    services.clock.advance(1)
    imggo.jobs[job.imggo_job_id]["status"] = JobStatus.RUNNING  # the poll sees "running"
    body = body_for(job.imggo_job_id, services.clock.now(), manifest={"n": 1})
    barrier = threading.Barrier(2)

    def hook():
        barrier.wait()
        apply_webhook(services, body, sign(SECRET, body))

    def poll():
        barrier.wait()
        get_job(services, "t", job.id)

    threads = [threading.Thread(target=hook), threading.Thread(target=poll)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    final = services.store.get(job.id)
    assert final.status is JobStatus.SUCCEEDED and final.manifest == {"n": 1}


def test_racing_webhook_and_poll_never_move_backwards():
    for _ in range(20):
        _race_webhook_against_poll()


def test_other_tenants_job_is_not_found():
    services = make_services()
    job = submit(services, new("a")).job
    with pytest.raises(NotFoundError):
        get_job(services, "b", job.id)
    assert list_jobs(services, "b", status=None, limit=10, cursor=None).items == []


def test_list_validates_its_parameters():
    services = make_services()
    for kwargs in ({"status": "nope"}, {"limit": 0}, {"limit": 500}, {"cursor": "%%%"}):
        args = {"status": None, "limit": 10, "cursor": None} | kwargs
        with pytest.raises(ValidationError):
            list_jobs(services, "t", **args)


def test_export_needs_a_finished_job():
    services = make_services()
    job = submit(services, new()).job
    with pytest.raises(ConflictError):
        export_job(services, "t", job.id, "csv")
    with pytest.raises(ValidationError):
        export_job(services, "t", job.id, "pdf")


def test_batch_reports_bad_items_without_sinking_the_rest():
    imggo = FakeImggo()
    services = make_services(imggo=imggo)
    items = [
        BatchItem(image_url="https://images.example/1.png"),
        BatchItem(image_url="http://169.254.169.254/"),
        BatchItem(image_url="https://images.example/3.png"),
        BatchItem(),
    ]
    result = run_batch(services, "t", "invoice", items, concurrency=4)
    assert [o.ok for o in result.items] == [True, False, True, False]
    assert result.items[1].error["code"] == "forbidden_image_url"
    assert imggo.submit_calls == 2
    assert [o.error is not None for o in batch_status(services, result.batch)] == [
        False,
        True,
        False,
        True,
    ]


def test_batch_replay_with_the_same_key_makes_no_new_jobs():
    imggo = FakeImggo()
    services = make_services(imggo=imggo)
    items = [BatchItem(image_url=f"https://images.example/{i}.png") for i in range(5)]
    first = run_batch(services, "t", "invoice", items, idempotency_key="b1")
    again = run_batch(services, "t", "invoice", items, idempotency_key="b1")
    assert not again.created and again.batch.id == first.batch.id
    assert imggo.submit_calls == 5


def test_queue_worker_is_idempotent_and_raises_on_transient_failure():
    class ListQueue:
        def __init__(self):
            self.items = []

        max_delay_s = 900.0

        def send(self, items, *, delay_s=0.0):
            self.items.extend(items)

    imggo = FakeImggo()
    services = make_services(imggo=imggo)
    services.queue = ListQueue()
    result = run_batch(
        services, "t", "invoice", [BatchItem(image_url="https://images.example/1.png")]
    )
    assert imggo.submit_calls == 0 and len(services.queue.items) == 1
    item = services.queue.items[0]
    imggo.fail_next.append(ImageApiError("busy", status=503, retryable=True))
    from core.domain.errors import RateLimitedError, UnavailableError

    with pytest.raises(UnavailableError):
        process_item(services, item)
    # ImgGo's 429s outlasting the deadline defer the item: not a failure, no write.
    before = services.store.get(item.job_id)
    imggo.fail_next.append(ImageApiError("slow down", status=429, retryable=True, retry_after_s=7))
    with pytest.raises(RateLimitedError) as deferred:
        process_item(services, item)
    assert deferred.value.retry_after_s == 7
    assert services.store.get(item.job_id) == before
    job = process_item(services, item)  # redelivery
    again = process_item(services, item)  # duplicate delivery
    assert job.status is JobStatus.QUEUED and again.version == job.version
    assert len(imggo.jobs) == 1
    with pytest.raises(NotFoundError):
        process_item(services, WorkItem("missing"))
    assert result.items[0].job is not None


def test_batch_on_the_sqlite_stores_accepts_in_chunks_and_reports_every_item_once(tmp_path):
    # More items than one accept chunk, uploads among them, a bad item in the middle:
    # the bulk paths (create_many, put_many) must give each item exactly one outcome.
    from core.adapters.sqlite.blobs import SqliteBlobStore
    from core.adapters.stores.sqlite import SqliteJobStore
    from core.ports import ImageUpload
    from tests.support.images import png

    imggo = FakeImggo()
    services = make_services(imggo=imggo)
    services.store = SqliteJobStore(tmp_path / "jobs.db", clock=services.clock)
    services.blobs = SqliteBlobStore(tmp_path / "blobs.db")
    image = png(8, 8)
    items = [
        BatchItem(upload=ImageUpload(image, "a.png", "image/png"))
        if i % 10 == 0
        else BatchItem(image_url=f"https://images.example/{i}.png")
        for i in range(75)
    ]
    items[40] = BatchItem(image_url="ftp://images.example/x.png")
    seen = []
    lock = threading.Lock()

    def on_item(outcome):
        with lock:
            seen.append(outcome.index)

    try:
        result = run_batch(services, "t", "invoice", items, concurrency=8, on_item=on_item)
        assert sorted(seen) == list(range(75))
        assert [o.index for o in result.items] == list(range(75))
        assert [i for i, o in enumerate(result.items) if not o.ok] == [40]
        # 67 URLs, and the same bytes 7 times: sent to ImgGo once, the rest follow it
        assert imggo.submit_calls == 67 + 1
        first = services.store.get(result.items[0].job.id)
        assert services.blobs.get(first.source.blob_key) == image
        assert [o.error is None for o in batch_status(services, result.batch)].count(False) == 1
    finally:
        services.close()


def test_batch_concurrency_bounds_the_calls_in_flight_to_imggo():
    # ImgGo's rate limit is what `concurrency` protects: never more calls at once, and
    # (a slow ImgGo, a fast store) the bound is actually used.
    current = peak = 0
    lock = threading.Lock()
    release = threading.Event()

    def slow(_submission):
        nonlocal current, peak
        with lock:
            current += 1
            peak = max(peak, current)
            if current == 3:
                release.set()
        release.wait(timeout=5)  # hold every call until three are in flight together
        with lock:
            current -= 1

    imggo = FakeImggo(on_submit=slow)
    services = make_services(imggo=imggo)
    items = [BatchItem(image_url=f"https://images.example/{i}.png") for i in range(40)]
    result = run_batch(services, "t", "invoice", items, concurrency=3)
    assert all(o.ok for o in result.items)
    assert peak == 3
    assert imggo.submit_calls == 40
