"""Fixtures for the Azure flavour: one Azurite for the package (about a second to start;
stopped once the last Azure test is done), its connection string in the environment the
adapters read, and unique resource names so tests never see each other's data."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from tests.azure.azurite import Azurite, AzuriteMissingError, azurite


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
