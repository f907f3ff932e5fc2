"""Direct uploads: large images go straight into the cloud's blob store.

`POST /v1/uploads` creates the job (accepted, source `direct_upload`) and answers with a
signed PUT URL bound to the declared size and content type. The blob store's own
event (S3 ObjectCreated, GCS finalized) then calls `upload_landed`, which checks the
object against the declaration and dispatches the job with a signed GET URL: the image
never passes through a function's memory. The object key names the tenant and the job,
so the event needs nothing else to find them.
"""

from __future__ import annotations

import logging
import re
import uuid
from dataclasses import dataclass
from typing import Any

from core.domain.errors import NotSupportedError, PayloadTooLargeError, ValidationError
from core.domain.job import Job, JobError, JobSource, JobStatus, advance
from core.ports import SignedUpload
from core.service.context import Services, update_job
from core.service.submit import (
    NewJob,
    dispatch,
    job_id_for_key,
    store_new_job,
    validate_common,
)

log = logging.getLogger("imggo.service")

UPLOAD_PREFIX = "incoming/"
UPLOAD_URL_TTL_S = 900
IMAGE_TYPES = ("image/jpeg", "image/png", "image/gif", "image/webp", "image/bmp")
_KEY_RE = re.compile(r"incoming/([^/]{1,128})/([0-9a-f-]{36})")


def upload_key(tenant: str, job_id: str) -> str:
    return f"{UPLOAD_PREFIX}{tenant}/{job_id}"


def parse_upload_key(key: str) -> tuple[str, str] | None:
    """(tenant, job id) of an object key we handed out, or None for anything else."""
    found = _KEY_RE.fullmatch(key)
    return (found.group(1), found.group(2)) if found else None


@dataclass(frozen=True)
class UploadTicket:
    """A job waiting for its image, and the signed URL to upload it to."""

    job: Job
    upload: SignedUpload | None  # None on a replay whose URL has already been handed out
    created: bool


def create_upload(
    services: Services,
    *,
    tenant: str,
    pattern_id: str,
    content_type: str,
    size: int,
    filename: str | None = None,
    extras: dict[str, Any] | None = None,
    idempotency_key: str | None = None,
) -> UploadTicket:
    extras = {} if extras is None else extras
    validate_common(pattern_id, idempotency_key, extras)
    if content_type not in IMAGE_TYPES:
        raise ValidationError(
            f"content_type must be one of {', '.join(IMAGE_TYPES)}", code="invalid_content_type"
        )
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise ValidationError("size must be a positive integer (bytes)", code="invalid_size")
    if size > services.settings.max_image_bytes:
        raise PayloadTooLargeError(
            f"the image is larger than {services.settings.max_image_bytes} bytes",
            code="image_too_large",
        )
    # The object key embeds the job id, which an idempotency key fixes: derive it first.
    job_id = job_id_for_key(tenant, idempotency_key) if idempotency_key else str(uuid.uuid4())
    key = upload_key(tenant, job_id)
    signed = services.blobs.signed_put_url(
        key, content_type=content_type, size=size, expires_s=UPLOAD_URL_TTL_S
    )
    if signed is None:
        raise NotSupportedError(
            "direct uploads need a cloud blob store (S3 or GCS); POST the image to /v1/jobs",
            code="uploads_not_supported",
        )
    source = JobSource(
        kind="direct_upload",
        blob_key=key,
        content_type=content_type,
        filename=filename,
        size=size,
    )
    new = NewJob(
        tenant=tenant,
        pattern_id=pattern_id,
        extras=extras,
        idempotency_key=idempotency_key,
        job_id=job_id,
    )
    outcome = store_new_job(services, new, source, None)
    still_waiting = outcome.job.source.kind == "direct_upload"
    return UploadTicket(outcome.job, signed if still_waiting else None, outcome.created)


def upload_landed(
    services: Services, key: str, *, size: int, content_type: str | None = None
) -> Job | None:
    """The blob store says `key` now holds `size` bytes. Returns the job it belongs to, or
    None when the object is not one of our uploads (logged, nothing else happens).
    Repeated events are no-ops; a mismatch with the declaration rejects the job."""
    parsed = parse_upload_key(key)
    if parsed is None:
        log.info("ignoring object %s: not an upload key", key)
        return None
    tenant, job_id = parsed
    job = services.store.get(job_id)
    if job is None or job.tenant != tenant or job.source.blob_key != key:
        log.warning("ignoring object %s: no matching upload job", key)
        return None
    if job.source.kind != "direct_upload":
        return job  # a repeated event: the upload was already taken in
    now = services.clock.now()
    declared = job.source
    problem = None
    if size != declared.size:
        problem = f"the uploaded object has {size} bytes, {declared.size} were declared"
    elif content_type is not None and content_type != declared.content_type:
        problem = f"the uploaded object is {content_type}, {declared.content_type} was declared"
    if problem is not None:
        error = JobError("upload_mismatch", problem)
        return update_job(
            services.store,
            job.id,
            lambda cur: advance(cur, JobStatus.REJECTED, now=now, error=error),
        )

    def landed(cur: Job) -> Job | None:
        if cur.source.kind != "direct_upload":
            return None
        return cur.replace(
            source=JobSource(
                kind="upload",
                blob_key=key,
                content_type=declared.content_type,
                filename=declared.filename,
                size=size,
            ),
            updated_at=now,
        )

    job = update_job(services.store, job.id, landed)
    return dispatch(services, job)
