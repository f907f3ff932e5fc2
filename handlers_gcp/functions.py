"""The Cloud Functions (gen2) entry points. Each translates and hands over to the core.

    http_api           HTTP trigger: the whole core HTTP surface (/v1/..., webhooks, health)
    pubsub_work        Pub/Sub trigger on the work topic: one batch item per message
    storage_finalized  Cloud Storage trigger (object finalized): a direct upload landed
    pubsub_reconcile   Pub/Sub trigger on the topic Cloud Scheduler publishes to

Acknowledgement is the HTTP status Eventarc sees: returning normally acknowledges the
event; raising answers 500 and Pub/Sub redelivers it (with the subscription's backoff,
up to its dead-letter bound). The verdict is the core's (core.platform):

    verdict   what Eventarc is told
    DONE      return: acknowledged
    POISON    return: acknowledged (the core logged it, counted it, recorded its job)
    RETRY     raise: redelivered
    DEFER     raise: redelivered after the subscription's retry backoff (Pub/Sub cannot
              hold a message back; no ImgGo budget yet - see core.platform); but on
              a delivery the subscription could dead-letter (`deliveryAttempt` near
              IMGGO_FN_MAX_DELIVERY_ATTEMPTS: core.platform), published again and
              acknowledged

A malformed or misrouted event never reaches the core: it can never succeed, so it is
logged as an error and acknowledged.
"""

from __future__ import annotations

import logging
import time

import flask
import functions_framework
from cloudevents.http.event import CloudEvent

from core.platform import Outcome
from handlers_gcp.cloud_logging import invocation, log_http_request, trace_from
from handlers_gcp.events import (
    PUBSUB_PUBLISHED,
    STORAGE_FINALIZED,
    BadEventError,
    pubsub_message,
    storage_object,
)
from handlers_gcp.http import to_core_request, to_flask_response
from handlers_gcp.runtime import host

log = logging.getLogger("imggo.gcp")


class RedeliverError(Exception):
    """Raised so Eventarc answers 500 and Pub/Sub redelivers the event."""


def _event_labels(event: CloudEvent) -> dict[str, str]:
    return {"event_id": str(event.get("id") or ""), "event_type": str(event.get("type") or "")}


def _expect(event: CloudEvent, event_type: str) -> bool:
    if event.get("type") == event_type:
        return True
    # A misrouted trigger: redelivering it would not help.
    log.error("ignoring event of type %s (expected %s)", event.get("type"), event_type)
    return False


def _acknowledge(outcome: Outcome) -> None:
    if not outcome.acknowledge:
        raise RedeliverError(outcome.code)


@functions_framework.http
def http_api(request: flask.Request) -> flask.Response:
    trace = trace_from(request.headers.get)
    labels = {"execution_id": request.headers.get("Function-Execution-Id") or ""}
    with invocation(trace, labels):
        started = time.perf_counter()
        core_request = to_core_request(request)
        response = host().http(core_request, platform_request_id=labels["execution_id"])
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
            log.error("malformed Pub/Sub event acknowledged: %s", exc)
            return
        outcome = host().queue_message(
            message.data,
            message_id=message.message_id,
            delivery_attempt=message.delivery_attempt,
        )
        _acknowledge(outcome)


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
        _acknowledge(
            host().object_landed(obj.bucket, obj.name, size=obj.size, content_type=obj.content_type)
        )


@functions_framework.cloud_event
def pubsub_reconcile(event: CloudEvent) -> None:
    """Cloud Scheduler publishes to the reconcile topic; the message body is ignored.
    Deployed without --retry: a failed run is logged and the next tick tries again."""
    with invocation(trace_from(event.get), _event_labels(event)):
        host().timer()


__all__ = ["http_api", "pubsub_reconcile", "pubsub_work", "storage_finalized"]
