"""EventBridge schedule entry point: one reconcile pass, bounded by the time the
invocation has left; the core logs the report and emits it as metrics."""

from __future__ import annotations

from typing import Any

from handlers_aws.observability import LazyHandler
from handlers_aws.runtime import host, time_left


def _handle(event: Any, context: Any) -> dict[str, int]:
    return host().timer(time_left=time_left(context)).as_dict()


handler = LazyHandler(_handle)
