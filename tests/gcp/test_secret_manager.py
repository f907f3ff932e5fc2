"""The secrets contract against SecretManagerSecrets, through the real client library
(REST transport), on a loopback stand-in; reference spellings; and a rotated secret
reaching rebuilt services."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator

import pytest

from core.adapters.gcp.secret_manager import SecretManagerSecrets, version_name
from core.adapters.outages import CallLimits
from core.config import MissingSecretError
from core.platform import FunctionHost
from core.service.context import Services
from handlers_gcp.runtime import GcpPlatform
from tests.contract.secrets_contract import SecretsContract, SecretsOutageContract
from tests.gcp.secret_standin import SecretManagerStandIn

PROJECT = "demo-imggo"


@pytest.fixture(scope="module")
def standin() -> Iterator[SecretManagerStandIn]:
    server = SecretManagerStandIn()
    yield server
    server.close()


class StandInWriter:
    """Secrets in the stand-in under a prefix of their own: a fresh namespace per test."""

    def __init__(self, standin: SecretManagerStandIn) -> None:
        self.standin = standin
        self.prefix = "t" + uuid.uuid4().hex[:8]

    def write(self, name: str, value: str) -> str:
        self.standin.secrets[(PROJECT, f"{self.prefix}-{name}")] = value
        return self.ref(name)

    def ref(self, name: str) -> str:
        return f"{self.prefix}-{name}"  # the short spelling: latest version, project from env


class TestSecretManagerSecrets(SecretsContract, SecretsOutageContract):
    @pytest.fixture
    def writer(self, standin: SecretManagerStandIn) -> StandInWriter:
        return StandInWriter(standin)

    @pytest.fixture
    def secrets(self, standin: SecretManagerStandIn) -> SecretManagerSecrets:
        return SecretManagerSecrets(PROJECT, endpoint=standin.url)

    @pytest.fixture
    def outage_secrets(self) -> Callable[[int, CallLimits], SecretManagerSecrets]:
        def make(port: int, limits: CallLimits) -> SecretManagerSecrets:
            return SecretManagerSecrets(PROJECT, endpoint=f"http://127.0.0.1:{port}", limits=limits)

        return make


def current(host: FunctionHost) -> Services:
    """What an invocation sees: the services, rebuilt first if a secret rotated."""
    host.runtime.refresh_if_due()
    return host.services


def test_version_names() -> None:
    assert version_name("k", "p") == "projects/p/secrets/k/versions/latest"
    assert version_name("k:3", "p") == "projects/p/secrets/k/versions/3"
    assert version_name("projects/q/secrets/k", None) == "projects/q/secrets/k/versions/latest"
    full = "projects/q/secrets/k/versions/7"
    assert version_name(full, "p") == full
    with pytest.raises(ValueError):
        version_name("k", None)
    with pytest.raises(ValueError):
        version_name("a/b", "p")


def test_full_references_name_a_version(standin: SecretManagerStandIn) -> None:
    standin.secrets[("other-project", "hook")] = "from-the-other-project"
    secrets = SecretManagerSecrets(None, endpoint=standin.url)
    assert secrets.get("projects/other-project/secrets/hook") == "from-the-other-project"
    assert standin.calls[-1] == "/v1/projects/other-project/secrets/hook/versions/latest:access"
    assert secrets.get("projects/other-project/secrets/hook/versions/3") == "from-the-other-project"
    assert standin.calls[-1] == "/v1/projects/other-project/secrets/hook/versions/3:access"


def test_a_reference_to_nothing_stops_the_function_loudly(standin: SecretManagerStandIn) -> None:
    """A deployment whose IMGGO_API_KEY_SECRET_REF names nothing must not run without
    its key: building the settings fails, naming the reference (not a value)."""
    env = {
        "GOOGLE_CLOUD_PROJECT": PROJECT,
        "IMGGO_FN_STORE_URL": "memory://",
        "IMGGO_API_KEY_SECRET_REF": "nope-" + uuid.uuid4().hex[:6],
        "IMGGO_FN_SECRET_MANAGER_ENDPOINT": standin.url,
    }
    with pytest.raises(MissingSecretError, match="IMGGO_API_KEY_SECRET_REF names nope-"):
        FunctionHost(GcpPlatform(env)).runtime.services  # noqa: B018 - building is the test


def test_rotated_secret_rebuilds_the_services(standin: SecretManagerStandIn) -> None:
    standin.secrets[("demo-imggo", "imggo-api-key")] = "imggo_test_old"
    standin.secrets[("demo-imggo", "hook")] = "a-webhook-secret-of-16+"
    now = [1000.0]
    env = {
        "GOOGLE_CLOUD_PROJECT": "demo-imggo",
        "IMGGO_FN_STORE_URL": "memory://",
        "IMGGO_API_KEY_SECRET_REF": "imggo-api-key",
        "IMGGO_WEBHOOK_SECRET_SECRET_REF": "projects/demo-imggo/secrets/hook",
        "IMGGO_FN_SECRET_MANAGER_ENDPOINT": standin.url,
        "IMGGO_FN_SECRETS_TTL_S": "60",
    }
    gcp = FunctionHost(GcpPlatform(env), clock=lambda: now[0])
    first = current(gcp)
    assert first.settings.imggo_api_key == "imggo_test_old"
    assert first.settings.webhook_secrets == ("a-webhook-secret-of-16+",)
    assert first.settings.store_url == "memory://"
    now[0] += 30
    assert current(gcp) is first  # within the TTL: not even asked
    calls = len(standin.calls)
    now[0] += 31
    assert current(gcp) is first  # asked again, nothing changed
    assert len(standin.calls) > calls
    standin.secrets[("demo-imggo", "imggo-api-key")] = "imggo_test_new"
    now[0] += 61
    second = current(gcp)
    assert second is not first
    assert second.settings.imggo_api_key == "imggo_test_new"


def test_plain_env_needs_no_secret_manager() -> None:
    # `--set-secrets` injects the value itself: no reference, no client.
    gcp = FunctionHost(
        GcpPlatform({"IMGGO_FN_STORE_URL": "memory://", "IMGGO_API_KEY": "imggo_test_env"})
    )
    assert current(gcp).settings.imggo_api_key == "imggo_test_env"
