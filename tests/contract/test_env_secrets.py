"""The secrets contract against EnvSecrets: plain environment variables (what
`--set-secrets` injection and a laptop's shell look like)."""

from __future__ import annotations

import pytest

from core.adapters.secrets import EnvSecrets
from tests.contract.secrets_contract import SecretsContract


class EnvWriter:
    def __init__(self) -> None:
        self.env: dict[str, str] = {}

    def write(self, name: str, value: str) -> str:
        self.env[self.ref(name)] = value
        return self.ref(name)

    def ref(self, name: str) -> str:
        return name.upper().replace("-", "_")


class TestEnvSecrets(SecretsContract):
    @pytest.fixture
    def writer(self) -> EnvWriter:
        return EnvWriter()

    @pytest.fixture
    def secrets(self, writer: EnvWriter) -> EnvSecrets:
        return EnvSecrets(writer.env)


def test_an_empty_variable_is_unset() -> None:
    assert EnvSecrets({"IMGGO_API_KEY": ""}).get("IMGGO_API_KEY") is None
