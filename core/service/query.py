"""Reading jobs: get with poll-through, list, and the manifest in ImgGo's formats.

Poll-through: a pending job whose news is older than `poll_after_s` is refreshed from
ImgGo (or from the earlier job it follows) before it is returned, and saved with CAS,
so a client polling us never waits on a webhook that was dropped.

A stored job that cannot be decoded never fails a read: it is failed in place and shown
as that failed job (core.service.unreadable), and a listing still returns the rest.
"""

from __future__ import annotations

import logging
import time

from core.domain.errors import ConflictError, NotFoundError, ValidationError
from core.domain.job import Job, JobStatus
from core.ports import ImageApiError, Page
from core.service.context import Services, update_job
from core.service.submit import sync_from
from core.service.unreadable import get_or_set_aside, set_aside

log = logging.getLogger("imggo.service")

EXPORT_FORMATS = ("json", "yaml", "xml", "csv", "text")
POLL_DEADLINE_S = 5.0


def load(services: Services, tenant: str, job_id: str) -> Job:
    job = get_or_set_aside(services, job_id)
    # Another tenant's job answers exactly like a missing one: ids leak nothing.
    if job is None or job.tenant != tenant:
        raise NotFoundError(f"no job {job_id}", code="job_not_found")
    return job


def refresh(services: Services, job: Job, *, deadline: float | None = None) -> Job:
    """Ask the source of truth about a pending job and move it forward. Never raises on an
    unreachable ImgGo: the stored state is still the best answer we have. `deadline` (a
    time.monotonic() value) bounds the call to ImgGo, its wait for a rate-budget slot
    included; by default POLL_DEADLINE_S from now."""
    if job.terminal:
        return job
    now = services.clock.now()
    if job.dedupe_of is not None:
        source = services.store.get(job.dedupe_of)
        if source is None:
            return job
        if not source.terminal and source.dedupe_of is None:
            source = refresh(services, source, deadline=deadline)  # it may be stale itself
        return update_job(services.store, job.id, lambda cur: sync_from(cur, source, now))
    if job.imggo_job_id is None:
        return job
    if deadline is None:
        deadline = time.monotonic() + POLL_DEADLINE_S
    try:
        remote = services.imggo.get_job(job.imggo_job_id, deadline=deadline)
    except ImageApiError as exc:
        log.warning("could not refresh job %s from ImgGo: %s", job.id, exc.message)
        return job

    def apply(cur: Job) -> Job | None:
        moved = sync_from(cur, remote, now)
        if moved is None:
            # Nothing new: still record that we asked, so the next poll waits its turn.
            return cur.replace(refreshed_at=now, updated_at=now) if not cur.terminal else None
        if moved.status is JobStatus.SUCCEEDED:
            services.metrics.count("JobsSucceeded")
        elif moved.status is JobStatus.FAILED:
            services.metrics.count("JobsFailed")
        return moved.replace(refreshed_at=now)

    return update_job(services.store, job.id, apply)


def get_job(services: Services, tenant: str, job_id: str) -> Job:
    job = load(services, tenant, job_id)
    if job.terminal or (job.status is JobStatus.ACCEPTED and job.dedupe_of is None):
        return job
    if services.clock.now() - job.updated_at >= services.settings.poll_after_s:
        return refresh(services, job)
    return job


def export_job(services: Services, tenant: str, job_id: str, fmt: str) -> tuple[str, bytes]:
    """The manifest as ImgGo renders it in `fmt` (csv, yaml, xml, text)."""
    if fmt not in EXPORT_FORMATS:
        raise ValidationError(
            f"format must be one of {', '.join(EXPORT_FORMATS)}", code="invalid_format"
        )
    job = get_job(services, tenant, job_id)
    if job.status is not JobStatus.SUCCEEDED or job.imggo_job_id is None:
        raise ConflictError(
            f"job {job_id} has no result yet (status {job.status.value})",
            code="job_not_ready",
            details={"status": job.status.value},
        )
    return services.imggo.export(job.imggo_job_id, fmt)


def list_jobs(
    services: Services,
    tenant: str,
    *,
    status: str | None,
    limit: int,
    cursor: str | None,
) -> Page:
    parsed: JobStatus | None = None
    if status is not None:
        try:
            parsed = JobStatus(status)
        except ValueError:
            raise ValidationError(
                f"status must be one of {', '.join(s.value for s in JobStatus)}",
                code="invalid_status",
            ) from None
    if not 1 <= limit <= 200:
        raise ValidationError("limit must be between 1 and 200", code="invalid_limit")
    try:
        page = services.store.list_jobs(tenant, status=parsed, limit=limit, cursor=cursor)
    except ValueError:
        raise ValidationError(
            "cursor is not one this API gave out", code="invalid_cursor"
        ) from None
    return _with_unreadable_failed(services, tenant, parsed, page) if page.unreadable else page


def _with_unreadable_failed(
    services: Services, tenant: str, status: JobStatus | None, page: Page
) -> Page:
    """`page` once each job it could not read is failed in place: shown as that failed
    job where it still belongs (same created_at and id, so the same place, and the
    cursor is untouched); named in `unreadable` only if it could not be failed."""
    items = list(page.items)
    left: list[str] = []
    for job_id in page.unreadable:
        failed = set_aside(services, job_id)
        if failed is None:
            left.append(job_id)
        elif failed.tenant == tenant and status in (None, failed.status):
            items.append(failed)
    items.sort(key=lambda job: (job.created_at, job.id), reverse=True)
    return Page(items, page.next_cursor, tuple(left))


def stored_image(services: Services, tenant: str, job_id: str) -> tuple[str, bytes]:
    """(content type, bytes) of the image a job was uploaded with. Only uploads have one:
    a URL job's image lives at the URL, and we never fetch it on a reader's behalf."""
    job = load(services, tenant, job_id)
    source = job.source
    if source.kind != "upload" or source.blob_key is None:
        raise NotFoundError(
            f"job {job_id} has no stored image (its source is {source.kind})",
            code="image_not_stored",
            details={"source": source.kind},
        )
    data = services.blobs.get(source.blob_key)
    if data is None:  # the blob store's retention outlived by the job record
        raise NotFoundError(f"the image of job {job_id} is no longer kept", code="image_gone")
    # The type was sniffed from the bytes at upload (or checked against the declaration).
    return source.content_type or "application/octet-stream", data
