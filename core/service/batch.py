"""Batches: many images, one request; each item is a job of its own.

Item job ids are derived from the batch id and the item's position, so a repeated
batch request (same Idempotency-Key) or a redelivered queue message finds the same
jobs instead of making new ones. A bad item is reported in its slot, never raised:
one broken URL must not sink the other 999.

With a Queue (SQS, Pub/Sub, a local thread pool) items are accepted here and
dispatched by workers (`process_item`); without one they are dispatched inline with
bounded concurrency (the CLI's `ingest`).
"""

from __future__ import annotations

import hashlib
import json
import threading
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from core.domain.errors import (
    ConflictError,
    DomainError,
    NotFoundError,
    UnavailableError,
    ValidationError,
)
from core.domain.job import Job, JobStatus
from core.ports import Batch, ImageUpload, UnreadableRecordError, WorkItem
from core.service.context import Services
from core.service.submit import (
    NewJob,
    SubmitOutcome,
    accept_many,
    dispatch,
    validate,
    validate_common,
)
from core.service.unreadable import get_or_set_aside

if TYPE_CHECKING:
    from concurrent.futures import Future

_NAMESPACE = uuid.UUID("0b8f6a52-7d4e-4c7b-bb1e-1f0c9a9e2d63")
# Items accepted per store round trip. Small enough that the first dispatches start at
# once, large enough that a thousand items cost a few dozen transactions, not thousands.
_ACCEPT_CHUNK = 32
_STOPPED = {"code": "stopped", "message": "the batch was stopped before this item was accepted"}


@dataclass(frozen=True)
class BatchItem:
    """One image of a batch request."""

    image_url: str | None = None
    upload: ImageUpload | None = None
    extras: dict[str, Any] = field(default_factory=dict)
    # The item's own Idempotency-Key: any later batch naming it finds the same job (a
    # resumed `imggo-fn ingest`) instead of making one per batch and position.
    idempotency_key: str | None = None


@dataclass(frozen=True)
class ItemOutcome:
    """What became of one item of a batch: its job, or why it was refused."""

    index: int
    job: Job | None
    error: dict[str, str] | None = None

    @property
    def ok(self) -> bool:
        return self.job is not None and self.job.status not in (
            JobStatus.FAILED,
            JobStatus.REJECTED,
        )


@dataclass(frozen=True)
class BatchResult:
    """A batch and its items' outcomes; `created` is False for a replay."""

    batch: Batch
    items: list[ItemOutcome]
    created: bool


def batch_fingerprint(pattern_id: str, items: Sequence[BatchItem]) -> str:
    """A hash of what the request asked for, to tell a replay from a reused key."""
    digest = hashlib.sha256(pattern_id.encode())
    for item in items:
        image = (
            hashlib.sha256(item.upload.data).hexdigest()
            if item.upload is not None
            else item.image_url
        )
        digest.update(
            json.dumps([image, item.extras, item.idempotency_key], sort_keys=True).encode()
        )
    return digest.hexdigest()


def _replay(services: Services, batch: Batch, fingerprint: str) -> BatchResult:
    # Batches stored before fingerprints existed have none: they replay as before.
    if batch.fingerprint is not None and batch.fingerprint != fingerprint:
        raise ConflictError(
            "this Idempotency-Key was used for a different batch",
            code="idempotency_conflict",
            details={"batch_id": batch.id},
        )
    return BatchResult(batch, batch_status(services, batch), created=False)


def item_job_id(batch_id: str, index: int) -> str:
    return str(uuid.uuid5(_NAMESPACE, f"{batch_id}:{index}"))


def _error(exc: DomainError) -> dict[str, str]:
    return {"code": exc.code, "message": exc.message}


