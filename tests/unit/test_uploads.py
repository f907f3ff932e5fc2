import pytest

from core.adapters.blobs import MemoryBlobStore
from core.domain.errors import NotSupportedError, PayloadTooLargeError, ValidationError
from core.domain.job import JobStatus
from core.ports import SignedUpload
from core.service.reconcile import reconcile
from core.service.uploads import create_upload, parse_upload_key, upload_landed
from tests.fakes import FakeImggo, make_services


class SigningBlobs(MemoryBlobStore):
    """A blob store that signs URLs the way a cloud one does (the URL itself is fake)."""

    def signed_put_url(self, key, *, content_type, size, expires_s):
        return SignedUpload(
            f"https://blobs.example/{key}?sig=put",
            "PUT",
            {"Content-Type": content_type, "Content-Length": str(size)},
            1e10,
        )

    def signed_get_url(self, key, *, expires_s):
        return f"https://blobs.example/{key}?sig=get"


def services_with_signing(**kw):
    services = make_services(**kw)
    services.blobs = SigningBlobs()
    return services


def test_upload_ticket_then_landing_dispatches_by_signed_url():
    imggo = FakeImggo()
    services = services_with_signing(imggo=imggo)
    ticket = create_upload(
        services, tenant="t", pattern_id="invoice", content_type="image/png", size=1234
    )
    assert ticket.created and ticket.upload is not None
    assert ticket.upload.headers["Content-Length"] == "1234"
    assert ticket.job.status is JobStatus.ACCEPTED
    key = ticket.job.source.blob_key
    assert parse_upload_key(key) == ("t", ticket.job.id)
    # nothing is sent to ImgGo before the bytes land, even by the reconciler
    services.clock.advance(120)
    reconcile(services)
    assert imggo.submit_calls == 0
    job = upload_landed(services, key, size=1234, content_type="image/png")
    assert job is not None and job.status is JobStatus.QUEUED
    sent = next(iter(imggo.jobs.values()))["submission"]
    assert sent.image_url == f"https://blobs.example/{key}?sig=get"
    # the event is delivered again: no second submission
    upload_landed(services, key, size=1234, content_type="image/png")
    assert imggo.submit_calls == 1


def test_landing_with_other_size_rejects_the_job():
    services = services_with_signing()
    ticket = create_upload(services, tenant="t", pattern_id="p", content_type="image/jpeg", size=10)
    job = upload_landed(services, ticket.job.source.blob_key, size=11)
    assert job.status is JobStatus.REJECTED and job.error.code == "upload_mismatch"


def test_foreign_objects_are_ignored():
    services = services_with_signing()
    assert upload_landed(services, "somewhere/else.png", size=1) is None
    assert (
        upload_landed(services, "incoming/t/00000000-0000-0000-0000-000000000000", size=1) is None
    )


def test_an_upload_that_never_arrives_fails_eventually():
    services = services_with_signing(reconcile_age_s=0)
    ticket = create_upload(services, tenant="t", pattern_id="p", content_type="image/png", size=5)
    services.clock.advance(3600)
    reconcile(services)
    job = services.store.get(ticket.job.id)
    assert job.status is JobStatus.FAILED and job.error.code == "upload_missing"


def test_an_upload_whose_event_was_lost_is_taken_in_by_reconcile():
    """Past the URL's life reconcile looks in the bucket before calling it missing."""
    services = services_with_signing(reconcile_age_s=0)
    image = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32
    ticket = create_upload(
        services, tenant="t", pattern_id="p", content_type="image/png", size=len(image)
    )
    services.blobs.put(ticket.job.source.blob_key, image, "image/png")  # landed, event lost
    services.clock.advance(3600)
    report = reconcile(services)
    assert report.dispatched == 1 and report.gave_up == 0, report
    job = services.store.get(ticket.job.id)
    assert job.status is JobStatus.QUEUED and job.source.kind == "upload"


def test_idempotent_ticket_replay_and_validation():
    services = services_with_signing()
    first = create_upload(
        services, tenant="t", pattern_id="p", content_type="image/png", size=5, idempotency_key="u1"
    )
    again = create_upload(
        services, tenant="t", pattern_id="p", content_type="image/png", size=5, idempotency_key="u1"
    )
    assert not again.created and again.job.id == first.job.id and again.upload is not None
    with pytest.raises(ValidationError):
        create_upload(services, tenant="t", pattern_id="p", content_type="text/html", size=5)
    with pytest.raises(ValidationError):
        create_upload(services, tenant="t", pattern_id="p", content_type="image/png", size=0)
    with pytest.raises(PayloadTooLargeError):
        create_upload(services, tenant="t", pattern_id="p", content_type="image/png", size=10**9)


def test_local_disk_cannot_sign_and_says_so():
    services = make_services()
    with pytest.raises(NotSupportedError) as info:
        create_upload(services, tenant="t", pattern_id="p", content_type="image/png", size=5)
    assert info.value.status == 501 and info.value.code == "uploads_not_supported"
