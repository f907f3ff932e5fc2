"""Powertools Logger, Metrics (CloudWatch EMF) and, when asked for, Tracer.

All three are built on first use, not at import time. `instrument()` wraps an entry
point once: Lambda context and correlation id in every log line (the core's `imggo.*`
loggers included), metrics (and a ColdStart count on a container's first invocation)
flushed as one EMF document at the end of each invocation,
and X-Ray tracing only when IMGGO_FN_TRACING=true (aws-xray-sdk must then be shipped:
it is not in the default artifact, so an untraced function never imports it).
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from aws_lambda_powertools import Logger, Metrics

DEFAULT_SERVICE = "imggo-functions"
DEFAULT_NAMESPACE = "ImgGo"
CORE_LOGGER = "imggo"  # parent of the core's imggo.http, imggo.service, ... loggers

Handler = Callable[[Any, Any], Any]


@dataclass(frozen=True, eq=False)
class Observability:
    """The Powertools logger, metrics and (when tracing is on) tracer of this container."""

    logger: Logger
    metrics: Metrics
    tracer: Any | None  # aws_lambda_powertools.Tracer when tracing is on


_built: Observability | None = None
_lock = threading.Lock()


def observability() -> Observability:
    global _built
    with _lock:
        if _built is None:
            _built = _build()
        return _built


def _tracing_enabled() -> bool:
    return os.environ.get("IMGGO_FN_TRACING", "").lower() in ("1", "true", "yes")


def _build() -> Observability:
    from aws_lambda_powertools import Logger, Metrics
    from aws_lambda_powertools.logging.utils import copy_config_to_registered_loggers

    service = os.environ.get("POWERTOOLS_SERVICE_NAME") or DEFAULT_SERVICE
    logger = Logger(service=service)
    # The core logs through stdlib loggers under "imggo"; give them Powertools' JSON
    # formatter (with the correlation id) instead of the runtime's plain one.
    logging.getLogger(CORE_LOGGER)
    copy_config_to_registered_loggers(source_logger=logger, include={CORE_LOGGER})
    namespace = os.environ.get("POWERTOOLS_METRICS_NAMESPACE") or DEFAULT_NAMESPACE
    metrics = Metrics(namespace=namespace, service=service)
    tracer = None
    if _tracing_enabled():
        from aws_lambda_powertools import Tracer

        tracer = Tracer(service=service)
    return Observability(logger=logger, metrics=metrics, tracer=tracer)


def instrument(handler: Handler) -> Handler:
    """`handler` with Powertools' decorators applied (call once per entry point)."""
    obs = observability()
    metrics = obs.metrics
    cold = [True]

    def with_metrics(event: Any, context: Any) -> Any:
        if cold[0]:
            from aws_lambda_powertools.metrics import MetricUnit

            cold[0] = False
            metrics.add_metric(name="ColdStart", unit=MetricUnit.Count, value=1)
        try:
            return handler(event, context)
        finally:
            # Powertools' log_metrics does this too, but warns on every invocation that
            # counted nothing (GET /health); flushing only a non-empty set does not.
            if metrics.metric_set:
                metrics.flush_metrics()

    wrapped: Handler = with_metrics
    if obs.tracer is not None:
        wrapped = obs.tracer.capture_lambda_handler(wrapped)
    instrumented: Handler = obs.logger.inject_lambda_context(wrapped, clear_state=True)
    return instrumented


class LazyHandler:
    """A Lambda entry point whose Powertools wrapping is built on the first invocation
    (module import stays cheap: nothing is constructed until Lambda calls us)."""

    def __init__(self, handler: Handler) -> None:
        self._handler = handler
        self._wrapped: Handler | None = None
        self._lock = threading.Lock()

    def __call__(self, event: Any, context: Any) -> Any:
        if self._wrapped is None:
            with self._lock:
                if self._wrapped is None:
                    self._wrapped = instrument(self._handler)
        return self._wrapped(event, context)


class EmfMetrics:
    """The core's Metrics port on Powertools Metrics: counts and timings become EMF
    metrics (JobsSubmitted, JobsSucceeded, JobsFailed, DedupeHits, ImggoSubmitLatency)."""

    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics
        self._lock = threading.Lock()  # the metric set is a plain dict; batch threads share it

    def count(self, name: str, value: int = 1) -> None:
        from aws_lambda_powertools.metrics import MetricUnit

        with self._lock:
            self._metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)

    def timing(self, name: str, milliseconds: float) -> None:
        from aws_lambda_powertools.metrics import MetricUnit

        with self._lock:
            self._metrics.add_metric(name=name, unit=MetricUnit.Milliseconds, value=milliseconds)
