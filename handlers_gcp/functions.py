"""The Cloud Functions (gen2) entry points. Each translates and hands over to the core.

    http_api           HTTP trigger: the whole core HTTP surface (/v1/..., webhooks, health)
    pubsub_work        Pub/Sub trigger on the work topic: one batch item per message
    storage_finalized  Cloud Storage trigger (object finalized): a direct upload landed
    pubsub_reconcile   Pub/Sub trigger on the topic Cloud Scheduler publishes to

Acknowledgement is the HTTP status Eventarc sees: returning normally acknowledges the
event; raising answers 500 and Pub/Sub redelivers it (with the function's --retry). So a
message that can never succeed (not ours, malformed, its job gone, refused by the
domain) is logged as an error and acknowledged, and only a transient failure
(UnavailableError, or an unexpected exception) raises.
"""

from __future__ import annotations

import logging
import time

import flask
import functions_framework
from cloudevents.http.event import CloudEvent

from core.domain.errors import DomainError, UnavailableError
from core.service.reconcile import reconcile
from core.service.uploads import upload_landed
from core.service.work import Verdict, handle_work_message
from handlers_gcp.cloud_logging import invocation, log_http_request, trace_from
from handlers_gcp.events import (
    PUBSUB_PUBLISHED,
    STORAGE_FINALIZED,
    BadEventError,
    pubsub_message,
    storage_object,
)
from handlers_gcp.http import to_core_request, to_flask_response
from handlers_gcp.runtime import runtime

log = logging.getLogger("imggo.gcp")


def _event_labels(event: CloudEvent) -> dict[str, str]:
    return {"event_id": str(event.get("id") or ""), "event_type": str(event.get("type") or "")}


def _expect(event: CloudEvent, event_type: str) -> bool:
    if event.get("type") == event_type:
        return True
    # A misrouted trigger: redelivering it would not help.
    log.error("ignoring event of type %s (expected %s)", event.get("type"), event_type)
    return False


@functions_framework.http
def http_api(request: flask.Request) -> flask.Response:
    trace = trace_from(request.headers.get)
    labels = {"execution_id": request.headers.get("Function-Execution-Id") or ""}
    with invocation(trace, labels):
        started = time.perf_counter()
        core_request = to_core_request(request)
        response = runtime().app.handle(core_request)
        log_http_request(
            core_request.method,
            core_request.path,
            response.status,
            time.perf_counter() - started,
            request.headers.get("User-Agent", ""),
        )
        return to_flask_response(response)


@functions_framework.cloud_event
def pubsub_work(event: CloudEvent) -> None:
    with invocation(trace_from(event.get), _event_labels(event)):
        if not _expect(event, PUBSUB_PUBLISHED):
            return
        try:
            message = pubsub_message(event.data)
        except BadEventError as exc:
            log.error("malformed Pub/Sub event acknowledged: %s", exc, extra={"outcome": "poison"})
            return
        result = handle_work_message(runtime().services, message.data)
        if result.verdict is Verdict.RETRY:
            log.warning("job %s: %s; Pub/Sub will redeliver", result.job_id, result.reason)
            raise UnavailableError(result.reason)
        if result.verdict is Verdict.POISON:
            log.error(
                "poison message acknowledged: %s",
                result.reason,
                extra={
                    "outcome": "job_missing" if result.code == "job_missing" else "poison",
                    "code": result.code,
                    "job_id": result.job_id,
                    "pubsub_event_id": event.get("id"),
                },
            )
            return
        assert result.job is not None
        log.info(
            "job %s is %s", result.job.id, result.job.status.value, extra={"job_id": result.job.id}
        )


@functions_framework.cloud_event
def storage_finalized(event: CloudEvent) -> None:
    with invocation(trace_from(event.get), _event_labels(event)):
        if not _expect(event, STORAGE_FINALIZED):
            return
        try:
            obj = storage_object(event.data)
        except BadEventError as exc:
            log.error("malformed storage event acknowledged: %s", exc)
            return
        services = runtime().services
        key = services.blobs.key_for_object(obj.bucket, obj.name)
        if key is None:
            log.info("ignoring gs://%s/%s: not under the blob store", obj.bucket, obj.name)
            return
        try:
            job = upload_landed(services, key, size=obj.size, content_type=obj.content_type)
        except UnavailableError as exc:
            log.warning("upload %s: %s; the event will be redelivered", key, exc.message)
            raise
        except DomainError as exc:
            log.error("upload %s failed: %s", key, exc.message, extra={"code": exc.code})
            return
        if job is not None:
            log.info("upload %s: job %s is %s", key, job.id, job.status.value)


@functions_framework.cloud_event
def pubsub_reconcile(event: CloudEvent) -> None:
    """Cloud Scheduler publishes to the reconcile topic; the message body is ignored.
    Deployed without --retry: a failed run is logged and the next tick tries again."""
    with invocation(trace_from(event.get), _event_labels(event)):
        report = reconcile(runtime().services)
        log.info("reconcile done", extra={"report": report.as_dict()})


__all__ = ["http_api", "pubsub_reconcile", "pubsub_work", "storage_finalized"]
