"""The one Runtime of a warm Cloud Functions instance, built on first use.

Settings come from the environment with GCP defaults under them (a Firestore store,
/tmp as the only writable directory). Secrets follow the core convention
(`core.config.secret_refs`): NAME_SECRET_REF names a Secret Manager secret, read through
a TTL cache; without a reference the plain variable is used, which is what
`gcloud functions deploy --set-secrets NAME=secret:version` injects.

A rotated secret is picked up without a redeploy (core.runtime.Runtime rechecks the
settings once per TTL and rebuilds the services when a secret changed).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Mapping

from core.adapters.secrets import CachedSecrets, secret_refs_in, secret_store
from core.bootstrap import build_services
from core.config import Settings, secret_refs
from core.runtime import Runtime
from core.service.context import Services

log = logging.getLogger("imggo.gcp")

GCP_DEFAULTS: dict[str, str] = {
    "IMGGO_FN_STORE_URL": "firestore://imggo",
    "IMGGO_FN_DATA_DIR": "/tmp/imggo-fn",  # noqa: S108 - the only writable place there
}
# Tests point Secret Manager's REST transport at a loopback stand-in with this.
SECRET_MANAGER_ENDPOINT_ENV = "IMGGO_FN_SECRET_MANAGER_ENDPOINT"  # noqa: S105 - a name


def gcp_env(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    return {**GCP_DEFAULTS, **(os.environ if environ is None else environ)}


def secret_manager(
    env: Mapping[str, str], clock: Callable[[], float] = time.monotonic
) -> CachedSecrets | None:
    """Secret Manager behind the core's secret cache, or None when no secret is given by
    reference (then the Secret Manager client is never imported)."""
    if not secret_refs_in(env):
        return None
    from core.adapters.gcp.secret_manager import SecretManagerSecrets

    reader = SecretManagerSecrets(
        env.get("GOOGLE_CLOUD_PROJECT"), endpoint=env.get(SECRET_MANAGER_ENDPOINT_ENV)
    )
    return secret_store(reader, env, clock=clock)


class GcpRuntime:
    """Builds the Runtime from GCP's environment and secret store."""

    def __init__(
        self,
        environ: Mapping[str, str] | None = None,
        *,
        build: Callable[[Settings], Services] = build_services,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._env = gcp_env(environ)
        self._secrets = secret_manager(self._env, clock)
        self._source = secret_refs(self._env, self._secrets.get) if self._secrets else None
        recheck = self._secrets.ttl_s if self._secrets else 0.0
        self.runtime = Runtime(self.settings, build, recheck_s=recheck, clock=clock)

    def settings(self) -> Settings:
        return Settings.from_env(self._env, secret_source=self._source)

    def current(self) -> Runtime:
        """The Runtime for this invocation (rebuilt lazily if a referenced secret rotated)."""
        self.runtime.refresh_if_due()
        return self.runtime


_lock = threading.Lock()
_instance: GcpRuntime | None = None


def runtime() -> Runtime:
    """The warm instance's Runtime (built on the first invocation, never at import)."""
    global _instance
    if _instance is None:
        with _lock:
            if _instance is None:
                _instance = GcpRuntime()
    return _instance.current()


def reset_for_tests() -> None:
    global _instance
    with _lock:
        _instance = None
