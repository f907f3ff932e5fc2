"""The one FunctionApp (Python v2 programming model). Each function translates and hands
over to the core (core.platform.FunctionHost).

    http_api         HTTP trigger, route `{*path}`: the whole core HTTP surface (our own
                     Bearer auth; the function itself is anonymous)
    queue_work       Queue trigger on the work queue: one batch item per message
    queue_poison     Queue trigger on `<queue>-poison`: what the host gave up on
    upload_landed    Blob trigger (source Event Grid, as Flex Consumption requires) on
                     the uploads container's `incoming/`: a direct upload landed
    reconcile        Timer trigger (a singleton: the host holds a lease, one at a time)

Acknowledgement is how the function returns (the host's queue rules are in host.json):

    verdict   what the host does
    DONE      return: the message is deleted
    POISON    return: deleted (the core logged it, counted it, recorded its job)
    RETRY     raise: visible again after the visibility timeout; after maxDequeueCount
              the host moves it to `<queue>-poison`, where queue_poison records its job
              failed, so nothing is lost silently
    DEFER     return: the core sent it again with a visibility timeout (no ImgGo budget
              yet), so a deferral never counts towards maxDequeueCount

Binding names come from app settings (`%NAME%`): handlers_azure.runtime's defaults are
what infra/azure/main.bicep sets.
"""

from __future__ import annotations

import logging

import azure.functions as func

from core.platform import Outcome
from handlers_azure import monitor
from handlers_azure.http import to_core_request, to_http_response
from handlers_azure.runtime import QUEUE_NAME, UPLOAD_CONTAINER, host

log = logging.getLogger("imggo.azure")

CONNECTION = "AzureWebJobsStorage"
RECONCILE_SCHEDULE = "IMGGO_FN_RECONCILE_SCHEDULE"  # NCRONTAB, e.g. "0 */5 * * * *"
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")

monitor.install()
app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)


class RedeliverError(Exception):
    """Raised so the host makes the message visible again (and counts a dequeue)."""


def _acknowledge(outcome: Outcome) -> None:
    if not outcome.acknowledge:
        raise RedeliverError(outcome.code)


def _traceparent(context: func.Context) -> str | None:
    """The host's trace context for the invocation: its trace id is the operation_Id
    Application Insights files the invocation's logs under."""
    trace = getattr(context, "trace_context", None)
    return getattr(trace, "trace_parent", None) if trace is not None else None


@app.function_name("http_api")
@app.route(route="{*path}", methods=METHODS, auth_level=func.AuthLevel.ANONYMOUS)
def http_api(req: func.HttpRequest, context: func.Context) -> func.HttpResponse:
    # The host continues a caller's valid traceparent (same trace id) and starts a new
    # trace otherwise: the caller's header is only a fallback when the host sent none.
    traceparent = _traceparent(context) or req.headers.get("traceparent")
    with monitor.invocation(context.invocation_id, traceparent):
        response = host().http(to_core_request(req), platform_request_id=context.invocation_id)
        return to_http_response(response)


@app.function_name("queue_work")
@app.queue_trigger(arg_name="msg", queue_name=f"%{QUEUE_NAME}%", connection=CONNECTION)
def queue_work(msg: func.QueueMessage, context: func.Context) -> None:
    with monitor.invocation(context.invocation_id, _traceparent(context)):
        outcome = host().queue_message(msg.get_body(), message_id=msg.id or "")
        _acknowledge(outcome)


@app.function_name("queue_poison")
@app.queue_trigger(arg_name="msg", queue_name=f"%{QUEUE_NAME}%-poison", connection=CONNECTION)
def queue_poison(msg: func.QueueMessage, context: func.Context) -> None:
    with monitor.invocation(context.invocation_id, _traceparent(context)):
        host().dead_lettered(msg.get_body(), message_id=msg.id or "")


@app.function_name("upload_landed")
@app.blob_trigger(
    arg_name="blob",
    path=f"%{UPLOAD_CONTAINER}%/incoming/{{name}}",
    connection=CONNECTION,
    source=func.BlobSource.EVENT_GRID,
)
def upload_landed(blob: func.InputStream, context: func.Context) -> None:
    with monitor.invocation(context.invocation_id, _traceparent(context)):
        container, _, name = (blob.name or "").partition("/")
        if not name:
            log.error("blob event without a container/name path acknowledged: %r", blob.name)
            return
        # Size and type are read from the blob itself (a SAS bound neither).
        _acknowledge(host().object_landed(container, name, size=None, content_type=None))


@app.function_name("reconcile")
@app.timer_trigger(
    arg_name="timer", schedule=f"%{RECONCILE_SCHEDULE}%", run_on_startup=False, use_monitor=True
)
def reconcile(timer: func.TimerRequest, context: func.Context) -> None:
    """A failed run is logged and the next tick tries again (timers are not retried)."""
    with monitor.invocation(context.invocation_id, _traceparent(context)):
        host().timer()


__all__ = ["app"]
