"""The local server asks its `local_routes` (the dashboard) first and the core app for
everything else: over real loopback HTTP."""

import httpx
import pytest

from core.api.app import HttpApp
from imggo_cli import dashboard
from imggo_cli.server import LocalServer
from tests.fakes import make_services


@pytest.fixture
def server():
    services = make_services(api_key_hashes={})
    srv = LocalServer(HttpApp(services), local_routes=dashboard.handle).start()
    yield srv
    srv.stop()


def test_the_local_server_asks_the_dashboard_first_and_the_api_for_the_rest(server):
    with httpx.Client(base_url=server.url, timeout=5) as client:
        page = client.get("/")
        assert page.status_code == 200 and "content-security-policy" in page.headers
        assert client.get("/health").json()["status"] == "ok"
        api = client.get("/v1/jobs")
        assert api.status_code == 401 and api.json()["error"]["code"] == "missing_credentials"
        missing = client.get("/static/nope.js")
        assert missing.status_code == 404
        assert missing.json()["error"]["code"] == "route_not_found"
