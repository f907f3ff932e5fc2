"""Reconcile: the safety net under webhooks and queues.

Run on a schedule. Finds pending jobs nobody has touched for `reconcile_age_s`:
accepted ones are (re)dispatched - safe, ImgGo dedupes on our job id - and queued or
running ones are refreshed from ImgGo. Jobs pending past `give_up_after_s` are failed
so nothing waits forever. Bounded per run; touched jobs go to the back of the line.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from core.domain.job import Job, JobError, JobStatus, advance
from core.service.context import Services, update_job
from core.service.query import refresh
from core.service.submit import dispatch
from core.service.uploads import UPLOAD_URL_TTL_S

log = logging.getLogger("imggo.service")


@dataclass(frozen=True)
class ReconcileReport:
    checked: int = 0
    dispatched: int = 0
    advanced: int = 0
    gave_up: int = 0
    unchanged: int = 0
    expired_removed: int = 0

    def as_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


TIMED_OUT = JobError("timed_out", "ImgGo did not finish the job in time")
NEVER_UPLOADED = JobError("upload_missing", "the image was never uploaded to the signed URL")


def _give_up(services: Services, job: Job, now: float, error: JobError = TIMED_OUT) -> Job:
    return update_job(
        services.store, job.id, lambda cur: advance(cur, JobStatus.FAILED, now=now, error=error)
    )


def reconcile(services: Services, *, limit: int | None = None) -> ReconcileReport:
    settings = services.settings
    now = services.clock.now()
    limit = settings.reconcile_limit if limit is None else limit
    pending = services.store.list_pending(
        updated_before=now - settings.reconcile_age_s, limit=limit
    ).items
    counts = {"dispatched": 0, "advanced": 0, "gave_up": 0, "unchanged": 0}
    for job in pending:
        before = job.status
        if now - job.created_at > settings.give_up_after_s:
            after = _give_up(services, job, now)
            counts["gave_up" if after.status is JobStatus.FAILED else "unchanged"] += 1
            continue
        if job.source.kind == "direct_upload":
            if now - job.created_at > UPLOAD_URL_TTL_S + settings.reconcile_age_s:
                after = _give_up(services, job, now, NEVER_UPLOADED)
                counts["gave_up"] += 1
            else:
                counts["unchanged"] += 1
            continue
        if job.status is JobStatus.ACCEPTED and job.dedupe_of is None:
            after = dispatch(services, job)
            counts["dispatched" if after.status is not JobStatus.ACCEPTED else "unchanged"] += 1
            continue
        after = refresh(services, job)
        counts["advanced" if after.status is not before else "unchanged"] += 1
    removed = services.store.delete_expired(now=now).removed
    report = ReconcileReport(checked=len(pending), expired_removed=removed, **counts)
    log.info("reconcile: %s", report.as_dict())
    return report
