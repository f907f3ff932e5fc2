"""The container's one FunctionHost, on the AWS platform: settings from the Lambda
environment, secrets by reference from SSM Parameter Store or Secrets Manager
(core.adapters.aws.secrets, behind the core's caching policy), metrics as CloudWatch EMF
through Powertools, log lines tagged with Powertools' correlation id. Everything the
triggers decide (verdicts, rotation, cold-start and 5xx metrics) is in core.platform.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping

from core.adapters.registry import open_adapter
from core.platform import ContainerHost
from core.ports import Secrets
from core.service.context import Metrics
from handlers_aws.observability import EmfMetrics, observability


class AwsPlatform:
    name = "aws"

    def __init__(self, env: Mapping[str, str] | None = None) -> None:
        self._env = os.environ if env is None else env

    def environment(self) -> Mapping[str, str]:
        return self._env

    def secret_store(self, env: Mapping[str, str]) -> Secrets:
        secrets: Secrets = open_adapter("secrets", "aws://")
        return secrets

    def metrics(self) -> Metrics:
        return EmfMetrics(observability().metrics)

    def correlate(self, correlation_id: str) -> None:
        observability().logger.set_correlation_id(correlation_id)


# The container's one host: `host()` in every handler of this package.
host = ContainerHost(AwsPlatform)


def reset_for_tests() -> None:
    """Forget the container's host (a test starting a new 'container')."""
    host.reset()


def time_left(context: object) -> Callable[[], float] | None:
    """Seconds the invocation has left, read from the Lambda context when asked (None
    for a context that cannot say, as in some tests)."""
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    if not callable(remaining):
        return None
    return lambda: float(remaining()) / 1000.0
