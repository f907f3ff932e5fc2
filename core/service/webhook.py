"""ImgGo's webhook: verify, then apply the news forward-only and idempotently.

The signature is HMAC-SHA256 over the exact bytes received (ImgGo signs the output of
JSON.stringify; re-serialising would break it). It carries no timestamp, so the body's
`timestamp` is the only freshness signal: outside the tolerance window the delivery is
refused as a possible replay; inside it a repeat is a harmless no-op.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from core.domain import json_input
from core.domain.errors import NotFoundError, UnauthorizedError, UnavailableError, ValidationError
from core.domain.job import Job, JobError, JobStatus, advance
from core.service.context import Services, update_job
from core.service.submit import imggo_key

SIGNATURE_HEADER = "X-ImgGo-Signature"
_EVENTS = {"job.succeeded": JobStatus.SUCCEEDED, "job.failed": JobStatus.FAILED}


def sign(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify_signature(secrets: tuple[str, ...], body: bytes, header: str | None) -> None:
    if not secrets:
        raise UnavailableError(
            "webhooks are not configured: set IMGGO_WEBHOOK_SECRET", code="webhook_not_configured"
        )
    if not header:
        raise UnauthorizedError(f"missing {SIGNATURE_HEADER} header", code="signature_missing")
    # Bytes, not str: compare_digest refuses a str with non-ASCII characters, and the
    # header is whatever an unauthenticated caller sent.
    given = header.strip().encode("utf-8", "surrogatepass")
    # Compare against every configured secret (rotation) without short-circuiting.
    matched = False
    for secret in secrets:
        matched |= hmac.compare_digest(sign(secret, body).encode("ascii"), given)
    if not matched:
        raise UnauthorizedError("webhook signature does not match", code="signature_invalid")


@dataclass(frozen=True)
class WebhookEvent:
    """A verified ImgGo webhook, read from its JSON body."""

    event: str
    imggo_job_id: str
    manifest: dict[str, Any] | None
    error: str | None
    timestamp: float


def parse_event(body: bytes) -> WebhookEvent:
    payload = json_input.loads(body, what="the webhook body")
    if not isinstance(payload, dict):
        raise ValidationError("webhook body must be a JSON object", code="invalid_webhook")
    event, job_id, stamp = payload.get("event"), payload.get("job_id"), payload.get("timestamp")
    if event not in _EVENTS:
        raise ValidationError(f"unknown event {event!r}", code="invalid_webhook")
    if not isinstance(job_id, str) or not job_id:
        raise ValidationError("job_id is missing", code="invalid_webhook")
    manifest = payload.get("manifest")
    if manifest is not None and not isinstance(manifest, dict):
        raise ValidationError("manifest must be an object or null", code="invalid_webhook")
    error = payload.get("error")
    try:
        when = datetime.fromisoformat(str(stamp).replace("Z", "+00:00"))
        if when.tzinfo is None:
            raise ValueError("naive timestamp")
    except ValueError:
        raise ValidationError(
            "timestamp must be ISO 8601 with a zone", code="invalid_webhook"
        ) from None
    return WebhookEvent(
        event, job_id, manifest, None if error is None else str(error), when.timestamp()
    )


@dataclass(frozen=True)
class WebhookResult:
    """The job a webhook was for, and whether it moved it forward."""

    job: Job
    applied: bool


def apply_webhook(services: Services, body: bytes, signature: str | None) -> WebhookResult:
    settings = services.settings
    verify_signature(settings.webhook_secrets, body, signature)
    event = parse_event(body)
    now = services.clock.now()
    if abs(now - event.timestamp) > settings.webhook_tolerance_s:
        raise UnauthorizedError(
            "webhook timestamp is outside the tolerance window (stale or replayed)",
            code="webhook_stale",
        )
    job_id = services.store.lookup_key(imggo_key(event.imggo_job_id), now=now)
    if job_id is None:
        raise NotFoundError(f"no job for ImgGo job {event.imggo_job_id}", code="unknown_job")
    status = _EVENTS[event.event]
    error = JobError("imggo_job_failed", event.error or "ImgGo could not process the image")
    applied = False

    def change(cur: Job) -> Job | None:
        nonlocal applied
        moved = advance(
            cur,
            status,
            now=now,
            imggo_job_id=event.imggo_job_id,
            manifest=event.manifest,
            error=error,
        )
        applied = moved is not None
        return moved

    job = update_job(services.store, job_id, change)
    if applied:
        services.metrics.count("JobsSucceeded" if status is JobStatus.SUCCEEDED else "JobsFailed")
    return WebhookResult(job, applied)
