"""The one place core imports boto3: clients built from one shared session.

Why one session: a boto3 Session loads the endpoint and service models once, and every
client made from it reuses them, so the second and third client of a cold start cost a
few milliseconds instead of tens. Session.client() is not thread-safe, hence the lock.

Endpoints: when no endpoint is given, botocore reads the standard environment itself
(`AWS_ENDPOINT_URL_DYNAMODB`, `AWS_ENDPOINT_URL_S3`, `AWS_ENDPOINT_URL_SQS`, or
`AWS_ENDPOINT_URL` for all), which is how tests point everything at a local moto server.

Limits: every client gets explicit connect and read timeouts and a bounded number of
attempts from core.adapters.outages.CallLimits. botocore's defaults (60 s reads, and
a stuck connection retried on top) would spend a whole Lambda invocation on one call;
what is still failing after the attempts is mapped by core.adapters.aws.errors.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from core.adapters.aws.errors import error_code
from core.adapters.outages import DEFAULT_LIMITS, CallLimits

__all__ = ["BotoCoreError", "ClientError", "client", "error_code", "parse_options", "session"]

_session: boto3.session.Session | None = None
_lock = threading.Lock()


def _config(limits: CallLimits) -> dict[str, Any]:
    # `standard` retry mode adds jittered backoff and retries throttling, which is what
    # DynamoDB on-demand needs; total_max_attempts counts the first try too.
    return {
        "connect_timeout": limits.connect_s,
        "read_timeout": limits.read_s,
        "retries": {"mode": "standard", "total_max_attempts": limits.attempts},
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
    limits: CallLimits = DEFAULT_LIMITS,
    **config: Any,
) -> Any:
    """A boto3 client for `service` from the shared session, with `limits`' timeouts
    and attempts. `config` entries are further botocore Config options (e.g.
    `max_pool_connections`, `s3`)."""
    merged = Config(**{**_config(limits), **config})
    shared = session()
    with _lock:
        return shared.client(
            service,  # type: ignore[call-overload]  # service is a runtime string
            endpoint_url=endpoint_url or None,
            region_name=region or None,
            config=merged,
        )


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
