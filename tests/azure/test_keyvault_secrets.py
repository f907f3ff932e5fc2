"""Key Vault secrets (core.adapters.azure.keyvault_secrets) against a loopback HTTPS
stand-in of the Key Vault REST API: the shared secrets contract (values back exactly,
missing is None, rotation after the TTL, nothing logged, outages bounded and mapped to
store_unavailable), the bearer challenge the real client goes through, and the way the
Azure platform builds it for NAME_SECRET_REF."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from azure.core.exceptions import ServiceRequestError

from core.adapters.azure.keyvault_secrets import KeyVaultSecrets, from_url, parse_ref
from core.adapters.outages import CallLimits
from core.adapters.registry import open_adapter
from core.domain.errors import UnavailableError
from handlers_azure.runtime import AzurePlatform
from tests.azure.key_vault import KeyVaultStandIn, StaticCredential
from tests.contract.secrets_contract import OutageSecrets, SecretsContract, SecretsOutageContract


@pytest.fixture(scope="module")
def vault(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KeyVaultStandIn]:
    stand_in = KeyVaultStandIn(tmp_path_factory.mktemp("vault"))
    yield stand_in
    stand_in.close()


def stand_in_options(ca_file: Path) -> dict[str, Any]:
    return {"connection_verify": str(ca_file)}  # the client's challenge check stays on


def client(url: str, ca_file: Path, limits: CallLimits | None = None) -> KeyVaultSecrets:
    extra = {"limits": limits} if limits else {}
    return KeyVaultSecrets(
        url,
        credential=StaticCredential(),
        client_options=stand_in_options(ca_file),
        **extra,
    )


class Writer:
    def __init__(self, vault: KeyVaultStandIn, namespace: str) -> None:
        self.vault, self.namespace = vault, namespace

    def ref(self, name: str) -> str:
        return f"{self.namespace}-{name}"

    def write(self, name: str, value: str) -> str:
        return self.vault.write(self.ref(name), value)


class TestKeyVaultSecrets(SecretsContract, SecretsOutageContract):
    @pytest.fixture
    def secrets(self, vault: KeyVaultStandIn) -> Iterator[KeyVaultSecrets]:
        adapter = client(vault.url, vault.ca_file)
        yield adapter
        adapter.close()

    @pytest.fixture
    def writer(self, vault: KeyVaultStandIn, request: pytest.FixtureRequest) -> Writer:
        return Writer(vault, f"t{abs(hash(request.node.nodeid)) % 10**8}")

    @pytest.fixture
    def outage_secrets(self, vault: KeyVaultStandIn) -> OutageSecrets:
        return lambda port, limits: client(f"https://127.0.0.1:{port}", vault.ca_file, limits)


def test_the_client_answers_the_bearer_challenge_with_its_credential(
    vault: KeyVaultStandIn,
) -> None:
    credential = StaticCredential()
    adapter = KeyVaultSecrets(
        vault.url,
        credential=credential,
        client_options=stand_in_options(vault.ca_file),
    )
    ref = vault.write("challenge-test", "v1")
    assert adapter.get(ref) == "v1"
    assert credential.scopes == [f"{vault.resource}/.default"]  # the challenge's resource
    adapter.close()


def test_a_version_is_read_as_named_and_a_bad_reference_is_refused(
    vault: KeyVaultStandIn,
) -> None:
    adapter = client(vault.url, vault.ca_file)
    vault.write("versioned", "old")
    old_version = vault.secrets["versioned"][0][0]
    vault.write("versioned", "new")
    assert adapter.get("versioned") == "new"
    assert adapter.get(f"versioned/{old_version}") == "old"
    assert adapter.get(f"versioned/{'0' * 32}") is None
    for bad in ("", "has space", "a/b/c", "name/not-hex", "x" * 128):
        with pytest.raises(ValueError, match="NAME or NAME/VERSION"):
            parse_ref(bad)
    adapter.close()


def test_an_untrusted_certificate_is_not_an_outage(vault: KeyVaultStandIn) -> None:
    """Without the stand-in's CA the TLS check fails: a deployment mistake, raised as
    it is rather than hidden behind a 503 that would be retried forever."""
    adapter = KeyVaultSecrets(
        vault.url,
        credential=StaticCredential(),
    )
    with pytest.raises(ServiceRequestError) as raised:
        adapter.get(vault.write("untrusted", "v"))
    assert not isinstance(raised.value, UnavailableError)
    assert "CERTIFICATE_VERIFY_FAILED" in str(raised.value)
    adapter.close()


def test_the_registry_and_the_azure_platform_name_the_vault_over_https() -> None:
    built = open_adapter("secrets", "azurekv://myvault.vault.azure.net")
    assert isinstance(built, KeyVaultSecrets)
    assert built.vault_url == "https://myvault.vault.azure.net"
    env = {"IMGGO_FN_KEY_VAULT_URL": "https://other.vault.azure.net/"}
    platform = AzurePlatform(env)
    store = platform.secret_store(platform.environment())
    assert isinstance(store, KeyVaultSecrets)
    assert store.vault_url == "https://other.vault.azure.net"
    with pytest.raises(ValueError, match="IMGGO_FN_KEY_VAULT_URL"):
        AzurePlatform({}).secret_store({})
    for bad in ("azurekv://", "azurekv://v.vault.azure.net/path", "azurekv://v?x=1"):
        with pytest.raises(ValueError, match="azurekv://VAULT_HOST"):
            from_url(bad)
