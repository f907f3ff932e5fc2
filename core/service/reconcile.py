"""Reconcile: the safety net under webhooks and queues.

Run on a schedule. Finds pending jobs nobody has touched for `reconcile_age_s`:
accepted ones are (re)dispatched - safe, ImgGo dedupes on our job id - and queued or
running ones are refreshed from ImgGo. Jobs pending past `give_up_after_s` are failed
so nothing waits forever. Bounded per run; touched jobs go to the back of the line.

Every job is handled on its own, so one bad record never costs the others their pass
(every tenant's jobs share it): a record the store cannot decode is failed in place
(see core.service.unreadable); a job whose handling raises is logged by id and
exception type (never its content), counted, and failed with a reason - unless the
failure was transient (a DomainError such as the store being unavailable), in which case
the next pass tries it again and `give_up_after_s` still bounds it.

A pass is bounded by the time its invocation has left (`time_left`, from the platform):
it takes the next job only while there is room for that job's worst case (one ImgGo
submission, `submit_deadline_s`, plus a margin for the store writes), so a large backlog
is worked through over several passes instead of a pass killed mid-job by its timeout.
The jobs it did not reach are counted as `deferred`; so are those after a dispatch the
ImgGo rate budget deferred (core.domain.rate_budget): the pass stops dispatching there.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from core.domain.errors import DomainError, RateLimitedError
from core.domain.job import Job, JobError, JobStatus, advance
from core.ports import Sweep, UnreadableRecordError
from core.service.context import Services, update_job
from core.service.query import refresh
from core.service.submit import dispatch
from core.service.unreadable import set_aside
from core.service.uploads import UPLOAD_URL_TTL_S, upload_landed

log = logging.getLogger("imggo.service")


@dataclass(frozen=True)
class ReconcileReport:
    """What one pass did. `checked` = dispatched + advanced + gave_up + unchanged +
    unreadable + errors. `unreadable`: pending records the store could not decode, of
    which `set_aside` were failed in place (the others are met again next pass).
    `errors`: jobs whose handling raised. `expired_*`: what the expiry sweep removed,
    and skipped (left for the next sweep). `deferred`: pending jobs this pass had no
    time left for (not in `checked`)."""

    checked: int = 0
    dispatched: int = 0
    advanced: int = 0
    gave_up: int = 0
    unchanged: int = 0
    unreadable: int = 0
    set_aside: int = 0
    errors: int = 0
    expired_removed: int = 0
    expired_skipped: int = 0
    deferred: int = 0

    def as_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


TIMED_OUT = JobError("timed_out", "ImgGo did not finish the job in time")
NEVER_UPLOADED = JobError("upload_missing", "the image was never uploaded to the signed URL")
NOT_PROCESSED = JobError("processing_failed", "the job could not be processed; submit it again")


def _give_up(services: Services, job: Job, now: float, error: JobError = TIMED_OUT) -> Job:
    return update_job(
        services.store, job.id, lambda cur: advance(cur, JobStatus.FAILED, now=now, error=error)
    )


def _reconcile_one(services: Services, job: Job, now: float) -> str:
    """Handle one pending job; the report counter it adds to."""
    settings = services.settings
    if now - job.created_at > settings.give_up_after_s:
        after = _give_up(services, job, now)
        return "gave_up" if after.status is JobStatus.FAILED else "unchanged"
    if job.source.kind == "direct_upload":
        if now - job.created_at <= UPLOAD_URL_TTL_S + settings.reconcile_age_s:
            return "unchanged"
        # Past the signed URL's life: before calling it missing, look in the bucket. The
        # upload may have landed with its event lost (a failed trigger, a dropped
        # notification): then it is taken in now, as the trigger would have.
        key = job.source.blob_key
        info = services.blobs.describe(key) if key else None
        if key and info is not None:
            landed = upload_landed(services, key, size=info.size, content_type=info.content_type)
            moved = landed is not None and landed.status is not job.status
            return "dispatched" if moved else "unchanged"
        _give_up(services, job, now, NEVER_UPLOADED)
        return "gave_up"
    if job.status is JobStatus.ACCEPTED and job.dedupe_of is None:
        after = dispatch(services, job, defer=True)
        return "dispatched" if after.status is not JobStatus.ACCEPTED else "unchanged"
    after = refresh(services, job)
    return "advanced" if after.status is not job.status else "unchanged"


def _contain(services: Services, job: Job, exc: Exception, now: float) -> None:
    """After handling `job` raised `exc`: keep it from raising again next pass."""
    if isinstance(exc, UnreadableRecordError):
        # A record it depends on (the job itself, re-read; the one it follows) is bad.
        log.warning("reconcile: job %s met unreadable %s %s", job.id, exc.kind, exc.record_id)
        if exc.kind == "job":
            set_aside(services, exc.record_id)
        return
    if isinstance(exc, DomainError):
        log.warning("reconcile: job %s left for the next pass (%s)", job.id, exc.code)
        return
    log.warning(
        "reconcile: job %s could not be processed (%s); failing it", job.id, type(exc).__name__
    )
    try:
        update_job(
            services.store,
            job.id,
            lambda cur: advance(cur, JobStatus.FAILED, now=now, error=NOT_PROCESSED),
        )
    except Exception as again:  # logged and counted already; the pass goes on
        log.warning("reconcile: job %s could not be failed (%s)", job.id, type(again).__name__)


# What a job's store writes and reads may take besides its ImgGo call.
STORE_MARGIN_S = 2.0


def reconcile(
    services: Services,
    *,
    limit: int | None = None,
    time_left: Callable[[], float] | None = None,
) -> ReconcileReport:
    """One pass. `time_left()`: seconds the invocation has left (None: unbounded)."""
    settings = services.settings
    now = services.clock.now()
    limit = settings.reconcile_limit if limit is None else limit
    per_job_s = settings.submit_deadline_s + STORE_MARGIN_S
    scan = services.store.list_pending(updated_before=now - settings.reconcile_age_s, limit=limit)
    counts = dict.fromkeys(("dispatched", "advanced", "gave_up", "unchanged", "errors"), 0)
    set_aside_count = sum(set_aside(services, job_id) is not None for job_id in scan.unreadable)
    handled = 0
    for job in scan.items:
        if time_left is not None and time_left() < per_job_s:
            break
        handled += 1
        try:
            counts[_reconcile_one(services, job, now)] += 1
        except RateLimitedError:
            # ImgGo's rate budget is spent: every job after this one would only wait for
            # it too. They are `deferred`, like the jobs a pass has no time for.
            handled -= 1
            break
        except Exception as exc:  # one job's failure is not the pass's (see the docstring)
            counts["errors"] += 1
            _contain(services, job, exc, now)
    deferred = len(scan.items) - handled
    if deferred:
        log.info(
            "reconcile: no time or ImgGo budget left for %d pending jobs; the next pass takes them",
            deferred,
        )
    if time_left is None or time_left() >= STORE_MARGIN_S:
        sweep = services.store.delete_expired(now=now)
    else:
        sweep = Sweep(removed=0, skipped=0)
    report = ReconcileReport(
        deferred=deferred,
        checked=handled + len(scan.unreadable),
        unreadable=len(scan.unreadable),
        set_aside=set_aside_count,
        expired_removed=sweep.removed,
        expired_skipped=sweep.skipped,
        **counts,
    )
    log.info("reconcile: %s", report.as_dict())
    return report
