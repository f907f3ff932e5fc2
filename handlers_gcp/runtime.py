"""The instance's one FunctionHost, on the Google Cloud platform.

Settings come from the environment with GCP defaults under it (a Firestore store, /tmp
as the only writable directory). Secrets follow the core convention: NAME_SECRET_REF
names a Secret Manager secret, read through the core's caching policy; without a
reference the plain variable is used, which is what `gcloud functions deploy
--set-secrets NAME=secret:version` injects. Metrics are structured log lines (for
log-based metrics); log lines carry the invocation's trace and the request id.
Everything the triggers decide is in core.platform.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from urllib.parse import urlencode

from core.adapters.log_metrics import LogMetrics
from core.adapters.registry import open_adapter
from core.platform import ContainerHost
from core.ports import Secrets
from core.service.context import Metrics
from handlers_gcp import cloud_logging

GCP_DEFAULTS: dict[str, str] = {
    "IMGGO_FN_STORE_URL": "firestore://imggo",
    "IMGGO_FN_DATA_DIR": "/tmp/imggo-fn",  # noqa: S108 - the only writable place there
}
# Tests point Secret Manager's REST transport at a loopback stand-in with this.
SECRET_MANAGER_ENDPOINT_ENV = "IMGGO_FN_SECRET_MANAGER_ENDPOINT"  # noqa: S105 - a name


def gcp_env(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    return {**GCP_DEFAULTS, **(os.environ if environ is None else environ)}


class GcpPlatform:
    name = "gcp"

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        self._env = gcp_env(environ)

    def environment(self) -> Mapping[str, str]:
        return self._env

    def secret_store(self, env: Mapping[str, str]) -> Secrets:
        url = "gcp://" + env.get("GOOGLE_CLOUD_PROJECT", "")
        endpoint = env.get(SECRET_MANAGER_ENDPOINT_ENV)
        if endpoint:
            url += "?" + urlencode({"endpoint": endpoint})
        secrets: Secrets = open_adapter("secrets", url)
        return secrets

    def metrics(self) -> Metrics:
        return LogMetrics()

    def correlate(self, correlation_id: str) -> None:
        cloud_logging.label("request_id", correlation_id)


# The container's one host: `host()` in every handler of this package.
host = ContainerHost(GcpPlatform)


def reset_for_tests() -> None:
    """Forget the container's host (a test starting a new 'container')."""
    host.reset()
