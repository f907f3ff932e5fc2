"""How every Azure adapter reaches its storage account, with bounded calls.

One account serves the job table, the work queue and the upload container. Where its
address and credential come from, in order:

- `AZURE_STORAGE_CONNECTION_STRING`: a connection string (Azurite, a laptop, tests);
- else `AzureWebJobsStorage__accountName` (the identity-based connection the Functions
  platform itself uses, set by infra/main.bicep) or `AZURE_STORAGE_ACCOUNT`: the account's
  public endpoints with `DefaultAzureCredential` (the app's managed identity). No key is
  ever configured in that case.

Limits: azure-core's defaults (a 300 s read timeout and 3 retries with backoff up to 2
minutes) would spend a whole invocation on one call; every client here gets the
connect/read timeouts and attempts of core.adapters.outages.CallLimits, and what still
fails is mapped by core.adapters.azure.errors. Which limits: the job table those of
every networked job store (core.adapters.stores._common.STORE_LIMITS); the queue, the
blob container and Key Vault DEFAULT_LIMITS, as on the other clouds; the managed
identity's token requests STORE_LIMITS too, since every call of the others may wait
for one (its default, ten retries of 300 s reads, would outlast the function). Each
stays under its limits' `worst_case_s`, far inside host.json's functionTimeout.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Mapping
from typing import Any

from core.adapters.outages import DEFAULT_LIMITS, CallLimits
from core.adapters.stores._common import STORE_LIMITS

CONNECTION_SETTING = "AZURE_STORAGE_CONNECTION_STRING"
ACCOUNT_SETTINGS = ("AzureWebJobsStorage__accountName", "AZURE_STORAGE_ACCOUNT")


def call_options(limits: CallLimits = DEFAULT_LIMITS) -> dict[str, Any]:
    """azure-core pipeline keywords bounding one call: timeouts, tries, backoff (Tables
    and Key Vault use azure-core's RetryPolicy, which reads these). `timeout` is the
    policy's deadline for starting another try (its default is a week): without it a
    store that accepts connections and never answers holds a call for every try's full
    read timeout, longer than an HTTP request may wait for its 503."""
    return {
        "connection_timeout": limits.connect_s,
        "read_timeout": limits.read_s,
        "retry_total": limits.attempts - 1,  # retries, not tries
        "retry_backoff_factor": 0.4,
        "retry_backoff_max": 2,
        "timeout": limits.retry_s,
    }


def storage_options(limits: CallLimits, linear_retry: Any) -> dict[str, Any]:
    """The same bounds for the Queue and Blob clients, whose own retry policy waits 15 s
    (then 3**n s more) between tries by default: a 1 s linear backoff instead.
    `linear_retry` is the package's LinearRetry class (each storage package has its own)."""
    return {
        "connection_timeout": limits.connect_s,
        "read_timeout": limits.read_s,
        "retry_policy": linear_retry(
            backoff=1, random_jitter_range=0, retry_total=limits.attempts - 1
        ),
    }


@functools.cache
def credential(limits: CallLimits = STORE_LIMITS) -> Any:
    """The managed identity (DefaultAzureCredential), built once per container, its
    token requests bounded by `limits` (DefaultAzureCredential hands the pipeline
    keywords on to the credential it tries)."""
    from azure.identity import DefaultAzureCredential

    return DefaultAzureCredential(**call_options(limits))


def account(service: str, env: Mapping[str, str] | None = None) -> tuple[str, Any]:
    """(connection string, None) or (endpoint URL, credential) for `service` ("blob",
    "queue", "table"). ValueError when the environment names no account."""
    source = os.environ if env is None else env
    connection = source.get(CONNECTION_SETTING)
    if connection:
        return connection, None
    for name in ACCOUNT_SETTINGS:
        name_value = source.get(name)
        if name_value:
            return f"https://{name_value}.{service}.core.windows.net", credential()
    raise ValueError(
        f"no storage account: set {CONNECTION_SETTING} or {' or '.join(ACCOUNT_SETTINGS)}"
    )


__all__ = [
    "ACCOUNT_SETTINGS",
    "CONNECTION_SETTING",
    "account",
    "call_options",
    "credential",
    "storage_options",
]
