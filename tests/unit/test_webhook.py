import json
from datetime import UTC, datetime

import pytest

from core.domain.errors import NotFoundError, UnauthorizedError, UnavailableError, ValidationError
from core.domain.job import JobStatus
from core.service.submit import NewJob, submit
from core.service.webhook import apply_webhook, sign
from tests.fakes import FakeImggo, make_services

SECRET = "whsec_test_0123456789"


def body_for(imggo_id: str, when: float, event: str = "job.succeeded", manifest=None) -> bytes:
    payload = {
        "event": event,
        "job_id": imggo_id,
        "pattern_id": "invoice",
        "manifest": manifest if event == "job.succeeded" else None,
        "error": None if event == "job.succeeded" else "unreadable",
        "timestamp": datetime.fromtimestamp(when, UTC)
        .isoformat(timespec="milliseconds")
        .replace("+00:00", "Z"),
    }
    return json.dumps(payload, separators=(",", ":")).encode()  # what JSON.stringify sends


@pytest.fixture
def setup():
    imggo = FakeImggo()
    services = make_services(imggo=imggo)
    job = submit(
        services, NewJob(tenant="t", pattern_id="invoice", image_url="https://images.example/a.png")
    ).job
    return services, job


def test_valid_delivery_moves_the_job_forward(setup):
    services, job = setup
    body = body_for(job.imggo_job_id, services.clock.now(), manifest={"total": 1})
    result = apply_webhook(services, body, sign(SECRET, body))
    assert result.applied and result.job.status is JobStatus.SUCCEEDED
    assert result.job.manifest == {"total": 1}


def test_replayed_delivery_is_a_no_op(setup):
    services, job = setup
    body = body_for(job.imggo_job_id, services.clock.now(), manifest={"total": 1})
    apply_webhook(services, body, sign(SECRET, body))
    version = services.store.get(job.id).version
    again = apply_webhook(services, body, sign(SECRET, body))
    assert not again.applied and services.store.get(job.id).version == version


def test_out_of_order_failure_after_success_is_ignored(setup):
    services, job = setup
    ok = body_for(job.imggo_job_id, services.clock.now(), manifest={"n": 1})
    apply_webhook(services, ok, sign(SECRET, ok))
    late = body_for(job.imggo_job_id, services.clock.now(), event="job.failed")
    assert not apply_webhook(services, late, sign(SECRET, late)).applied
    assert services.store.get(job.id).status is JobStatus.SUCCEEDED


def test_tampered_body_is_refused(setup):
    services, job = setup
    body = body_for(job.imggo_job_id, services.clock.now(), manifest={"total": 1})
    signature = sign(SECRET, body)
    tampered = body.replace(b'"total":1', b'"total":9')
    with pytest.raises(UnauthorizedError) as info:
        apply_webhook(services, tampered, signature)
    assert info.value.code == "signature_invalid"
    assert services.store.get(job.id).status is JobStatus.QUEUED


def test_reserialised_body_does_not_verify(setup):
    """The signature is over the exact bytes: pretty-printing the same JSON breaks it."""
    services, job = setup
    body = body_for(job.imggo_job_id, services.clock.now(), manifest={"total": 1})
    pretty = json.dumps(json.loads(body), indent=2).encode()
    with pytest.raises(UnauthorizedError):
        apply_webhook(services, pretty, sign(SECRET, body))


@pytest.mark.parametrize("header", [None, "", "sha256=", "sha1=abcd", "sha256=" + "0" * 64])
def test_missing_or_wrong_signature_is_refused(setup, header):
    services, job = setup
    body = body_for(job.imggo_job_id, services.clock.now())
    with pytest.raises(UnauthorizedError):
        apply_webhook(services, body, header)


def test_stale_timestamp_is_refused_even_with_a_good_signature(setup):
    services, job = setup
    body = body_for(job.imggo_job_id, services.clock.now() - 3600, manifest={})
    with pytest.raises(UnauthorizedError) as info:
        apply_webhook(services, body, sign(SECRET, body))
    assert info.value.code == "webhook_stale"


def test_rotated_secrets_both_verify(setup):
    services, job = setup
    from dataclasses import replace

    services.settings = replace(
        services.settings, webhook_secrets=("new_secret_0123456789", SECRET)
    )
    body = body_for(job.imggo_job_id, services.clock.now(), manifest={})
    assert apply_webhook(services, body, sign(SECRET, body)).applied


def test_unknown_imggo_job_is_404(setup):
    services, _ = setup
    body = body_for("not-ours", services.clock.now())
    with pytest.raises(NotFoundError):
        apply_webhook(services, body, sign(SECRET, body))


def test_garbage_body_with_valid_signature_is_a_4xx(setup):
    services, _ = setup
    for body in (b"not json", b"[]", b'{"event":"job.exploded","job_id":"x","timestamp":"2020"}'):
        with pytest.raises(ValidationError):
            apply_webhook(services, body, sign(SECRET, body))


def test_unconfigured_secret_is_refused_not_accepted():
    services = make_services(webhook_secrets=())
    with pytest.raises(UnavailableError):
        apply_webhook(services, b"{}", "sha256=00")
