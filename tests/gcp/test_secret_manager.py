"""Secret Manager adapter through the real client library (REST transport) against a
loopback stand-in; the TTL cache; and a rotated secret reaching rebuilt services."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from core.adapters.gcp.secret_manager import SecretManagerSecrets, version_name
from core.adapters.secrets import CachedSecrets
from handlers_gcp.runtime import GcpRuntime
from tests.gcp.secret_standin import SecretManagerStandIn


@pytest.fixture
def standin() -> Iterator[SecretManagerStandIn]:
    server = SecretManagerStandIn()
    yield server
    server.close()


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


def test_reads_through_the_client_and_caches(standin: SecretManagerStandIn) -> None:
    standin.secrets[("demo-imggo", "imggo-api-key")] = "imggo_test_v1"
    now = [0.0]
    secrets = CachedSecrets(
        SecretManagerSecrets("demo-imggo", endpoint=standin.url), ttl_s=60, clock=lambda: now[0]
    )
    assert secrets.get("imggo-api-key") == "imggo_test_v1"
    assert secrets.get("imggo-api-key") == "imggo_test_v1"
    assert len(standin.calls) == 1  # the second read came from the cache
    standin.secrets[("demo-imggo", "imggo-api-key")] = "imggo_test_v2"
    now[0] = 61
    assert secrets.get("imggo-api-key") == "imggo_test_v2"
    assert (
        standin.calls[-1] == "/v1/projects/demo-imggo/secrets/imggo-api-key/versions/latest:access"
    )
    assert "imggo_test" not in repr(secrets)


def test_missing_secret_is_a_clear_error(standin: SecretManagerStandIn) -> None:
    with pytest.raises(LookupError, match="projects/demo-imggo/secrets/nope/versions/latest"):
        SecretManagerSecrets("demo-imggo", endpoint=standin.url).get("nope")


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
    gcp = GcpRuntime(env, clock=lambda: now[0])
    first = gcp.current().services
    assert first.settings.imggo_api_key == "imggo_test_old"
    assert first.settings.webhook_secrets == ("a-webhook-secret-of-16+",)
    assert first.settings.store_url == "memory://"
    now[0] += 30
    assert gcp.current().services is first  # within the TTL: not even asked
    calls = len(standin.calls)
    now[0] += 31
    assert gcp.current().services is first  # asked again, nothing changed
    assert len(standin.calls) > calls
    standin.secrets[("demo-imggo", "imggo-api-key")] = "imggo_test_new"
    now[0] += 61
    second = gcp.current().services
    assert second is not first
    assert second.settings.imggo_api_key == "imggo_test_new"


def test_plain_env_needs_no_secret_manager() -> None:
    # `--set-secrets` injects the value itself: no reference, no client.
    gcp = GcpRuntime({"IMGGO_FN_STORE_URL": "memory://", "IMGGO_API_KEY": "imggo_test_env"})
    assert gcp.current().services.settings.imggo_api_key == "imggo_test_env"
