"""Fixtures of the simulator tests: a started SimulatorServer, a client for it, a static
file server and a webhook receiver, all on loopback."""

from __future__ import annotations

from collections.abc import Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler
from typing import Any

import httpx
import pytest

from imggo_simulator import DEMO_API_KEY, SimulatorConfig, SimulatorServer
from tests.simulator.helpers import EXAMPLES, OTHER_KEY, SSL_CONTEXT, WebhookReceiver
from tests.support.loopback import base_url, serve_on_loopback, stop


@pytest.fixture
def sim() -> Iterator[SimulatorServer]:
    config = SimulatorConfig(api_keys=frozenset({DEMO_API_KEY, OTHER_KEY}), processing_s=0.05)
    with SimulatorServer(config) as server:
        yield server


@pytest.fixture
def client(sim: SimulatorServer) -> Iterator[httpx.Client]:
    with httpx.Client(
        base_url=sim.url,
        headers={"Authorization": f"Bearer {DEMO_API_KEY}"},
        timeout=5.0,
        trust_env=False,
        verify=SSL_CONTEXT,
    ) as c:
        yield c


class _QuietFiles(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def static_server() -> Iterator[str]:
    """Serves examples/ on loopback; yields its base URL."""
    httpd = serve_on_loopback(partial(_QuietFiles, directory=str(EXAMPLES)))
    try:
        yield base_url(httpd)
    finally:
        stop(httpd)


@pytest.fixture
def webhook_receiver() -> Iterator[WebhookReceiver]:
    receiver = WebhookReceiver()
    try:
        yield receiver
    finally:
        receiver.close()