def run_batch(
    services: Services,
    tenant: str,
    pattern_id: str,
    items: Sequence[BatchItem],
    *,
    idempotency_key: str | None = None,
    concurrency: int | None = None,
    on_item: Callable[[ItemOutcome], None] | None = None,
    stop: threading.Event | None = None,
) -> BatchResult:
    """`stop`, once set, ends the batch early (a Ctrl-C): calls in flight finish, items
    not dispatched yet stay accepted, items not accepted yet are reported `stopped`."""
    settings = services.settings
    if not items:
        raise ValidationError("a batch needs at least one item", code="empty_batch")
    if len(items) > settings.batch_max_items:
        raise ValidationError(
            f"a batch holds at most {settings.batch_max_items} items", code="batch_too_large"
        )
    # Refused for the whole batch: with no valid pattern not one item could succeed.
    validate_common(pattern_id, idempotency_key, {})
    fingerprint = batch_fingerprint(pattern_id, items)
    if idempotency_key is not None:
        batch_id = str(uuid.uuid5(_NAMESPACE, f"{tenant}\x00{idempotency_key}"))
        existing = services.store.get_batch(batch_id)
        if existing is not None and existing.tenant == tenant:
            return _replay(services, existing, fingerprint)
    else:
        batch_id = str(uuid.uuid4())

    # Validate every item first (cheap, no I/O but DNS) so the batch record lists
    # which items were refused before any worker starts.
    news: list[NewJob | None] = []
    item_errors: dict[int, dict[str, str]] = {}
    for index, item in enumerate(items):
        new = NewJob(
            tenant=tenant,
            pattern_id=pattern_id,
            image_url=item.image_url,
            upload=item.upload,
            extras=item.extras,
            idempotency_key=item.idempotency_key,
            job_id=None if item.idempotency_key else item_job_id(batch_id, index),
            batch_id=batch_id,
        )
        try:
            news.append(validate(services, new))
        except DomainError as exc:
            news.append(None)
            item_errors[index] = _error(exc)
    now = services.clock.now()
    batch, created = services.store.create_batch(
        Batch(
            id=batch_id,
            tenant=tenant,
            pattern_id=pattern_id,
            job_ids=[n.job_id if n else None for n in news],
            item_errors=item_errors,
            created_at=now,
            expires_at=now + settings.job_ttl_s if settings.job_ttl_s > 0 else None,
            fingerprint=fingerprint,
        )
    )
    if not created:
        # A concurrent request with the same key stored its batch first: that one
        # dispatches the items, this one is its replay.
        return _replay(services, batch, fingerprint)

    outcomes: list[ItemOutcome | None] = [None] * len(items)

    def done(outcome: ItemOutcome) -> ItemOutcome:
        outcomes[outcome.index] = outcome
        if on_item is not None:
            on_item(outcome)
        return outcome

    def dispatch_item(index: int, accepted: SubmitOutcome, image: bytes | None) -> ItemOutcome:
        if stop is not None and stop.is_set():
            return done(ItemOutcome(index, accepted.job, None))
        try:
            job = dispatch(
                services,
                accepted.job,
                image=image,
                content_holder=accepted.content_holder,
                imggo_slots=slots,
            )
            return done(ItemOutcome(index, job, None))
        except DomainError as exc:
            return done(ItemOutcome(index, None, _error(exc)))

    for index, error in item_errors.items():
        done(ItemOutcome(index, None, error))
    valid = [(index, new) for index, new in enumerate(news) if new is not None]
    in_flight = max(1, min(concurrency or settings.batch_concurrency, len(valid) or 1))
    inline = services.queue is None
    pool = None
    dispatching: list[Future[ItemOutcome]] = []
    # `concurrency` bounds the calls in flight to ImgGo (what its rate limits and our
    # users care about), not the threads: an item's store writes before and after its
    # call do not hold one of those slots, so the slots stay busy with ImgGo's latency
    # while the bookkeeping of other items runs. Twice as many threads as slots cover
    # that bookkeeping; a thread waiting for a slot costs nothing.
    slots = threading.BoundedSemaphore(in_flight)
    if inline and in_flight > 1:
        from concurrent.futures import ThreadPoolExecutor  # only batches pay its import

        pool = ThreadPoolExecutor(max_workers=2 * in_flight, thread_name_prefix="batch")
    try:
        # Accepted a chunk at a time (one store round trip per chunk), while the pool
        # already dispatches the chunks before: ImgGo's latency overlaps our writes.
        for start in range(0, len(valid), _ACCEPT_CHUNK):
            if stop is not None and stop.is_set():
                for index, _ in valid[start:]:
                    done(ItemOutcome(index, None, dict(_STOPPED)))
                break
            chunk = valid[start : start + _ACCEPT_CHUNK]
            accepted = accept_many(services, [new for _, new in chunk])
            for (index, new), outcome in zip(chunk, accepted, strict=True):
                image = new.upload.data if new.upload is not None else None
                if isinstance(outcome, DomainError):
                    done(ItemOutcome(index, None, _error(outcome)))
                elif not inline:
                    done(ItemOutcome(index, outcome.job, None))
                elif pool is not None:
                    dispatching.append(pool.submit(dispatch_item, index, outcome, image))
                else:
                    dispatch_item(index, outcome, image)
    finally:
        if pool is not None:
            pool.shutdown(wait=True)
    for future in dispatching:
        future.result()  # a failure that is not the item's (the store is down) is raised
    finished = [o for o in outcomes if o is not None]
    assert len(finished) == len(items), "every item has an outcome"
    if services.queue is not None:
        services.queue.send(
            [WorkItem(o.job.id) for o in finished if o.job is not None and not o.job.terminal]
        )
    return BatchResult(batch, finished, created=True)


def process_item(services: Services, item: WorkItem) -> Job:
    """A queue worker's unit: dispatch one accepted job. Repeats are no-ops. Raises
    UnavailableError on a transient failure so the queue redelivers the message, and
    RateLimitedError (one) when the rate budget defers it."""
    job = services.store.get(item.job_id)
    if job is None:
        raise NotFoundError(f"no job {item.job_id}", code="job_not_found")
    job = dispatch(services, job, defer=True)
    if job.status is JobStatus.ACCEPTED and job.dedupe_of is None:
        raise UnavailableError(f"ImgGo did not take job {job.id} yet; retry later")
    return job


def load_batch(services: Services, tenant: str, batch_id: str) -> Batch:
    batch = services.store.get_batch(batch_id)
    if batch is None or batch.tenant != tenant:
        raise NotFoundError(f"no batch {batch_id}", code="batch_not_found")
    return batch


_UNREADABLE_ITEM = {
    "code": "unreadable_record",
    "message": "the item's job is stored but cannot be read",
}


def batch_status(services: Services, batch: Batch) -> list[ItemOutcome]:
    """Each item's outcome, on its own: an item whose job cannot be read shows that job
    failed in place (core.service.unreadable), or that as its error, never a 500."""
    outcomes: list[ItemOutcome] = []
    for index, job_id in enumerate(batch.job_ids):
        error = batch.item_errors.get(index)
        try:
            job = get_or_set_aside(services, job_id) if job_id is not None else None
        except UnreadableRecordError:
            job, error = None, dict(_UNREADABLE_ITEM)
        if job is None and error is None:
            error = {"code": "job_missing", "message": "the item's job is not stored (yet)"}
        outcomes.append(ItemOutcome(index, job, error))
    return outcomes
