"""Fixtures for the Azure flavour: one Azurite for the package (about a second to start;
stopped once the last Azure test is done), its connection string in the environment the
adapters read, unique resource names so tests never see each other's data, and the Key
Vault and managed identity stand-ins (tests/azure/key_vault.py) with the app settings
that point the production credential and vault client at them."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from core.adapters.azure import clients
from handlers_azure.runtime import KEY_VAULT_URL
from tests.azure.azurite import Azurite, AzuriteMissingError, azurite
from tests.azure.key_vault import KeyVaultStandIn, ManagedIdentityStandIn


@pytest.fixture(scope="package")
def azurite_server() -> Iterator[Azurite]:
    try:
        server = azurite().start().wait()
    except AzuriteMissingError as exc:
        pytest.fail(str(exc), pytrace=False)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def storage(azurite_server: Azurite, monkeypatch: pytest.MonkeyPatch) -> str:
    """The Azurite connection string, also set where the adapters look for it."""
    monkeypatch.setenv("AZURE_STORAGE_CONNECTION_STRING", azurite_server.connection_string)
    return azurite_server.connection_string


def unique(prefix: str) -> str:
    """A name legal for a table, queue and container alike: lowercase letters and digits."""
    return f"{prefix}{uuid.uuid4().hex[:12]}"


@pytest.fixture(scope="package")
def key_vault(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KeyVaultStandIn]:
    stand_in = KeyVaultStandIn(tmp_path_factory.mktemp("key-vault"))
    yield stand_in
    stand_in.close()


@pytest.fixture(scope="package")
def managed_identity() -> Iterator[ManagedIdentityStandIn]:
    stand_in = ManagedIdentityStandIn()
    yield stand_in
    stand_in.close()


@pytest.fixture
def vault_settings(
    key_vault: KeyVaultStandIn,
    managed_identity: ManagedIdentityStandIn,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[KeyVaultStandIn]:
    """A function app that reads Key Vault itself (NAME_SECRET_REF) as its managed
    identity: the vault's URL, the identity endpoint the platform sets, and trust in the
    stand-in's certificate (REQUESTS_CA_BUNDLE, which every requests-based client reads).
    The container's credential is built afresh, from these settings, and forgotten after."""
    settings = {
        **managed_identity.environment(),
        KEY_VAULT_URL: key_vault.url,
        "REQUESTS_CA_BUNDLE": str(key_vault.ca_file),
    }
    for name, value in settings.items():
        monkeypatch.setenv(name, value)
    clients.credential.cache_clear()
    yield key_vault
    clients.credential.cache_clear()
