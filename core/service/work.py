"""One queue message in, one verdict out: what every cloud's worker needs to decide
whether to acknowledge, retry, defer or dead-letter a message. The clouds differ only
in how they act on the verdict (SQS: report the item failed; Pub/Sub: raise or return)."""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass
from enum import Enum

from core.domain.errors import (
    DomainError,
    NotFoundError,
    RateLimitedError,
    UnavailableError,
    ValidationError,
)
from core.domain.job import Job
from core.ports import WorkItem
from core.service.context import Services
from core.service.messages import decode_work_item

log = logging.getLogger("imggo.service")


class Verdict(Enum):
    DONE = "done"  # dispatched, or nothing left to do (a repeat)
    RETRY = "retry"  # transient (ImgGo unavailable): deliver again later
    DEFER = "defer"  # no ImgGo budget yet: deliver again after `delay_s`, not a failure
    POISON = "poison"  # will fail every time: not ours, malformed, its job gone


@dataclass(frozen=True, eq=False)
class WorkResult:
    """What a worker did with one queue message, and what the platform should do with
    it."""

    verdict: Verdict
    job: Job | None = None
    job_id: str | None = None
    code: str = ""  # why, for logs: bad_message, job_missing, or the domain error's code
    reason: str = ""
    delay_s: float = 0.0  # DEFER: when the budget expects a call free


def deferral_delay(wait_s: float | None) -> float:
    """How long deferred work is held back, given the budget's wait for its next free
    call: between half that wait and all of it (at least a second). It comes back while
    the slots reserved meanwhile are still being spent, so the plan's calls never go
    unused for want of takers, and spread, so deferred items do not all ask at once."""
    return max(1.0, (wait_s or 0.0) * random.uniform(0.5, 1.0))  # noqa: S311 - spreads retries


def send_later(services: Services, job_id: str, delay_s: float) -> bool:
    """Hand deferred work back to the queue, held back `delay_s`. True when the queue
    took it, so the caller may acknowledge what it holds; False when there is no queue,
    it cannot hold a message that long (Pub/Sub: not at all) or it failed - the job stays
    accepted, for the platform's redelivery or the reconciler."""
    queue = services.queue
    if queue is None or delay_s > queue.max_delay_s:
        return False
    try:
        queue.send([WorkItem(job_id)], delay_s=delay_s)
    except Exception as exc:  # what holds the work (a delivery, the store) still does
        log.warning("job %s: deferred work not queued (%s)", job_id, type(exc).__name__)
        return False
    return True


def handle_work_message(services: Services, body: str | bytes) -> WorkResult:
    try:
        item = decode_work_item(body)
    except ValidationError as exc:
        return WorkResult(Verdict.POISON, code=exc.code, reason=exc.message)
    try:
        from core.service.batch import process_item  # an HTTP cold start never needs it

        job = process_item(services, item)
    except RateLimitedError as exc:
        return WorkResult(
            Verdict.DEFER,
            job_id=item.job_id,
            code=exc.code,
            reason=exc.message,
            delay_s=deferral_delay(exc.retry_after_s),
        )
    except UnavailableError as exc:
        return WorkResult(Verdict.RETRY, job_id=item.job_id, code=exc.code, reason=exc.message)
    except NotFoundError:
        return WorkResult(
            Verdict.POISON, job_id=item.job_id, code="job_missing", reason=f"no job {item.job_id}"
        )
    except DomainError as exc:
        return WorkResult(Verdict.POISON, job_id=item.job_id, code=exc.code, reason=exc.message)
    return WorkResult(Verdict.DONE, job=job, job_id=job.id)
