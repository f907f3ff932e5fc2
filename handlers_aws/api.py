"""HTTP entry point: API Gateway HTTP API (2.0), REST API (1.0 proxy), Function URLs.

Translate the event to the core's Request, let the core's HttpApp route it, translate
the Response back. The request id API Gateway assigned (or the client's X-Request-Id)
becomes the log correlation id and the response's X-Request-Id.
"""

from __future__ import annotations

from typing import Any

from core.api.app import safe_request_id
from handlers_aws.http_events import parse_event, to_event_response
from handlers_aws.observability import LazyHandler, observability
from handlers_aws.runtime import current


def _handle(event: Any, context: Any) -> dict[str, Any]:
    http = parse_event(event)
    request = http.request
    request_id = safe_request_id(request.headers.get("x-request-id")) or http.request_id
    if request_id:
        request.headers["X-Request-Id"] = request_id
        observability().logger.set_correlation_id(request_id)
    runtime = current()
    runtime.refresh_if_due()
    return to_event_response(runtime.runtime.app.handle(request))


handler = LazyHandler(_handle)
