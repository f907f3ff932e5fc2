"""Constants and helpers the simulator tests share (the fixtures are in conftest.py)."""

from __future__ import annotations

import queue
import re
import ssl
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import httpx

from tests.support.loopback import base_url, serve_on_loopback

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
# One CA bundle load for every test client (each load costs ~20 ms).
SSL_CONTEXT = ssl.create_default_context()
OTHER_KEY = "imggo_test_other_tenant"
ISO_MS = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")
EXAMPLE_PATTERNS = {
    "invoice.png": ("invoice", "image/png"),
    "product.jpg": ("product", "image/jpeg"),
    "receipt.png": ("receipt", "image/png"),
    "sunset.gif": ("image-facts", "image/gif"),
}


def eventually(check: Callable[[], bool], timeout: float = 3.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.01)


def wait_for_job(client: httpx.Client, job_id: str, timeout: float = 5.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        response = client.get(f"/api/jobs/{job_id}")
        assert response.status_code == 200, response.text
        job: dict[str, Any] = response.json()["data"]
        if job["status"] in ("succeeded", "failed"):
            return job
        if time.monotonic() > deadline:
            raise AssertionError(f"job {job_id} still {job['status']}")
        time.sleep(0.01)


def upload(
    client: httpx.Client, name: str, pattern: str | None = None, **kw: Any
) -> httpx.Response:
    pattern_alias, mime = EXAMPLE_PATTERNS[name]
    files = {"image": (name, (EXAMPLES / name).read_bytes(), mime)}
    return client.post(f"/api/patterns/{pattern or pattern_alias}/ingest", files=files, **kw)


def assert_error(response: httpx.Response, status: int, code: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert body["success"] is False
    assert set(body["error"]) >= {"code", "message", "details"}
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    if code is not None:
        assert body["error"]["code"] == code
    error: dict[str, Any] = body["error"]
    return error


class WebhookReceiver:
    """A loopback HTTP server that queues every POST it gets: (headers, raw body)."""

    def __init__(self) -> None:
        self.received: queue.Queue[tuple[dict[str, str], bytes]] = queue.Queue()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                receiver.received.put(({k.lower(): v for k, v in self.headers.items()}, body))
                self.send_response(204)
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.httpd = serve_on_loopback(Handler)
        self.url = f"{base_url(self.httpd)}/hooks/imggo"

    def next(self, timeout: float = 5.0) -> tuple[dict[str, str], bytes]:
        return self.received.get(timeout=timeout)

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
