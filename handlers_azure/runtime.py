"""The instance's one FunctionHost, on the Azure platform.

Settings come from the app settings (the process environment) with Azure defaults under
it: the Table Storage store, the Queue Storage work queue, the Blob container of the
uploads, /tmp as the writable directory. Secrets: the documented default is a Key Vault
reference in the app setting itself (`@Microsoft.KeyVault(SecretUri=...)`), resolved by
the platform into a plain variable; for rotation without a restart, NAME_SECRET_REF
names a Key Vault secret read directly (core.adapters.azure.keyvault_secrets) behind the core's
caching policy. Metrics are structured log lines (Azure Monitor log queries); log lines
carry the invocation id, the operation id (from traceparent) and the request id.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping

from core.adapters.log_metrics import LogMetrics
from core.adapters.registry import open_adapter
from core.platform import ContainerHost
from core.ports import Secrets
from core.service.context import Metrics
from handlers_azure import monitor

QUEUE_NAME = "IMGGO_FN_QUEUE_NAME"
UPLOAD_CONTAINER = "IMGGO_FN_UPLOAD_CONTAINER"
KEY_VAULT_URL = "IMGGO_FN_KEY_VAULT_URL"

AZURE_DEFAULTS: dict[str, str] = {
    QUEUE_NAME: "imggo-work",
    UPLOAD_CONTAINER: "imggo-uploads",
    "IMGGO_FN_STORE_URL": "azuretables://imggojobs",
    "IMGGO_FN_DATA_DIR": "/tmp/imggo-fn",  # noqa: S108 - the only writable place there
}


def azure_env(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    env = {**AZURE_DEFAULTS, **(os.environ if environ is None else environ)}
    # One name per resource: the trigger bindings read QUEUE_NAME / UPLOAD_CONTAINER, the
    # adapters their URLs; both follow the same setting unless a URL is given.
    env.setdefault("IMGGO_FN_QUEUE_URL", f"azurequeue://{env[QUEUE_NAME]}")
    env.setdefault("IMGGO_FN_BLOB_URL", f"azureblob://{env[UPLOAD_CONTAINER]}")
    return env


class AzurePlatform:
    name = "azure"

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        self._env = azure_env(environ)

    def environment(self) -> Mapping[str, str]:
        return self._env

    def secret_store(self, env: Mapping[str, str]) -> Secrets:
        vault = env.get(KEY_VAULT_URL, "")
        if not vault:
            raise ValueError(
                f"NAME_SECRET_REF needs {KEY_VAULT_URL} (https://<vault>.vault.azure.net)"
            )
        secrets: Secrets = open_adapter("secrets", "azurekv://" + vault.split("://", 1)[-1])
        return secrets

    def metrics(self) -> Metrics:
        return LogMetrics()

    def correlate(self, correlation_id: str) -> None:
        monitor.label("request_id", correlation_id)


# The container's one host: `host()` in every handler of this package.
host = ContainerHost(AzurePlatform)


def reset_for_tests(*, clock: Callable[[], float] | None = None) -> None:
    """Forget the container's host (a test starting a new 'container', optionally with
    its own monotonic clock: core.platform.ContainerHost.reset)."""
    host.reset(clock=clock)
