"""A rotated Key Vault secret reaches a warm Azure instance without a restart: the real
function objects of `function_app.py`, the container's one host, NAME_SECRET_REF read
from the Key Vault stand-in as the managed identity (DefaultAzureCredential against the
platform's identity endpoint stand-in), the ImgGo simulator on the other side. Time is
moved past the secrets TTL on the container's clock instead of slept through."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from core.adapters.azure.blob_store import AzureBlobStore
from core.adapters.azure.storage_queue import StorageQueue
from core.adapters.azure.table_store import AzureTableJobStore
from core.adapters.clock import ManualClock
from core.api.auth import hash_key
from handlers_azure import runtime
from imggo_simulator import SimulatorConfig, SimulatorServer
from tests.azure.conftest import unique
from tests.azure.functions_host import call_http
from tests.azure.key_vault import KeyVaultStandIn, ManagedIdentityStandIn
from tests.support.images import png

API_KEY = "azure-rotation-key-tenant-a"
TTL_S = 60.0


@pytest.fixture
def warm_app(
    storage: str,
    vault_settings: KeyVaultStandIn,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[dict[str, Any]]:
    simulator = SimulatorServer(SimulatorConfig(processing_s=0.05)).start()
    table, queue, container = unique("jobs"), unique("work"), unique("uploads")
    AzureBlobStore(container).create_container()
    store = AzureTableJobStore(table)
    store.create_table()
    StorageQueue(queue).create()
    secret = f"imggo-api-key-{uuid.uuid4().hex[:8]}"
    vault_settings.write(secret, "imggo_rotation_v1")
    monkeypatch.delenv("IMGGO_API_KEY", raising=False)
    env = {
        "IMGGO_FN_STORE_URL": f"azuretables://{table}",
        "IMGGO_FN_QUEUE_NAME": queue,
        "IMGGO_FN_UPLOAD_CONTAINER": container,
        "IMGGO_BASE_URL": simulator.url,
        "IMGGO_API_KEY_SECRET_REF": secret,
        "IMGGO_FN_SECRETS_TTL_S": str(TTL_S),
        "IMGGO_WEBHOOK_SECRET": "whsec-rotation-test",
        "IMGGO_FN_API_KEYS": f"tenant-a={hash_key(API_KEY)}",
        "IMGGO_FN_POLL_AFTER_S": "3600",
        "IMGGO_TIMEOUT_S": "2",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    clock = ManualClock(start=1000.0)
    runtime.reset_for_tests(clock=clock.now)
    yield {"clock": clock, "secret": secret, "simulator": simulator}
    runtime.reset_for_tests()
    store.client.delete_table()
    store.close()
    simulator.stop()


def submit(n: int) -> dict[str, Any]:
    answer = call_http(
        "POST",
        "http://localhost/v1/jobs?pattern_id=image-facts",
        {"Authorization": f"Bearer {API_KEY}", "Content-Type": "image/png"},
        png(n),
    )
    assert answer.status_code == 202, answer.get_body()
    body: dict[str, Any] = json.loads(answer.get_body())
    return body


def test_a_warm_instance_uses_the_rotated_imggo_key_after_the_ttl(
    warm_app: dict[str, Any],
    vault_settings: KeyVaultStandIn,
    managed_identity: ManagedIdentityStandIn,
) -> None:
    simulator: SimulatorServer = warm_app["simulator"]
    clock: ManualClock = warm_app["clock"]
    simulator.config.api_keys = frozenset({"imggo_rotation_v1"})
    tokens = len(managed_identity.resources)

    first = submit(201)
    # ImgGo accepted the job: the key came from the vault, read as the managed identity.
    assert first["status"] == "queued" and first["imggo_job_id"], first
    assert managed_identity.resources[tokens:] == [vault_settings.resource]
    host = runtime.host()
    assert host.runtime.builds == 1

    vault_settings.write(warm_app["secret"], "imggo_rotation_v2")
    simulator.config.api_keys = frozenset({"imggo_rotation_v2"})  # the old key is revoked
    reads = vault_settings.reads
    clock.advance(TTL_S / 2)
    refused = call_http(
        "POST",
        "http://localhost/v1/jobs?pattern_id=image-facts",
        {"Authorization": f"Bearer {API_KEY}", "Content-Type": "image/png"},
        png(202),
    )
    # Within the TTL the cached (now revoked) key is still used, and the vault is not
    # asked again.
    assert vault_settings.reads == reads
    assert refused.status_code == 422, refused.get_body()
    assert json.loads(refused.get_body())["error"]["details"]["imggo_code"] == "INVALID_API_KEY"

    clock.advance(TTL_S / 2 + 1)
    second = submit(203)
    # The same warm container - no new host, no restart - took the new key from the
    # vault once the TTL had passed, and rebuilt its services with it.
    assert second["status"] == "queued" and second["imggo_job_id"], second
    assert runtime.host() is host
    assert host.runtime.builds == 2
    assert vault_settings.reads > reads
    # The managed identity's token was kept: rotation costs a secret read, not a login.
    assert managed_identity.resources[tokens:] == [vault_settings.resource]
