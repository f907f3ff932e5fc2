"""Submit: take an image (URL or bytes), keep a job for it, hand it to ImgGo once.

Idempotency without a lookup table: a job submitted with an Idempotency-Key gets an id
derived from (tenant, key), so the store's create-if-absent is the idempotency check,
and racing duplicates produce one job and one ImgGo call. Our job id is also the
Idempotency-Key we send ImgGo, so a retried or re-driven dispatch never pays twice.

Content dedupe: the same bytes and pattern from one tenant within the window follow
the earlier job's result instead of calling ImgGo again (claim_key decides the race).
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import time
import uuid
from collections.abc import Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from typing import Any

from core.domain.errors import (
    ConflictError,
    DomainError,
    PayloadTooLargeError,
    RateLimitedError,
    UnsupportedMediaTypeError,
    ValidationError,
)
from core.domain.job import Job, JobError, JobSource, JobStatus, advance
from core.ports import (
    BulkBlobStore,
    BulkJobStore,
    ImageApiError,
    ImageUpload,
    RemoteJob,
    Submission,
)
from core.service.context import Services, update_job
from core.service.images import sniff_image

log = logging.getLogger("imggo.service")

_NAMESPACE = uuid.UUID("6f1c1d5e-2b8a-4f38-9a53-3c0d6f7f4b11")
IDEMPOTENCY_KEY_RE = re.compile(r"[a-zA-Z0-9_-]{1,255}")
PATTERN_ID_RE = re.compile(r"[a-zA-Z0-9_-]{1,128}")
MAX_EXTRAS_BYTES = 16 * 1024
_UNBOUNDED: AbstractContextManager[object] = nullcontext()  # no slot to wait for


def job_id_for_key(tenant: str, idempotency_key: str) -> str:
    return str(uuid.uuid5(_NAMESPACE, f"{tenant}\x00{idempotency_key}"))


def imggo_key(imggo_job_id: str) -> str:
    return f"imggo:{imggo_job_id}"


def content_key(tenant: str, pattern_id: str, sha256: str) -> str:
    return f"content:{tenant}:{pattern_id}:{sha256}"


@dataclass(frozen=True, eq=False)
class NewJob:
    """A submission as the API or a batch item asks for it, before it is a Job."""

    tenant: str
    pattern_id: str
    image_url: str | None = None
    upload: ImageUpload | None = None
    extras: dict[str, Any] = field(default_factory=dict)
    idempotency_key: str | None = None
    job_id: str | None = None  # preset by batch items so a redelivery finds the same job
    batch_id: str | None = None


@dataclass(frozen=True, eq=False)
class SubmitOutcome:
    """The accepted job, and whether this call created it."""

    job: Job
    created: bool  # False: an idempotent replay of an earlier submission
    # Who holds the job's content key, when accepting already claimed it (accept_many):
    # dispatch then need not claim it again.
    content_holder: str | None = None


def validate_common(pattern_id: str, idempotency_key: str | None, extras: Any) -> None:
    if not PATTERN_ID_RE.fullmatch(pattern_id or ""):
        raise ValidationError(
            "pattern_id must be 1-128 letters, digits, '-' or '_'", code="invalid_pattern_id"
        )
    if idempotency_key is not None and not IDEMPOTENCY_KEY_RE.fullmatch(idempotency_key):
        raise ValidationError(
            "Idempotency-Key must be 1-255 letters, digits, '-' or '_'",
            code="invalid_idempotency_key",
        )
    if not isinstance(extras, dict):
        raise ValidationError("extras must be a JSON object", code="invalid_extras")
    if len(json.dumps(extras, default=str)) > MAX_EXTRAS_BYTES:
        raise ValidationError("extras is larger than 16 KiB", code="invalid_extras")


def validate(services: Services, new: NewJob) -> NewJob:
    """Raise a 4xx-mapped error for anything ImgGo would refuse or we must not send."""
    validate_common(new.pattern_id, new.idempotency_key, new.extras)
    if (new.image_url is None) == (new.upload is None):
        raise ValidationError(
            "give exactly one of image_url or an image upload", code="missing_image"
        )
    if new.image_url is not None:
        services.url_guard.check(new.image_url)
        return new
    assert new.upload is not None
    upload = new.upload
    if not upload.data:
        raise ValidationError("the uploaded image is empty", code="empty_image")
    if len(upload.data) > services.settings.max_image_bytes:
        raise PayloadTooLargeError(
            f"the image is larger than {services.settings.max_image_bytes} bytes",
            code="image_too_large",
        )
    sniffed = sniff_image(upload.data)
    if sniffed is None:
        raise UnsupportedMediaTypeError(
            "the upload is not a JPEG, PNG, GIF, WebP or BMP image", code="not_an_image"
        )
    mime, ext = sniffed
    filename = upload.filename or f"image.{ext}"
    if "." not in filename.rsplit("/", 1)[-1]:
        filename = f"{filename}.{ext}"
    return NewJob(
        tenant=new.tenant,
        pattern_id=new.pattern_id,
        upload=ImageUpload(data=upload.data, filename=filename[-200:], content_type=mime),
        extras=new.extras,
        idempotency_key=new.idempotency_key,
        job_id=new.job_id,
        batch_id=new.batch_id,
    )


def _fingerprint(new: NewJob, source: JobSource, content_sha256: str | None) -> str:
    what = {
        "pattern_id": new.pattern_id,
        "kind": source.kind,
        "image_url": new.image_url,
        "content_sha256": content_sha256,
        "declared": [source.content_type, source.size] if source.kind == "direct_upload" else None,
        "extras": new.extras,
    }
    return hashlib.sha256(json.dumps(what, sort_keys=True, default=str).encode()).hexdigest()


def _source_for(new: NewJob) -> tuple[JobSource, str | None]:
    """Where the job's image is (a URL, or the blob key its bytes go to), and their
    SHA-256 when we hold them."""
    if new.upload is None:
        return JobSource(kind="url", url=new.image_url), None
    sha = hashlib.sha256(new.upload.data).hexdigest()
    source = JobSource(
        kind="upload",
        blob_key=f"uploads/{new.tenant}/{sha}",
        content_type=new.upload.content_type,
        filename=new.upload.filename,
        size=len(new.upload.data),
    )
    return source, sha


def accept(services: Services, new: NewJob, *, validated: bool = False) -> SubmitOutcome:
    """Validate and store the job (status accepted), without calling ImgGo yet."""
    if not validated:
        new = validate(services, new)
    source, sha = _source_for(new)
    if new.upload is not None:
        assert source.blob_key is not None
        # The bytes are kept before the job exists, so a job is never without its image.
        services.blobs.put(source.blob_key, new.upload.data, new.upload.content_type)
    return store_new_job(services, new, source, sha)


def accept_many(services: Services, news: Sequence[NewJob]) -> list[SubmitOutcome | DomainError]:
    """`accept` for many validated jobs, in one round trip to the blob store and one to
    the job store where they can take many at once (a batch's accept phase)."""
    prepared = [(new, *_source_for(new)) for new in news]
    blobs: dict[str, tuple[str, bytes, str]] = {}
    for new, source, _ in prepared:
        if new.upload is not None and source.blob_key is not None:
            blobs[source.blob_key] = (source.blob_key, new.upload.data, new.upload.content_type)
    if isinstance(services.blobs, BulkBlobStore):
        services.blobs.put_many(list(blobs.values()))
    else:
        for key, data, content_type in blobs.values():
            services.blobs.put(key, data, content_type)
    jobs = [_new_job(services, new, source, sha) for new, source, sha in prepared]
    store = services.store
    if isinstance(store, BulkJobStore):
        stored = store.create_many(jobs)
    else:
        stored = [store.create(job) for job in jobs]
    outcomes: list[SubmitOutcome | DomainError] = []
    for job, (found, created) in zip(jobs, stored, strict=True):
        try:
            outcomes.append(_outcome(services, job, found, created))
        except DomainError as exc:
            outcomes.append(exc)
    if isinstance(store, BulkJobStore):
        outcomes = _claim_content(services, store, outcomes)
    return outcomes


def _claim_content(
    services: Services, store: BulkJobStore, outcomes: list[SubmitOutcome | DomainError]
) -> list[SubmitOutcome | DomainError]:
    """Claim the content keys of the new upload jobs in one go (what `follow_earlier`
    would do job by job at dispatch) and note each holder in the outcome."""
    window = services.settings.dedupe_window_s
    if window <= 0:
        return outcomes
    now = services.clock.now()
    claiming: list[tuple[int, SubmitOutcome]] = []
    claims: list[tuple[str, str, float | None]] = []
    for i, outcome in enumerate(outcomes):
        if not isinstance(outcome, SubmitOutcome) or not outcome.created:
            continue
        job = outcome.job
        if job.content_sha256 is not None:
            claiming.append((i, outcome))
            claims.append(
                (content_key(job.tenant, job.pattern_id, job.content_sha256), job.id, now + window)
            )
    if not claims:
        return outcomes
    claimed = list(outcomes)
    for (i, outcome), holder in zip(claiming, store.claim_many(claims, now=now), strict=True):
        claimed[i] = SubmitOutcome(outcome.job, outcome.created, content_holder=holder)
    return claimed


def store_new_job(
    services: Services, new: NewJob, source: JobSource, content_sha256: str | None
) -> SubmitOutcome:
    """Create the job record, or find the one an earlier identical request made."""
    job = _new_job(services, new, source, content_sha256)
    stored, created = services.store.create(job)
    return _outcome(services, job, stored, created)


def _new_job(services: Services, new: NewJob, source: JobSource, content_sha256: str | None) -> Job:
    now = services.clock.now()
    ttl = services.settings.job_ttl_s
    if new.job_id is not None:
        job_id = new.job_id
    elif new.idempotency_key is not None:
        job_id = job_id_for_key(new.tenant, new.idempotency_key)
    else:
        job_id = str(uuid.uuid4())
    return Job(
        id=job_id,
        tenant=new.tenant,
        pattern_id=new.pattern_id,
        source=source,
        created_at=now,
        updated_at=now,
        idempotency_key=new.idempotency_key,
        fingerprint=_fingerprint(new, source, content_sha256),
        content_sha256=content_sha256,
        extras=dict(new.extras),
        batch_id=new.batch_id,
        expires_at=now + ttl if ttl > 0 else None,
    )


def _outcome(services: Services, job: Job, stored: Job, created: bool) -> SubmitOutcome:
    """What `create` found, judged: our new job, a replay of the same request, or a
    conflicting reuse of its Idempotency-Key."""
    if not created:
        if stored.tenant != job.tenant or stored.fingerprint != job.fingerprint:
            raise ConflictError(
                "this Idempotency-Key was already used with a different request",
                code="idempotency_conflict",
                details={"job_id": stored.id if stored.tenant == job.tenant else None},
            )
        return SubmitOutcome(stored, created=False)
    services.metrics.count("JobsSubmitted")
    return SubmitOutcome(stored, created=True)


def follow_earlier(services: Services, job: Job, holder: str | None = None) -> Job | None:
    """If the same bytes + pattern were sent within the window, make `job` follow that
    earlier job's result and return it; None when this job must go to ImgGo itself.
    `holder`: the content key's holder, when the caller has claimed it already."""
    if job.content_sha256 is None or services.settings.dedupe_window_s <= 0:
        return None
    now = services.clock.now()
    if holder is None:
        key = content_key(job.tenant, job.pattern_id, job.content_sha256)
        holder = services.store.claim_key(
            key, job.id, expires_at=now + services.settings.dedupe_window_s, now=now
        )
    if holder == job.id:
        return None
    earlier = services.store.get(holder)
    if earlier is None or earlier.status in (JobStatus.FAILED, JobStatus.REJECTED):
        return None
    services.metrics.count("DedupeHits")
    log.info("job %s reuses the result of %s (same image and pattern)", job.id, earlier.id)

    def follow(current: Job) -> Job | None:
        if current.dedupe_of is not None or current.status is not JobStatus.ACCEPTED:
            return None
        return sync_from(current.replace(dedupe_of=earlier.id), earlier, now) or current.replace(
            dedupe_of=earlier.id, updated_at=now
        )

    return update_job(services.store, job.id, follow)


def sync_from(job: Job, source: Job | RemoteJob, now: float) -> Job | None:
    """Move `job` forward to what `source` (ImgGo's answer or a job it follows) says."""
    if isinstance(source, Job):
        status, manifest = source.status, source.manifest
        error = source.error
        imggo_id = source.imggo_job_id
    else:
        status, manifest, imggo_id = source.status, source.manifest, source.id
        error = JobError("imggo_job_failed", source.error or "ImgGo could not process the image")
    if status is JobStatus.ACCEPTED:
        return None
    moved = advance(job, status, now=now, imggo_job_id=imggo_id, manifest=manifest, error=error)
    if moved is None and imggo_id and job.imggo_job_id is None:
        return job.replace(imggo_job_id=imggo_id, updated_at=now)
    return moved


def _submission_for(services: Services, job: Job, image: bytes | None) -> Submission:
    source = job.source
    if source.kind == "url":
        return Submission(job.pattern_id, job.id, image_url=source.url, extras=job.extras)
    assert source.blob_key is not None
    # A cloud blob store hands ImgGo a short-lived URL: large images skip our memory.
    url = services.blobs.signed_get_url(source.blob_key, expires_s=3600)
    if url is not None:
        return Submission(job.pattern_id, job.id, image_url=url, extras=job.extras)
    data = image if image is not None else services.blobs.get(source.blob_key)
    if data is None:
        raise ImageApiError("the uploaded image is no longer stored", code="image_missing")
    upload = ImageUpload(data, source.filename or "image", source.content_type or "image/*")
    return Submission(job.pattern_id, job.id, upload=upload, extras=job.extras)


def dispatch(
    services: Services,
    job: Job,
    *,
    image: bytes | None = None,
    content_holder: str | None = None,
    imggo_slots: AbstractContextManager[object] = _UNBOUNDED,
    defer: bool = False,
) -> Job:
    """Send an accepted job to ImgGo and record the answer. Safe to repeat: ImgGo sees
    our job id as its Idempotency-Key. A transient failure leaves the job accepted (the
    reconciler or the queue retries); a refusal ends it `rejected`.

    No call free in ImgGo's rate budget within the submit deadline (or ImgGo's 429s
    outlasting it) is a deferral, not a failure: the job is left accepted and untouched
    - no attempt counted, no write - for whoever is responsible for it to send later:
    with `defer`, RateLimitedError tells the caller when (a queue worker hands its
    message back for then); without, the caller's next pass or the reconciler does.

    A caller that accepted the job itself may save two round trips: `image`, the
    upload's bytes it still holds (not read back from the blob store), and
    `content_holder`, from the SubmitOutcome of accept_many. `imggo_slots` (a
    semaphore) is held only around the call to ImgGo: a batch bounds its calls in
    flight with it, while its store bookkeeping runs outside the bound."""
    if (
        job.status is not JobStatus.ACCEPTED
        or job.dedupe_of is not None
        or job.source.kind == "direct_upload"  # its bytes have not landed yet
    ):
        return job
    followed = follow_earlier(services, job, content_holder)
    if followed is not None:
        return followed
    store, clock = services.store, services.clock
    try:
        submission = _submission_for(services, job, image)
        with imggo_slots:
            started = time.monotonic()
            remote = services.imggo.submit(
                submission, deadline=started + services.settings.submit_deadline_s
            )
    except ImageApiError as exc:
        now = clock.now()
        if exc.code == "rate_limited" or exc.status == 429:
            log.info("job %s deferred: ImgGo's rate budget is spent for now", job.id)
            if defer:
                raise RateLimitedError(
                    f"ImgGo's rate budget has no call free for job {job.id} yet",
                    retry_after_s=exc.retry_after_s,
                ) from None
            return job
        if exc.retryable:
            log.warning("ImgGo unavailable for job %s: %s", job.id, exc.message)
            return update_job(
                store,
                job.id,
                lambda cur: (
                    cur.replace(attempts=cur.attempts + 1, updated_at=now)
                    if cur.status is JobStatus.ACCEPTED
                    else None
                ),
            )
        log.info("ImgGo refused job %s: %s %s", job.id, exc.code, exc.message)
        if job.content_sha256 is not None:
            store.release_key(content_key(job.tenant, job.pattern_id, job.content_sha256), job.id)
        services.metrics.count("JobsFailed")
        error = JobError(exc.code, exc.message)
        return update_job(
            store,
            job.id,
            lambda cur: advance(
                cur.replace(attempts=cur.attempts + 1), JobStatus.REJECTED, now=now, error=error
            ),
        )
    services.metrics.timing("ImggoSubmitLatency", (time.monotonic() - started) * 1000)
    now = clock.now()
    store.claim_key(imggo_key(remote.id), job.id, expires_at=job.expires_at, now=now)

    def record(cur: Job) -> Job | None:
        moved = sync_from(cur, remote, now)
        return moved.replace(attempts=cur.attempts + 1) if moved is not None else None

    return update_job(store, job.id, record, known=job)


def submit(services: Services, new: NewJob) -> SubmitOutcome:
    """The synchronous path of POST /v1/jobs: accept, then dispatch at once. A dispatch
    the rate budget defers is handed to the queue, held back until a call is likely
    free, where the queue can hold it (`send_later`); otherwise the reconciler sends it
    (it stays accepted)."""
    outcome = accept(services, new)
    if not outcome.created:
        return outcome
    try:
        return SubmitOutcome(dispatch(services, outcome.job, defer=True), created=True)
    except RateLimitedError as exc:
        from core.service.work import deferral_delay, send_later

        send_later(services, outcome.job.id, deferral_delay(exc.retry_after_s))
        return SubmitOutcome(outcome.job, created=True)
