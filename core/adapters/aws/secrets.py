"""Secrets from SSM Parameter Store (SecureString) and Secrets Manager.

A reference (the value of IMGGO_API_KEY_SECRET_REF and friends, core.config) is

    /imggo/api-key                                   an SSM parameter name (or its ARN)
    arn:aws:secretsmanager:REGION:ACCOUNT:secret:... a Secrets Manager secret
    secretsmanager:NAME                              a Secrets Manager secret by name

A reference to nothing reads as None. Put the reader behind
core.adapters.secrets.secret_store, the one caching policy: it reads the function's
references together, so all its SSM parameters come in one GetParameters call (with
decryption) per TTL, rather than one GetParameter each. Secrets Manager secrets are one
GetSecretValue each (BatchGetSecretValue would save at most two calls per TTL, for one
more IAM permission in both deploy descriptors).

The clients come from core.adapters.aws.clients (the shared session, `limits`' timeouts
and attempts), made - and boto3 imported - on the first read; what still fails after
them is UnavailableError `store_unavailable`. Values are never logged: botocore logs
every response body at DEBUG, so while this reader is inside a call those records are
dropped (`_QuietBodies`). Only reference names appear in errors.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from core.adapters.aws.errors import error_code, unavailable_on_outage
from core.adapters.outages import DEFAULT_LIMITS, CallLimits

SECRETS_MANAGER_PREFIX = "secretsmanager:"
GET_PARAMETERS_MAX = 10  # names per GetParameters call
_NOT_FOUND = "ResourceNotFoundException"
# The loggers botocore writes request and response bodies to, at DEBUG.
_BODY_LOGGERS = ("botocore.parsers", "botocore.endpoint", "botocore.hooks")


def is_secrets_manager(ref: str) -> bool:
    return ref.startswith(SECRETS_MANAGER_PREFIX) or ":secretsmanager:" in ref.split("/", 1)[0]


class _QuietBodies(logging.Filter):
    """Drops botocore's DEBUG records on the threads that are reading a secret."""

    def __init__(self) -> None:
        super().__init__()
        self.reading = threading.local()

    def filter(self, record: logging.LogRecord) -> bool:
        return not getattr(self.reading, "active", False)


_quiet = _QuietBodies()


def _install_quiet() -> None:
    for name in _BODY_LOGGERS:
        logger = logging.getLogger(name)
        if _quiet not in logger.filters:
            logger.addFilter(_quiet)


@contextmanager
def _reading() -> Iterator[None]:
    _quiet.reading.active = True
    try:
        yield
    finally:
        _quiet.reading.active = False


class AwsSecrets:
    """`Secrets` (and `BulkSecrets`) whose names are SSM or Secrets Manager references."""

    def __init__(
        self,
        *,
        endpoint_url: str | None = None,
        region: str | None = None,
        limits: CallLimits = DEFAULT_LIMITS,
    ) -> None:
        self._endpoint_url = endpoint_url
        self._region = region
        self._limits = limits
        self._clients: dict[str, Any] = {}
        self._lock = threading.Lock()
        _install_quiet()

    def get(self, name: str) -> str | None:
        return self.get_many([name])[name]

    def get_many(self, names: Sequence[str]) -> dict[str, str | None]:
        found: dict[str, str | None] = {}
        parameters = [n for n in dict.fromkeys(names) if not is_secrets_manager(n)]
        with _reading():
            for start in range(0, len(parameters), GET_PARAMETERS_MAX):
                found.update(self._parameters(parameters[start : start + GET_PARAMETERS_MAX]))
            for name in names:
                if is_secrets_manager(name) and name not in found:
                    found[name] = self._secret(name)
        return {name: found.get(name) for name in names}

    def _parameters(self, names: list[str]) -> dict[str, str | None]:
        with unavailable_on_outage("SSM"):
            response = self._client("ssm").get_parameters(Names=names, WithDecryption=True)
        found: dict[str, str | None] = {}
        for parameter in response.get("Parameters", []):
            selector = parameter.get("Selector", "")  # name:3 or name:label
            for spelling in (parameter.get("Name"), parameter.get("ARN")):
                if spelling:
                    found[spelling + selector] = str(parameter["Value"])
        # Names in InvalidParameters do not exist: None, like any name not found.
        return {name: found.get(name) for name in names}

    def _secret(self, ref: str) -> str | None:
        with unavailable_on_outage("Secrets Manager"):
            try:
                response = self._client("secretsmanager").get_secret_value(
                    SecretId=ref.removeprefix(SECRETS_MANAGER_PREFIX)
                )
            except Exception as exc:
                if error_code(exc) == _NOT_FOUND:
                    return None
                raise
        if "SecretString" in response:
            return str(response["SecretString"])
        binary: bytes = response["SecretBinary"]
        return binary.decode()

    def _client(self, service: str) -> Any:
        # boto3 is imported here, not with the module: the runtime builds this reader on
        # every cold start, also for the ones that only answer /health.
        from core.adapters.aws import clients

        with self._lock:
            if service not in self._clients:
                self._clients[service] = clients.client(
                    service,
                    endpoint_url=self._endpoint_url,
                    region=self._region,
                    limits=self._limits,
                )
            return self._clients[service]

    def close(self) -> None:
        with self._lock:
            made, self._clients = self._clients, {}
        for client in made.values():
            client.close()

    def __repr__(self) -> str:
        return "AwsSecrets()"


__all__ = ["SECRETS_MANAGER_PREFIX", "AwsSecrets", "is_secrets_manager"]


def from_url(url: str) -> AwsSecrets:
    """`aws://`: SSM Parameter Store and Secrets Manager in the function's region (the
    reference's form picks the service, see `is_secrets_manager`)."""
    return AwsSecrets()
