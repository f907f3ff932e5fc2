"""What the use cases do with a stored job no reader can decode: fail it in place, once.

A store names such a job instead of returning it (`Page.unreadable`), or raises
UnreadableRecordError for it (`get`). Whoever meets it first - reconcile, a listing, a
job's or a batch's status - asks the store to replace it with a well-formed `failed`
job (error `unreadable_record`), so every later reader finds an ordinary terminal job
and nothing keeps waiting on it. Logged by id and reason only: the record may hold
customer data.
"""

from __future__ import annotations

import logging

from core.domain.job import Job
from core.ports import UnreadableRecordError
from core.service.context import Services

log = logging.getLogger("imggo.service")


def set_aside(services: Services, job_id: str) -> Job | None:
    """Fail the unreadable job `job_id` in place. The failed job, or None when it was
    not failed (it changed or expired meanwhile, or the store could not write): logged,
    never raised, so the caller goes on with the other records."""
    try:
        failed = services.store.fail_unreadable(job_id, now=services.clock.now())
    except Exception as exc:  # containment: one record's trouble must not stop the caller
        log.warning(
            "job %s cannot be read and could not be failed (%s)", job_id, type(exc).__name__
        )
        return None
    if failed is None:
        log.info("job %s was not failed as unreadable: it changed, expired or reads now", job_id)
        return None
    log.warning("job %s could not be read; it is now failed as unreadable_record", job_id)
    services.metrics.count("JobsUnreadable")
    return failed


def get_or_set_aside(services: Services, job_id: str) -> Job | None:
    """`store.get`, except that a job which cannot be read is failed in place and that
    job returned. UnreadableRecordError only when it can be neither read nor failed."""
    try:
        return services.store.get(job_id)
    except UnreadableRecordError as exc:
        log.warning("job %s cannot be read (%s)", job_id, exc.reason)
    failed = set_aside(services, job_id)
    if failed is not None:
        return failed
    return services.store.get(job_id)  # it changed meanwhile: what is there now (or raise)
