"""A Lambda handler for the runtime-loop test: the real HTTP handler, plus headers that
show what the container kept between invocations (process, services, clients)."""

from __future__ import annotations

import os
from typing import Any

from handlers_aws.api import handler as api_handler
from handlers_aws.runtime import host


def handler(event: Any, context: Any) -> dict[str, Any]:
    response: dict[str, Any] = api_handler(event, context)
    runtime = host().runtime
    if runtime.built:
        services = runtime.services
        response["headers"].update(
            {
                "x-probe-pid": str(os.getpid()),
                "x-probe-builds": str(runtime.builds),
                "x-probe-store": str(id(services.store)),
                "x-probe-dynamodb-client": str(id(getattr(services.store, "client", None))),
                "x-probe-imggo-http": str(id(getattr(services.imggo, "_client", None))),
                "x-probe-request-id": context.aws_request_id,
            }
        )
    return response
