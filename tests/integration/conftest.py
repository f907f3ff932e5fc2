"""A whole local stack on loopback: the simulator (real HTTP), our HTTP surface on a real
server, SQLite on disk, the local work queue, and a webhook registered at the simulator."""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import httpx
import pytest

from core.api.app import HttpApp
from core.api.auth import hash_key
from core.bootstrap import Overrides, build_services, with_local_queue
from core.config import Settings
from core.service.context import Services
from imggo_cli.server import LocalServer
from imggo_simulator import DEMO_API_KEY, SimulatorConfig, SimulatorServer
from tests.support.images import ImageHost

API_KEY = "test-key-tenant-a"
OTHER_KEY = "test-key-tenant-b"


@pytest.fixture(scope="session")
def image_host() -> Iterator[ImageHost]:
    host = ImageHost()
    yield host
    host.close()


@dataclass
class Stack:
    simulator: SimulatorServer
    services: Services
    server: LocalServer
    client: httpx.Client
    webhook_secret: str

    @property
    def url(self) -> str:
        return self.server.url

    def wait_for(self, job_id: str, *, timeout: float = 10.0, key: str = API_KEY) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            job = self.client.get(f"/v1/jobs/{job_id}", headers=auth(key)).json()
            if job["status"] in ("succeeded", "failed", "rejected") or time.monotonic() > deadline:
                return job
            time.sleep(0.05)


def auth(key: str = API_KEY) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def make_stack(tmp_path: Path, config: SimulatorConfig, **settings_changes) -> Stack:
    simulator = SimulatorServer(config).start()
    secret = secrets.token_urlsafe(20)
    settings = Settings(
        store_url=f"sqlite:///{tmp_path}/jobs.db",
        data_dir=str(tmp_path),
        imggo_base_url=simulator.url,
        imggo_api_key=DEMO_API_KEY,
        imggo_timeout_s=2.0,
        webhook_secrets=(secret,),
        api_key_hashes={hash_key(API_KEY): "tenant-a", hash_key(OTHER_KEY): "tenant-b"},
        ssrf_allow=("127.0.0.1",),
        poll_after_s=0.2,
    )
    settings = replace(settings, **settings_changes)
    # Name resolution is stubbed: nothing here may ask real DNS.
    services = with_local_queue(
        build_services(settings, Overrides(resolver=lambda h: ["127.0.0.1"]))
    )
    server = LocalServer(HttpApp(services)).start()
    httpx.post(
        f"{simulator.url}/api/webhooks",
        headers=auth(DEMO_API_KEY),
        json={
            "url": f"{server.url}/v1/webhooks/imggo",
            "events": ["job.succeeded", "job.failed"],
            "secret": secret,
        },
    ).raise_for_status()
    client = httpx.Client(base_url=server.url, timeout=10)
    return Stack(simulator, services, server, client, secret)


def close_stack(stack: Stack) -> None:
    stack.client.close()
    stack.server.stop()
    stack.services.close()
    stack.simulator.stop()


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    s = make_stack(tmp_path, SimulatorConfig(processing_s=0.05))
    yield s
    close_stack(s)
