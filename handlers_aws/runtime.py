"""The container's one Runtime: settings from the environment and the secret stores,
services built on first use and kept while the container is warm.

Secrets come by reference (core.config.secret_refs) from SSM or Secrets Manager
(core.adapters.aws.secrets), behind the core's one caching policy
(core.adapters.secrets.secret_store). Rotation: every IMGGO_FN_SECRETS_TTL_S seconds
(one GetParameters call) the settings are read again; if a secret changed, the services
are rebuilt so the new ImgGo key or webhook secret takes effect without waiting for a
new container.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping

from core.adapters.aws.secrets import AwsSecrets
from core.adapters.secrets import secret_store
from core.config import Settings, secret_refs
from core.runtime import Runtime
from core.service.context import Services
from handlers_aws.observability import EmfMetrics, observability


class AwsRuntime:
    def __init__(self, env: Mapping[str, str] | None = None) -> None:
        self._env = os.environ if env is None else env
        self._secrets = secret_store(AwsSecrets(), self._env)
        self.runtime = Runtime(self.settings, self._build, recheck_s=self._secrets.ttl_s)

    def settings(self) -> Settings:
        return Settings.from_env(self._env, secret_source=secret_refs(self._env, self._secrets.get))

    @staticmethod
    def _build(settings: Settings) -> Services:
        from core.bootstrap import Overrides, build_services

        return build_services(settings, Overrides(metrics=EmfMetrics(observability().metrics)))

    @property
    def services(self) -> Services:
        return self.runtime.services

    @property
    def builds(self) -> int:
        return self.runtime.builds

    def refresh_if_due(self) -> None:
        self.runtime.refresh_if_due()


_current: AwsRuntime | None = None
_lock = threading.Lock()


def current() -> AwsRuntime:
    """The container's runtime (constructed on first call; builds nothing yet)."""
    global _current
    with _lock:
        if _current is None:
            _current = AwsRuntime()
        return _current


def reset_for_tests() -> None:
    """Forget the container's runtime (a test starting a new 'container')."""
    global _current
    with _lock:
        if _current is not None and _current.runtime.built:
            _current.runtime.reset()
        _current = None
