"""Log lines in the shape Application Insights / Azure Monitor reads.

What reaches Application Insights is what the Python worker ships for each `logging`
record (azure-functions-python-worker, dispatcher.py): its handler on the root logger
has no formatter, so it sends the record's message (with a traceback after it, if any),
the logger's name as category, the level and the invocation id. The host writes that as
a trace with operation_Id (the trace id of the invocation's W3C traceparent) and
customDimensions.InvocationId of its own. A record's `extra` fields are never shipped:
RpcLog's property bag stays empty. So inside an invocation every record's message IS
the structure - one JSON object, which a log query reads with `parse_json(message)`:

    {"message": "metric ColdStart", "level": "INFO", "logger": "imggo.metrics",
     "platform": "azure", "invocation_id": "...", "operation_id": "<trace id>",
     "request_id": "...", "metric": "ColdStart", "value": 1, "unit": "Count"}

with every `extra` field (metric lines, job ids, codes) as a key, the same fields the
other clouds' structured lines carry, and the traceback, when there is one, under
`exception` (appended after the object, it would make the line unreadable as JSON).
Records made outside an invocation (imports, tests) are left as they are.
"""

from __future__ import annotations

import contextvars
import json
import logging
import re
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

_labels: contextvars.ContextVar[dict[str, str] | None] = contextvars.ContextVar(
    "imggo_azure_labels", default=None
)
_TRACEPARENT = re.compile(r"[0-9a-f]{2}-([0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}")
# LogRecord attributes that are not `extra=` fields (nor our labels).
_RECORD_ATTRS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
    "taskName",
}


def operation_id(traceparent: str | None) -> str:
    """The trace id of a W3C traceparent, or "" when it is missing or malformed."""
    match = _TRACEPARENT.fullmatch((traceparent or "").strip().lower())
    return match.group(1) if match else ""


class InvocationRecord(logging.LogRecord):
    """A record made inside an invocation: its message is the JSON object of the module
    docstring, built when a handler formats it (after `extra` fields are set)."""

    exception_text = ""

    def getMessage(self) -> str:
        entry: dict[str, Any] = {
            "message": super().getMessage(),
            "level": self.levelname,
            "logger": self.name,
        }
        for key, value in vars(self).items():
            if key not in _RECORD_ATTRS and not key.startswith("_") and key != "exception_text":
                entry.setdefault(key, value)
        if self.exception_text:
            entry["exception"] = self.exception_text
        return json.dumps(entry, default=str, ensure_ascii=False)


_installed = False


def install() -> None:
    """Tag every record made from now on inside an invocation with its labels and make
    its message the JSON object (idempotent). A record factory, not a handler or a
    formatter: the worker's handler is the worker's, and formats with logging's default."""
    global _installed
    if _installed:
        return
    _installed = True
    make = logging.getLogRecordFactory()

    def tagged(
        name: str,
        level: int,
        pathname: str,
        lineno: int,
        msg: object,
        args: Any,
        exc_info: Any,
        func: str | None = None,
        sinfo: str | None = None,
        **kwargs: Any,
    ) -> logging.LogRecord:
        labels = _labels.get()
        if labels is None:
            return make(name, level, pathname, lineno, msg, args, exc_info, func, sinfo, **kwargs)
        # The traceback goes inside the object; left on the record, the worker's
        # formatter would append it after the JSON.
        record = InvocationRecord(name, level, pathname, lineno, msg, args, None, func, None)
        if exc_info:
            record.exception_text = "".join(traceback.format_exception(*exc_info)).rstrip()
        elif sinfo:
            record.exception_text = sinfo
        for key, value in labels.items():
            setattr(record, key, value)
        return record

    logging.setLogRecordFactory(tagged)


def label(name: str, value: str) -> None:
    current = _labels.get()
    if current is not None:
        current[name] = value


@contextmanager
def invocation(invocation_id: str, traceparent: str | None) -> Iterator[dict[str, str]]:
    """Everything logged inside belongs to this invocation. `traceparent`: the host's
    trace context for it (Context.trace_context.trace_parent), whose trace id
    Application Insights records as the operation id."""
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
