"""HTTP entry point: API Gateway HTTP API (2.0), REST API (1.0 proxy), Function URLs.

Translate the event to the core's Request, hand it to the host, translate the Response
back. API Gateway's request id is offered to the core as the correlation id (the core
prefers a safe client X-Request-Id, see core.platform).
"""

from __future__ import annotations

from typing import Any

from handlers_aws.http_events import parse_event, to_event_response
from handlers_aws.observability import LazyHandler
from handlers_aws.runtime import host


def _handle(event: Any, context: Any) -> dict[str, Any]:
    http = parse_event(event)
    return to_event_response(host().http(http.request, platform_request_id=http.request_id))


handler = LazyHandler(_handle)
