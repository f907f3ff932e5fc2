"""EventBridge schedule entry point: run the core's reconcile (the safety net under
webhooks and queues) and report what it did, in the logs and as EMF metrics."""

from __future__ import annotations

from typing import Any

from handlers_aws.observability import LazyHandler, observability
from handlers_aws.runtime import current


def _handle(event: Any, context: Any) -> dict[str, int]:
    from aws_lambda_powertools.metrics import MetricUnit

    from core.service.reconcile import reconcile

    runtime = current()
    runtime.refresh_if_due()
    report = reconcile(runtime.services).as_dict()
    obs = observability()
    for name in ("advanced", "dispatched", "gave_up", "unreadable", "errors"):
        obs.metrics.add_metric(
            name=f"Reconcile{name.title().replace('_', '')}",
            unit=MetricUnit.Count,
            value=report[name],
        )
    obs.logger.info("reconcile finished", extra={"report": report})
    return report


handler = LazyHandler(_handle)
