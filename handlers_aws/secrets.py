"""Secrets from SSM Parameter Store (SecureString) or Secrets Manager, through
Powertools Parameters, cached for a TTL.

The core's one convention (core.config.secret_refs) names each secret in the
environment: IMGGO_API_KEY_SECRET_REF, IMGGO_WEBHOOK_SECRET_SECRET_REF,
IMGGO_FN_API_KEYS_SECRET_REF. A reference is

    /imggo/api-key                                   an SSM parameter name
    arn:aws:secretsmanager:REGION:ACCOUNT:secret:... a Secrets Manager secret
    secretsmanager:NAME                              a Secrets Manager secret by name

Values are cached by Powertools for IMGGO_FN_SECRETS_TTL_S seconds (default 300), so a
warm container asks again at most that often and still picks up a rotation. All SSM
references of the function are read together (Powertools' get_parameters_by_name: one
GetParameters call with decryption) rather than one GetParameter each; Secrets Manager
references go through get_secret.
Values are never logged; only reference names appear in errors.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping

from core.config import SECRET_NAMES, SECRET_REF_SUFFIX, secrets_ttl_s

SECRETS_MANAGER_PREFIX = "secretsmanager:"


class SecretNotFoundError(RuntimeError):
    """A configured secret reference could not be read (missing, or not allowed)."""


def is_secrets_manager(ref: str) -> bool:
    return ref.startswith(SECRETS_MANAGER_PREFIX) or ":secretsmanager:" in ref.split("/", 1)[0]


def refs_in(env: Mapping[str, str]) -> list[str]:
    """Every secret reference the environment names, in SECRET_NAMES order."""
    return [env[n + SECRET_REF_SUFFIX] for n in SECRET_NAMES if env.get(n + SECRET_REF_SUFFIX)]


class AwsSecrets:
    def __init__(self, env: Mapping[str, str] | None = None) -> None:
        env = os.environ if env is None else env
        self.ttl_s = int(secrets_ttl_s(env))
        # Every SSM reference of this function, read together: one GetParameters call
        # per TTL instead of one GetParameter per secret.
        self._ssm_refs = sorted({r for r in refs_in(env) if not is_secrets_manager(r)})
        self._lock = threading.Lock()

    def _provide(self, kind: str) -> None:
        """Give Powertools' default provider of `kind` a client from our shared boto3
        session (one model/endpoint load for every client of the container). Checked on
        every call: parameters.clear_caches() empties the registry."""
        from aws_lambda_powertools.utilities import parameters
        from aws_lambda_powertools.utilities.parameters.constants import DEFAULT_PROVIDERS

        from core.adapters.aws import clients

        with self._lock:
            if kind in DEFAULT_PROVIDERS:
                return
            if kind == "ssm":
                DEFAULT_PROVIDERS[kind] = parameters.SSMProvider(boto3_client=clients.client("ssm"))
            else:
                DEFAULT_PROVIDERS[kind] = parameters.SecretsProvider(
                    boto3_client=clients.client("secretsmanager")
                )

    def fetch(self, ref: str) -> str | None:
        """The secret's value (cached up to the TTL). Raises SecretNotFoundError when a
        configured reference cannot be read: a misconfigured function must fail loudly,
        not run without its API key."""
        from aws_lambda_powertools.utilities import parameters

        value: object
        try:
            if is_secrets_manager(ref):
                self._provide("secretsmanager")
                value = parameters.get_secret(
                    ref.removeprefix(SECRETS_MANAGER_PREFIX), max_age=self.ttl_s
                )
            else:
                self._provide("ssm")
                names = self._ssm_refs if ref in self._ssm_refs else [ref]
                value = parameters.get_parameters_by_name(
                    parameters={name: {} for name in names}, decrypt=True, max_age=self.ttl_s
                )[ref]
        except parameters.GetParameterError as exc:
            raise SecretNotFoundError(f"cannot read secret {ref}: {exc}") from None
        return _as_text(value)


def _as_text(value: object) -> str | None:
    if value is None:
        return None
    # get_secret hands back bytes for a binary secret.
    return value.decode() if isinstance(value, bytes) else str(value)
