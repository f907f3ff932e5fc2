"""Cloud Logging structured logs: one JSON object per line on stdout.

Cloud Functions (gen2) forwards stdout to Cloud Logging, which reads `severity`,
`message`, `logging.googleapis.com/trace` (`projects/P/traces/TRACE_ID`, joined to the
request's trace), `logging.googleapis.com/spanId`, `logging.googleapis.com/trace_sampled`
and `logging.googleapis.com/labels` from the object; every other key lands in
`jsonPayload`. A traceback is appended to `message`, where Error Reporting finds it.

The trace comes from the invocation: the W3C `traceparent` header (or CloudEvent
extension, which Eventarc sets), else Google's `X-Cloud-Trace-Context:
TRACE_ID/SPAN_ID;o=1`. It is held in a context variable for the invocation, so every log
line of that invocation, from any module, carries it.
"""

from __future__ import annotations

import json
import logging
import os
import re
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TextIO

_TRACEPARENT_RE = re.compile(r"([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})")
_CLOUD_TRACE_RE = re.compile(r"([0-9a-fA-F]{32})(?:/(\d{1,20}))?(?:;o=([01]))?")
_ZERO_TRACE = "0" * 32
_ZERO_SPAN = "0" * 16

# Python level -> Cloud Logging LogSeverity.
_SEVERITY = {
    logging.DEBUG: "DEBUG",
    logging.INFO: "INFO",
    logging.WARNING: "WARNING",
    logging.ERROR: "ERROR",
    logging.CRITICAL: "CRITICAL",
}
# LogRecord attributes that are not `extra=` fields.
_RECORD_ATTRS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
    "taskName",
}


@dataclass(frozen=True)
class TraceContext:
    """The W3C trace context of a request (traceparent), as Cloud Logging links it."""

    trace_id: str  # 32 lower-case hex digits
    span_id: str | None = None  # 16 hex digits
    sampled: bool = False


@dataclass(frozen=True)
class Invocation:
    """What every log line of one invocation carries: its trace and labels."""

    trace: TraceContext | None = None
    labels: dict[str, str] = field(default_factory=dict)


_current: ContextVar[Invocation | None] = ContextVar("imggo_gcp_invocation", default=None)


def parse_traceparent(value: str | None) -> TraceContext | None:
    found = _TRACEPARENT_RE.fullmatch((value or "").strip().lower())
    if not found:
        return None
    version, trace_id, span_id, flags = found.groups()
    if version == "ff" or trace_id == _ZERO_TRACE or span_id == _ZERO_SPAN:
        return None  # invalid per W3C Trace Context
    return TraceContext(trace_id, span_id, bool(int(flags, 16) & 1))


def parse_cloud_trace_context(value: str | None) -> TraceContext | None:
    found = _CLOUD_TRACE_RE.fullmatch((value or "").strip())
    if not found:
        return None
    trace_id, span, sampled = found.groups()
    trace_id = trace_id.lower()
    if trace_id == _ZERO_TRACE:
        return None
    span_id = None
    if span is not None and 0 < int(span) < 2**64:
        span_id = f"{int(span):016x}"  # decimal there, 16 hex digits in the log entry
    return TraceContext(trace_id, span_id, sampled == "1")


def trace_from(get: Callable[[str], str | None]) -> TraceContext | None:
    """From a header (or CloudEvent attribute) getter: traceparent wins."""
    return parse_traceparent(get("traceparent")) or parse_cloud_trace_context(
        get("x-cloud-trace-context")
    )


class CloudLoggingFormatter(logging.Formatter):
    def __init__(self, project: Callable[[], str | None] | None = None) -> None:
        super().__init__()
        self._project = project or (lambda: os.environ.get("GOOGLE_CLOUD_PROJECT"))

    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        if record.exc_info:
            message = f"{message}\n{self.formatException(record.exc_info)}"
        elif record.stack_info:
            message = f"{message}\n{self.formatStack(record.stack_info)}"
        entry: dict[str, Any] = {
            "severity": _SEVERITY.get(record.levelno, "DEFAULT"),
            "message": message,
            "time": datetime.fromtimestamp(record.created, tz=UTC).isoformat(),
            "logger": record.name,
        }
        for key, value in vars(record).items():
            if key not in _RECORD_ATTRS and not key.startswith("_"):
                entry.setdefault(key, value)
        invocation = _current.get()
        if invocation is not None:
            trace = invocation.trace
            project = self._project()
            if trace is not None and project:
                trace_name = f"projects/{project}/traces/{trace.trace_id}"
                entry["logging.googleapis.com/trace"] = trace_name
                if trace.span_id:
                    entry["logging.googleapis.com/spanId"] = trace.span_id
                entry["logging.googleapis.com/trace_sampled"] = trace.sampled
            if invocation.labels:
                entry["logging.googleapis.com/labels"] = dict(invocation.labels)
        return json.dumps(entry, default=str, ensure_ascii=False)


_CHATTY_LOGGERS = ("httpx", "httpcore", "urllib3", "google.auth", "grpc")
_access_log = logging.getLogger("imggo.gcp.http")


def log_http_request(
    method: str, path: str, status: int, latency_s: float, user_agent: str
) -> None:
    """One line per API call, which Cloud Logging shows as the entry's HTTP request."""
    _access_log.info(
        "%s %s %d",
        method,
        path,
        status,
        extra={
            "httpRequest": {
                "requestMethod": method,
                "requestUrl": path,
                "status": status,
                "latency": f"{latency_s:.3f}s",
                "userAgent": user_agent,
            }
        },
    )


_install_lock = threading.Lock()
_installed: logging.Handler | None = None
_previous_levels: dict[str, int] = {}


def install(stream: TextIO | None = None, level: str | None = None) -> logging.Handler:
    """Route every log record to stdout as Cloud Logging JSON. Idempotent: a warm
    instance calls it on every invocation and it does its work once."""
    global _installed
    with _install_lock:
        if _installed is None:
            handler = logging.StreamHandler(stream or sys.stdout)
            handler.setFormatter(CloudLoggingFormatter())
            root = logging.getLogger()
            root.addHandler(handler)
            root.setLevel((level or os.environ.get("IMGGO_FN_LOG_LEVEL") or "INFO").upper())
            # HTTP clients log every request at INFO: a line per ImgGo call is noise
            # (and costs money) in Cloud Logging. Their warnings still show.
            for chatty in _CHATTY_LOGGERS:
                logger = logging.getLogger(chatty)
                _previous_levels[chatty] = logger.level
                logger.setLevel(max(root.level, logging.WARNING))
            _installed = handler
        return _installed


@contextmanager
def invocation(
    trace: TraceContext | None, labels: dict[str, str] | None = None
) -> Iterator[Invocation]:
    """Everything logged inside belongs to this invocation (its trace, its labels)."""
    install()
    current = Invocation(trace, {k: v for k, v in (labels or {}).items() if v})
    token = _current.set(current)
    try:
        yield current
    finally:
        _current.reset(token)


def label(name: str, value: str) -> None:
    """Add a label to the current invocation's log lines (no-op outside one)."""
    current = _current.get()
    if current is not None and value:
        current.labels[name] = value


def uninstall() -> None:
    """Undo `install` (tests that run the handlers in the pytest process)."""
    global _installed
    with _install_lock:
        if _installed is not None:
            logging.getLogger().removeHandler(_installed)
            _installed = None
        for name, level in _previous_levels.items():
            logging.getLogger(name).setLevel(level)
        _previous_levels.clear()
