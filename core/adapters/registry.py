"""The one adapter registry: a URL's scheme picks the adapter, for every kind of port.

    kind      scheme          adapter (imported only when its scheme is used)
    store     memory sqlite dynamodb firestore azuretables
    blobs     memory file sqlite s3 gs azureblob
    queue     sqs pubsub azurequeue  (no URL, or local://: inline / the in-process pool)
    secrets   env aws gcp azurekv  (the reader a platform's NAME_SECRET_REF names point into)

Each entry is "module:callable", where the callable takes the URL (and keyword
options such as the store's `clock`) and returns the adapter. A function deployed on
one cloud therefore never imports another cloud's SDK, and a new backend - a new cloud -
is one line per port here, next to its adapter module.
"""

from __future__ import annotations

import importlib
from typing import Any, Literal

Kind = Literal["store", "blobs", "queue", "secrets"]

ADAPTERS: dict[Kind, dict[str, str]] = {
    "store": {
        "memory": "core.adapters.stores.memory:from_url",
        "sqlite": "core.adapters.stores.sqlite:SqliteJobStore.from_url",
        "dynamodb": "core.adapters.stores.dynamodb:DynamoDbJobStore.from_url",
        "firestore": "core.adapters.stores.firestore:FirestoreJobStore.from_url",
        "azuretables": "core.adapters.azure.table_store:AzureTableJobStore.from_url",
    },
    "blobs": {
        "memory": "core.adapters.blobs:memory_from_url",
        "file": "core.adapters.blobs:file_from_url",
        "sqlite": "core.adapters.sqlite.blobs:from_url",
        "s3": "core.adapters.aws.s3_blobs:from_url",
        "gs": "core.adapters.gcp.gcs_blobs:from_url",
        "azureblob": "core.adapters.azure.blob_store:from_url",
    },
    "queue": {
        "sqs": "core.adapters.aws.sqs_queue:from_url",
        "pubsub": "core.adapters.gcp.pubsub_queue:from_url",
        "azurequeue": "core.adapters.azure.storage_queue:from_url",
    },
    "secrets": {
        "env": "core.adapters.secrets:env_from_url",
        "aws": "core.adapters.aws.secrets:from_url",
        "gcp": "core.adapters.gcp.secret_manager:from_url",
        "azurekv": "core.adapters.azure.keyvault_secrets:from_url",
    },
}

SETTING = {
    "store": "IMGGO_FN_STORE_URL",
    "blobs": "IMGGO_FN_BLOB_URL",
    "queue": "IMGGO_FN_QUEUE_URL",
    "secrets": "the platform's secret store",
}


def schemes(kind: Kind) -> tuple[str, ...]:
    return tuple(ADAPTERS[kind])


def open_adapter(kind: Kind, url: str, **options: Any) -> Any:
    """The `kind` adapter `url` names. ValueError for an unknown scheme or a malformed
    URL; the message names the scheme only, never the URL (it may carry a credential)."""
    scheme, sep, _ = url.partition("://")
    spec = ADAPTERS[kind].get(scheme.lower()) if sep else None
    if spec is None:
        shown = f"{scheme}://" if sep else "a URL without a scheme"
        supported = ", ".join(f"{s}://" for s in ADAPTERS[kind])
        raise ValueError(f"unsupported {SETTING[kind]} ({shown}); supported schemes: {supported}")
    module_name, _, attribute = spec.partition(":")
    target: Any = importlib.import_module(module_name)
    for part in attribute.split("."):
        target = getattr(target, part)
    return target(url, **options)
