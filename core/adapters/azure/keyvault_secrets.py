"""Secrets from Azure Key Vault, for `core.config.secret_refs`: `azurekv://VAULT_HOST`.

A reference (the value of IMGGO_API_KEY_SECRET_REF and friends) names a secret in the
vault: `NAME` (its current version) or `NAME/VERSION`. A secret that does not exist
reads as None, which core.config.secret_refs refuses to start with; one the identity may
not read (403) is raised as it is: a deployment mistake, not an outage.

This is the reader behind `NAME_SECRET_REF` (handlers_azure.runtime): unlike an app
setting that is a Key Vault reference (`@Microsoft.KeyVault(...)`, resolved by the
platform and refreshed within about a day), a secret read here is seen rotated once
core.adapters.secrets' TTL has passed. Authentication is the app's managed identity
(DefaultAzureCredential, core.adapters.azure.clients), which needs "Key Vault Secrets
User" on the vault. Every call is bounded by `limits` (core.adapters.azure.clients.
call_options); what still fails transiently is UnavailableError `store_unavailable`
(core.adapters.azure.errors). The SDK is imported and the client built on the first read.
Values are never logged and never part of a repr.
"""

from __future__ import annotations

import re
import threading
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from core.adapters.azure import clients
from core.adapters.azure.errors import unavailable_on_outage
from core.adapters.outages import DEFAULT_LIMITS, CallLimits

if TYPE_CHECKING:
    from azure.keyvault.secrets import SecretClient

BACKEND = "Key Vault"
# Key Vault's rules: a secret name is 1-127 letters, digits and dashes; a version is hex.
_REF = re.compile(r"([A-Za-z0-9-]{1,127})(?:/([0-9a-fA-F]{32}))?")


def parse_ref(ref: str) -> tuple[str, str | None]:
    """`NAME` or `NAME/VERSION` -> (name, version or None for the current one)."""
    match = _REF.fullmatch(ref.strip())
    if match is None:
        raise ValueError("a Key Vault secret reference is NAME or NAME/VERSION (32 hex digits)")
    return match.group(1), match.group(2)


class KeyVaultSecrets:
    """`Secrets` whose names are secret references in one vault."""

    def __init__(
        self,
        vault_url: str,
        *,
        credential: Any = None,
        limits: CallLimits = DEFAULT_LIMITS,
        client_options: dict[str, Any] | None = None,
    ) -> None:
        """`credential`: an azure-core TokenCredential (default: the managed identity).
        `client_options` (tests only) go to SecretClient as they are, e.g. a loopback
        stand-in's `connection_verify` (its CA file)."""
        self.vault_url = vault_url
        self._credential = credential
        self._limits = limits
        self._client_options = dict(client_options or {})
        self._client: SecretClient | None = None
        self._lock = threading.Lock()

    def get(self, name: str) -> str | None:
        from azure.core.exceptions import ResourceNotFoundError

        secret, version = parse_ref(name)
        client = self._secret_client()
        with unavailable_on_outage(BACKEND):
            try:
                value: str | None = client.get_secret(secret, version).value
            except ResourceNotFoundError:
                return None
        return value

    def close(self) -> None:
        with self._lock:
            client, self._client = self._client, None
        if client is not None:
            client.close()

    def _secret_client(self) -> SecretClient:
        if self._client is None:
            with self._lock:
                if self._client is None:
                    from azure.keyvault.secrets import SecretClient

                    self._client = SecretClient(
                        self.vault_url,
                        self._credential or clients.credential(),
                        **clients.call_options(self._limits),
                        **self._client_options,
                    )
        return self._client

    def __repr__(self) -> str:
        return f"KeyVaultSecrets({self.vault_url!r})"


def from_url(url: str) -> KeyVaultSecrets:
    """`azurekv://VAULT_HOST` (e.g. azurekv://myvault.vault.azure.net): that vault, over
    HTTPS, as the managed identity."""
    parts = urlsplit(url)
    if parts.scheme != "azurekv" or not parts.netloc or parts.path.strip("/") or parts.query:
        raise ValueError("a Key Vault URL is azurekv://VAULT_HOST")
    return KeyVaultSecrets(f"https://{parts.netloc}")


__all__ = ["BACKEND", "KeyVaultSecrets", "from_url", "parse_ref"]
