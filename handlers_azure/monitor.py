"""Log lines in the shape Application Insights / Azure Monitor reads.

The Python worker forwards each `logging` record to the host, which writes it to
Application Insights as a trace, tagged with the invocation and its operation. Our
records also carry, as structured fields (customDimensions), `invocation_id`,
`operation_id` (the trace id of the W3C traceparent, which Application Insights uses as
operation_Id), `platform` and the `request_id` the core chose; `extra` fields (metric
lines, job ids) travel as they are. Set per invocation with `invocation(...)`.
"""

from __future__ import annotations

import contextvars
import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

_labels: contextvars.ContextVar[dict[str, str] | None] = contextvars.ContextVar(
    "imggo_azure_labels", default=None
)
_TRACEPARENT = re.compile(r"[0-9a-f]{2}-([0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}")


def operation_id(traceparent: str | None) -> str:
    """The trace id of a W3C traceparent, or "" when it is missing or malformed."""
    match = _TRACEPARENT.fullmatch((traceparent or "").strip().lower())
    return match.group(1) if match else ""


_installed = False


def install() -> None:
    """Tag every record made from now on with the invocation's labels (idempotent). A
    record factory, not a handler filter: the worker adds its own handler later."""
    global _installed
    if _installed:
        return
    _installed = True
    make = logging.getLogRecordFactory()

    def tagged(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = make(*args, **kwargs)
        for name, value in (_labels.get() or {}).items():
            setattr(record, name, value)
        return record

    logging.setLogRecordFactory(tagged)


def label(name: str, value: str) -> None:
    current = _labels.get()
    if current is not None:
        current[name] = value


@contextmanager
def invocation(invocation_id: str, traceparent: str | None) -> Iterator[dict[str, str]]:
    labels = {
        "platform": "azure",
        "invocation_id": invocation_id,
        "operation_id": operation_id(traceparent),
    }
    token = _labels.set(labels)
    try:
        yield labels
    finally:
        _labels.reset(token)
