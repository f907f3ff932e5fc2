import threading

import pytest

from core.domain.errors import ConflictError, UnsupportedMediaTypeError, ValidationError
from core.domain.job import JobStatus
from core.ports import ImageApiError, ImageUpload
from core.service.reconcile import reconcile
from core.service.submit import NewJob, submit
from tests.fakes import FakeImggo, make_services

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


def url_job(**kw) -> NewJob:
    return NewJob(
        tenant="acme", pattern_id="invoice", image_url="https://images.example/a.png", **kw
    )


def test_submit_hands_the_job_to_imggo_with_our_id_as_its_key():
    imggo = FakeImggo()
    services = make_services(imggo=imggo)
    outcome = submit(services, url_job())
    assert outcome.created
    job = outcome.job
    assert job.status is JobStatus.QUEUED and job.imggo_job_id in imggo.jobs
    assert job.attempts == 1 and job.version >= 2
    assert imggo.by_key == {job.id: job.imggo_job_id}


def test_same_idempotency_key_same_payload_returns_the_same_job():
    imggo = FakeImggo()
    services = make_services(imggo=imggo)
    first = submit(services, url_job(idempotency_key="order-1"))
    again = submit(services, url_job(idempotency_key="order-1"))
    assert again.created is False and again.job.id == first.job.id
    assert imggo.submit_calls == 1


def test_same_key_other_payload_is_a_conflict():
    services = make_services()
    submit(services, url_job(idempotency_key="order-1"))
    other = NewJob(
        tenant="acme",
        pattern_id="receipt",
        image_url="https://images.example/a.png",
        idempotency_key="order-1",
    )
    with pytest.raises(ConflictError) as info:
        submit(services, other)
    assert info.value.code == "idempotency_conflict"


def test_same_key_in_two_tenants_is_two_jobs():
    services = make_services()
    a = submit(services, url_job(idempotency_key="k"))
    b = submit(
        services,
        NewJob(
            tenant="other",
            pattern_id="invoice",
            image_url="https://images.example/a.png",
            idempotency_key="k",
        ),
    )
    assert a.job.id != b.job.id and b.created


def test_concurrent_duplicates_make_one_job_and_one_imggo_call():
    imggo = FakeImggo()
    services = make_services(imggo=imggo)
    barrier = threading.Barrier(32)
    results = []

    def go():
        barrier.wait()
        results.append(submit(services, url_job(idempotency_key="race")))

    threads = [threading.Thread(target=go) for _ in range(32)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(r.created for r in results) == 1
    assert len({r.job.id for r in results}) == 1
    assert imggo.submit_calls == 1


def test_transient_failure_keeps_the_job_and_reconcile_dispatches_it_once():
    imggo = FakeImggo(fail_next=[ImageApiError("down", status=503, retryable=True)])
    services = make_services(imggo=imggo, reconcile_age_s=0)
    job = submit(services, url_job()).job
    assert job.status is JobStatus.ACCEPTED and job.attempts == 1
    services.clock.advance(1)
    report = reconcile(services)
    assert report.dispatched == 1
    stored = services.store.get(job.id)
    assert stored is not None and stored.status is JobStatus.QUEUED
    # a second reconcile has nothing to dispatch; ImgGo saw one job
    services.clock.advance(1)
    reconcile(services)
    assert len(imggo.jobs) == 1


def test_refusal_rejects_the_job_terminally():
    imggo = FakeImggo(fail_next=[ImageApiError("no such pattern", status=404, code="NOT_FOUND")])
    services = make_services(imggo=imggo)
    job = submit(services, url_job()).job
    assert job.status is JobStatus.REJECTED
    assert job.error is not None and job.error.code == "NOT_FOUND"


def test_upload_is_sniffed_not_trusted():
    services = make_services()
    with pytest.raises(UnsupportedMediaTypeError):
        submit(
            services,
            NewJob(
                tenant="a",
                pattern_id="p",
                upload=ImageUpload(b"%PDF-1.4 not an image", "x.png", "image/png"),
            ),
        )
    job = submit(
        services,
        NewJob(
            tenant="a", pattern_id="p", upload=ImageUpload(PNG, "scan", "application/octet-stream")
        ),
    ).job
    assert job.source.content_type == "image/png" and job.source.filename == "scan.png"
    assert services.blobs.get(job.source.blob_key) == PNG


@pytest.mark.parametrize(
    "new,code",
    [
        (
            NewJob(tenant="a", pattern_id="bad id!", image_url="https://images.example/a.png"),
            "invalid_pattern_id",
        ),
        (NewJob(tenant="a", pattern_id="p"), "missing_image"),
        (
            NewJob(
                tenant="a",
                pattern_id="p",
                image_url="https://images.example/a",
                idempotency_key="sp ace",
            ),
            "invalid_idempotency_key",
        ),
        (
            NewJob(tenant="a", pattern_id="p", image_url="http://10.0.0.1/a.png"),
            "forbidden_image_url",
        ),
        (
            NewJob(
                tenant="a",
                pattern_id="p",
                image_url="https://images.example/a",
                extras={"x": "y" * 20000},
            ),
            "invalid_extras",
        ),
    ],
)
def test_invalid_submissions_are_refused_before_anything_is_stored(new, code):
    imggo = FakeImggo()
    services = make_services(imggo=imggo)
    with pytest.raises(ValidationError) as info:
        submit(services, new)
    assert info.value.code == code
    assert imggo.submit_calls == 0
    assert services.store.list_jobs("a").items == []


def test_same_bytes_and_pattern_reuse_the_earlier_result():
    imggo = FakeImggo()
    services = make_services(imggo=imggo, poll_after_s=0)
    upload = ImageUpload(PNG, "a.png", "image/png")
    first = submit(services, NewJob(tenant="a", pattern_id="p", upload=upload)).job
    imggo.finish(first.imggo_job_id, manifest={"total": 3})
    second = submit(services, NewJob(tenant="a", pattern_id="p", upload=upload)).job
    assert imggo.submit_calls == 1
    assert second.dedupe_of == first.id and second.id != first.id
    from core.service.query import get_job

    services.clock.advance(1)
    done = get_job(services, "a", second.id)
    assert done.status is JobStatus.SUCCEEDED and done.manifest == {"total": 3}
    # another pattern, or after the window, pays again
    submit(services, NewJob(tenant="a", pattern_id="q", upload=upload))
    assert imggo.submit_calls == 2
    services.clock.advance(services.settings.dedupe_window_s + 1)
    submit(services, NewJob(tenant="a", pattern_id="p", upload=upload))
    assert imggo.submit_calls == 3


def test_a_failed_original_is_not_reused():
    imggo = FakeImggo(fail_next=[ImageApiError("bad image", status=400, code="INVALID")])
    services = make_services(imggo=imggo)
    upload = ImageUpload(PNG, "a.png", "image/png")
    first = submit(services, NewJob(tenant="a", pattern_id="p", upload=upload)).job
    assert first.status is JobStatus.REJECTED
    second = submit(services, NewJob(tenant="a", pattern_id="p", upload=upload)).job
    assert second.dedupe_of is None and second.status is JobStatus.QUEUED
