"""The one place core imports boto3: clients built from one shared session.

Why one session: a boto3 Session loads the endpoint and service models once, and every
client made from it reuses them, so the second and third client of a cold start cost a
few milliseconds instead of tens. Session.client() is not thread-safe, hence the lock.

Endpoints: when no endpoint is given, botocore reads the standard environment itself
(`AWS_ENDPOINT_URL_DYNAMODB`, `AWS_ENDPOINT_URL_S3`, `AWS_ENDPOINT_URL_SQS`, or
`AWS_ENDPOINT_URL` for all), which is how tests point everything at a local moto server.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

__all__ = ["BotoCoreError", "ClientError", "client", "error_code", "parse_options", "session"]

_session: boto3.session.Session | None = None
_lock = threading.Lock()

# Short timeouts: a Lambda invocation has a deadline, and botocore's defaults (60 s)
# would spend all of it waiting on one stuck connection. `standard` retry mode adds
# jittered backoff and retries throttling, which is what DynamoDB on-demand needs.
_DEFAULTS: dict[str, Any] = {
    "connect_timeout": 3,
    "read_timeout": 10,
    "retries": {"mode": "standard", "max_attempts": 4},
    "tcp_keepalive": True,
}


def session() -> boto3.session.Session:
    global _session
    with _lock:
        if _session is None:
            _session = boto3.session.Session()
        return _session


def client(
    service: str,
    *,
    endpoint_url: str | None = None,
    region: str | None = None,
    **config: Any,
) -> Any:
    """A boto3 client for `service` from the shared session. `config` entries override
    the botocore Config defaults above (e.g. `max_pool_connections`, `s3`)."""
    merged = Config(**{**_DEFAULTS, **config})
    shared = session()
    with _lock:
        return shared.client(
            service,  # type: ignore[call-overload]  # service is a runtime string
            endpoint_url=endpoint_url or None,
            region_name=region or None,
            config=merged,
        )


def error_code(exc: BaseException) -> str:
    """The AWS error code of a ClientError ('ConditionalCheckFailedException', ...)."""
    if isinstance(exc, ClientError):
        return str(exc.response.get("Error", {}).get("Code", ""))
    return ""


def parse_options(query: str, allowed: Mapping[str, str]) -> dict[str, str]:
    """`endpoint=...&region=...` from an adapter URL's query string. Unknown names are
    refused (a typo must not silently fall back to a default); `allowed` maps each name
    to a description used in the error message."""
    options: dict[str, str] = {}
    for name, value in parse_qsl(query, keep_blank_values=False):
        if name not in allowed:
            known = ", ".join(f"{k} ({v})" for k, v in allowed.items())
            raise ValueError(f"unknown option {name!r}; known options: {known}")
        options[name] = value
    return options
