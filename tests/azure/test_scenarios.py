"""The cloud scenario suite on Azure: the real function objects of `function_app.py`
invoked with real azure.functions binding objects - HTTP through a loopback shim of the
host's HTTP front (ImgGo's signed webhooks arrive that way), queue messages pulled from
Azurite under host.json's rules, the Event Grid blob trigger's InputStream, the timer's
TimerRequest - against Azurite, the ImgGo simulator, and the Key Vault stand-in that the
ImgGo key is read from (IMGGO_API_KEY_SECRET_REF, as the managed identity), so that its
rotation reaches the warm instance without a restart."""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import azure.functions as func
import httpx
import pytest
from azure.functions.timer import TimerRequest
from azure.storage.queue import QueueClient

from core.adapters.azure.blob_store import AzureBlobStore
from core.adapters.azure.clients import CONNECTION_SETTING
from core.adapters.azure.storage_queue import StorageQueue
from core.adapters.azure.table_store import AzureTableJobStore
from core.api.auth import hash_key
from core.domain.job import Job
from handlers_azure import runtime
from imggo_simulator import DEMO_API_KEY, SimulatorConfig, SimulatorServer
from tests.azure.azurite import ACCOUNT, Azurite
from tests.azure.conftest import unique
from tests.azure.functions_host import HttpTriggerShim, QueueHost, invoke
from tests.azure.key_vault import KeyVaultStandIn
from tests.scenarios.suite import Answer, CloudScenarios, Delivery, put_signed
from tests.support.images import ImageHost
from tests.support.loopback import Blackhole

TENANT = "tenant-a"
API_KEY = "azure-scenario-key-tenant-a"
WEBHOOK_SECRET = "whsec-azure-scenarios"

SCENARIO_ENV = {
    "IMGGO_FN_POLL_AFTER_S": "3600",  # only webhooks (and reconcile) move jobs
    "IMGGO_FN_SECRETS_TTL_S": "1",
    "IMGGO_FN_RECONCILE_AGE_S": "0",
    "IMGGO_FN_SSRF_ALLOW": "127.0.0.1",
    "IMGGO_TIMEOUT_S": "5",
    "IMGGO_FN_API_KEYS": f"{TENANT}={hash_key(API_KEY)}",
    "IMGGO_WEBHOOK_SECRET": WEBHOOK_SECRET,
}


@dataclass
class AzureDriver:
    simulator: SimulatorServer
    store: AzureTableJobStore
    queue: QueueHost
    raw_queue: QueueClient
    container: str
    http: httpx.Client
    images: ImageHost
    vault: KeyVaultStandIn
    api_key_secret: str  # the Key Vault secret IMGGO_API_KEY_SECRET_REF names
    restart: Callable[[dict[str, str]], None]  # a fresh instance with these settings
    tenant: str = TENANT
    outage_budget_s: float = 10.0
    queue_can_delay: bool = True

    def api(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        body: bytes | None = None,
        content_type: str | None = None,
        query: str = "",
        headers: dict[str, str] | None = None,
    ) -> Answer:
        hdrs = {"Authorization": f"Bearer {API_KEY}", **(headers or {})}
        if content_type:
            hdrs["Content-Type"] = content_type
        response = self.http.request(
            method,
            path + (f"?{query}" if query else ""),
            json=json_body,
            content=body,
            headers=hdrs,
        )
        headers_out = {k.lower(): v for k, v in response.headers.items()}
        return Answer(response.status_code, headers_out, response.content)

    def stored(self, job_id: str) -> Job | None:
        return self.store.get(job_id)

    def image_url(self, n: int) -> str:
        return self.images.url(n)

    def publish_raw(self, body: bytes) -> None:
        import base64

        self.raw_queue.send_message(base64.b64encode(body).decode())

    def drain(self) -> None:
        self.raw_queue.clear_messages()

    def deliver_work(self, expect: int) -> list[Delivery]:
        handled = self.queue.deliver_work(max(expect, 1))
        return [Delivery(h.body, h.outcome != "redelivered") for h in handled]

    def object_landed(self, job_id: str, tenant: str, data: bytes, upload: dict[str, Any]) -> bool:
        put_signed(upload, data)
        name = f"{self.container}/incoming/{tenant}/{job_id}"
        blob = func.blob.InputStream(data=data, name=name, uri=upload["url"], length=len(data))
        try:
            invoke("upload_landed", blob)
        except Exception:
            return False  # the host retries an Event Grid-triggered function that raised
        return True

    def tick(self) -> None:
        invoke("reconcile", TimerRequest(past_due=False))

    def rotate_imggo_key(self, new_key: str) -> None:
        self.vault.write(self.api_key_secret, new_key)  # a new version; the instance stays

    @contextmanager
    def store_outage(self) -> Iterator[AzureDriver]:
        hole = Blackhole()
        try:
            # The same instance's settings, but the table endpoint goes nowhere.
            good = os.environ[CONNECTION_SETTING]
            broken = re.sub(r"TableEndpoint=[^;]*", f"TableEndpoint={hole.url}/{ACCOUNT}", good)
            self.restart({CONNECTION_SETTING: broken})
            yield self
        finally:
            hole.close()


class TestAzureScenarios(CloudScenarios):
    @pytest.fixture
    def cloud(
        self,
        azurite_server: Azurite,
        storage: str,
        vault_settings: KeyVaultStandIn,
        monkeypatch: pytest.MonkeyPatch,
    ) -> Iterator[AzureDriver]:
        simulator = SimulatorServer(SimulatorConfig(processing_s=0.05)).start()
        table, queue, container = unique("jobs"), unique("work"), unique("uploads")
        AzureBlobStore(container).create_container()
        store = AzureTableJobStore(table)
        store.create_table()
        StorageQueue(queue).create()
        StorageQueue(f"{queue}-poison").create()
        api_key_secret = vault_settings.write(unique("imggo-api-key-"), DEMO_API_KEY)
        monkeypatch.delenv("IMGGO_API_KEY", raising=False)
        env = {
            **SCENARIO_ENV,
            "IMGGO_FN_STORE_URL": f"azuretables://{table}",
            "IMGGO_FN_QUEUE_NAME": queue,
            "IMGGO_FN_UPLOAD_CONTAINER": container,
            "IMGGO_BASE_URL": simulator.url,
            "IMGGO_API_KEY_SECRET_REF": api_key_secret,
        }
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        runtime.reset_for_tests()
        shim, image_host = HttpTriggerShim(), ImageHost()
        http = httpx.Client(base_url=shim.url, timeout=30)
        httpx.post(
            f"{simulator.url}/api/webhooks",
            headers={"Authorization": f"Bearer {DEMO_API_KEY}"},
            json={
                "url": f"{shim.url}/v1/webhooks/imggo",
                "events": ["job.succeeded", "job.failed"],
                "secret": WEBHOOK_SECRET,
            },
        ).raise_for_status()

        def restart(changes: dict[str, str]) -> None:
            for name, value in changes.items():
                monkeypatch.setenv(name, value)
            runtime.reset_for_tests()

        host = QueueHost(storage, queue)
        raw = QueueClient.from_connection_string(storage, queue)
        yield AzureDriver(
            simulator,
            store,
            host,
            raw,
            container,
            http,
            image_host,
            vault_settings,
            api_key_secret,
            restart,
        )
        runtime.reset_for_tests()
        http.close()
        shim.close()
        image_host.close()
        host.close()
        raw.close()
        store.client.delete_table()
        store.close()
        simulator.stop()
