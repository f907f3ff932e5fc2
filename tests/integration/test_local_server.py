"""The server behind `imggo-fn serve`, spoken to over real loopback sockets: latency,
protocol errors as JSON envelopes, chunked bodies, timeouts, graceful stop."""

from __future__ import annotations

import json
import socket
import statistics
import threading
import time
from collections.abc import Iterator

import httpx
import pytest

from core.api.app import HttpApp
from core.api.auth import hash_key
from core.api.http import Headers, Request, Response
from core.domain.job import Job, JobSource, JobStatus
from imggo_cli.server import LocalServer
from tests.fakes import make_services

KEY = "server-test-key"
AUTH = f"Authorization: Bearer {KEY}\r\n"


@pytest.fixture
def app() -> HttpApp:
    services = make_services(api_key_hashes={hash_key(KEY): "t"})
    now = services.clock.now()
    services.store.create(
        Job(
            id="job-1",
            tenant="t",
            pattern_id="invoice",
            source=JobSource("url", url="https://example.test/a.png"),
            created_at=now,
            updated_at=now,
            status=JobStatus.SUCCEEDED,
            manifest={"total": 12.5},
        )
    )
    return HttpApp(services)


@pytest.fixture
def server(app: HttpApp) -> Iterator[LocalServer]:
    srv = LocalServer(app).start()
    yield srv
    srv.stop()


def _port(server: LocalServer) -> int:
    return int(server.url.rsplit(":", 1)[1])


class Conn:
    """A raw client connection that reads answers one at a time (pipelining kept)."""

    def __init__(self, server: LocalServer, timeout: float = 5.0) -> None:
        self.sock = socket.create_connection(("127.0.0.1", _port(server)), timeout=timeout)
        self.buffer = b""

    def _fill(self) -> bool:
        chunk = self.sock.recv(65536)
        self.buffer += chunk
        return bool(chunk)

    def read_response(self) -> bytes:
        while b"\r\n\r\n" not in self.buffer:
            if not self._fill():
                return self.buffer
        head, _, rest = self.buffer.partition(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        while len(rest) < length and self._fill():
            rest = self.buffer.partition(b"\r\n\r\n")[2]
        self.buffer = rest[length:]
        return head + b"\r\n\r\n" + rest[:length]

    def close(self) -> None:
        self.sock.close()


def exchange(server: LocalServer, raw: bytes) -> bytes:
    """Send raw bytes, read one answer."""
    conn = Conn(server)
    try:
        conn.sock.sendall(raw)
        return conn.read_response()
    finally:
        conn.close()


def parse(raw: bytes) -> tuple[int, dict[str, str], bytes]:
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return status, headers, body


def assert_envelope(raw: bytes, status: int | None = None) -> dict:
    code, headers, body = parse(raw)
    if status is not None:
        assert code == status, raw[:300]
    assert 400 <= code < 600, raw[:300]
    assert headers.get("content-type", "").startswith("application/json"), raw[:300]
    error = json.loads(body)["error"]
    assert isinstance(error["code"], str) and error["code"], error
    assert isinstance(error["message"], str) and isinstance(error["details"], dict), error
    return error


@pytest.mark.parametrize("method", ["TRACE", "FOO", "PROPFIND"])
def test_unknown_methods_answer_the_json_envelope(server, method):
    raw = exchange(server, f"{method} /v1/jobs HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    assert_envelope(raw)


def test_oversized_headers_are_a_431_envelope(server):
    big = "X-Filler: " + "a" * 70_000 + "\r\n"
    raw = exchange(server, f"GET /health HTTP/1.1\r\nHost: x\r\n{big}\r\n".encode())
    assert assert_envelope(raw, 431)["code"] == "headers_too_large"


@pytest.mark.parametrize(
    "request_bytes",
    [
        b"GARBAGE\r\n\r\n",
        b"GET /health HTTP/1.1\r\nno colon here\r\n\r\n",
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n",  # a TLS hello on plain HTTP
        b"GET /health HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n",
    ],
)
def test_malformed_requests_are_a_400_envelope(server, request_bytes):
    assert assert_envelope(exchange(server, request_bytes), 400)["code"] == "bad_request"


def test_an_unknown_transfer_coding_is_a_501_envelope(server):
    raw = exchange(
        server,
        b"POST /v1/jobs HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\nxx",
    )
    assert assert_envelope(raw, 501)["code"] == "not_implemented"


def test_a_chunked_body_is_the_body_not_a_second_request(server):
    body = json.dumps({"pattern_id": "invoice", "image_url": "gopher://x/a.png"}).encode()
    half = len(body) // 2
    chunks = b"".join(
        f"{len(part):x}\r\n".encode() + part + b"\r\n" for part in (body[:half], body[half:])
    )
    conn = Conn(server)
    try:
        conn.sock.sendall(
            b"POST /v1/jobs HTTP/1.1\r\nHost: x\r\n"
            + AUTH.encode()
            + b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
            + chunks
            + b"0\r\n\r\n"
            + b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n"
        )
        first = conn.read_response()
        second = conn.read_response()
    finally:
        conn.close()
    # The JSON was read: the answer is about its image_url, not a missing body.
    assert assert_envelope(first, 422)["code"] == "invalid_image_url"
    assert parse(second)[0] == 200 and json.loads(parse(second)[2])["status"] == "ok"


def test_an_oversized_chunked_body_is_a_413_envelope(app):
    srv = LocalServer(HttpApp(app.services, max_body_bytes=1000)).start()
    try:
        chunk = b"a" * 800
        raw = exchange(
            srv,
            b"POST /v1/jobs HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
            + (f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n") * 3
            + b"0\r\n\r\n",
        )
    finally:
        srv.stop()
    assert assert_envelope(raw, 413)["code"] == "payload_too_large"


def test_small_answers_are_not_held_back_by_nagle(server):
    # Nagle's algorithm plus delayed ACKs held a body sent apart from its head ~40 ms.
    with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {KEY}"}) as c:
        assert c.get("/v1/jobs/job-1").status_code == 200
        samples = []
        for _ in range(30):
            start = time.perf_counter()
            assert c.get("/v1/jobs/job-1").status_code == 200
            samples.append(time.perf_counter() - start)
    assert statistics.median(samples) < 0.015, samples


def _half_sent(server: LocalServer, count: int) -> list[socket.socket]:
    socks = []
    for _ in range(count):
        s = socket.create_connection(("127.0.0.1", _port(server)), timeout=5)
        s.sendall(b"POST /v1/jobs HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nabc")
        socks.append(s)
    return socks


def test_half_sent_requests_hold_no_thread(server):
    before = threading.active_count()
    socks = _half_sent(server, 40)
    try:
        # Everyone else is still served, at once, and no thread waits on the 40.
        start = time.perf_counter()
        assert httpx.get(f"{server.url}/health", timeout=5).status_code == 200
        assert time.perf_counter() - start < 1.0
        assert threading.active_count() - before < 5
    finally:
        for s in socks:
            s.close()


def test_silent_connections_are_closed_after_the_timeout(app):
    srv = LocalServer(app, timeout_s=1).start()
    socks = _half_sent(srv, 3)
    idle = Conn(srv)
    idle.sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
    assert parse(idle.read_response())[0] == 200  # then idle on a keep-alive connection
    try:
        deadline = time.monotonic() + 5
        for s in [*socks, idle.sock]:
            s.settimeout(max(0.1, deadline - time.monotonic()))
            assert s.recv(1024) == b"", "the server should have closed the connection"
    finally:
        for s in [*socks, idle.sock]:
            s.close()
        srv.stop()


def test_local_routes_come_first_and_fall_through(app):
    def local(request: Request) -> Response | None:
        if request.path == "/dashboard":
            return Response(200, b"<p>hi</p>", Headers({"Content-Type": "text/html"}))
        return None

    srv = LocalServer(app, local_routes=local).start()
    try:
        page = httpx.get(f"{srv.url}/dashboard")
        assert page.status_code == 200 and page.text == "<p>hi</p>"
        assert httpx.get(f"{srv.url}/health").json()["status"] == "ok"
        assert httpx.get(f"{srv.url}/nope").json()["error"]["code"]
    finally:
        srv.stop()


def test_stop_finishes_requests_in_flight_then_refuses(app):
    started = threading.Event()

    def slow(request: Request) -> Response | None:
        if request.path != "/slow":
            return None
        started.set()
        time.sleep(0.5)
        return Response.json(200, {"done": True})

    srv = LocalServer(app, local_routes=slow).start()
    port = _port(srv)
    result: dict[str, object] = {}

    def call() -> None:
        result["response"] = httpx.get(f"{srv.url}/slow", timeout=5)

    caller = threading.Thread(target=call)
    caller.start()
    assert started.wait(5)
    stop_started = time.monotonic()
    srv.stop()
    caller.join(5)
    response = result["response"]
    assert isinstance(response, httpx.Response)
    assert response.status_code == 200 and response.json() == {"done": True}
    assert time.monotonic() - stop_started < 3
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=1).close()


def test_a_crash_outside_the_core_is_a_500_envelope(app):
    def broken(request: Request) -> Response | None:
        raise RuntimeError("a bug in a local route")

    srv = LocalServer(app, local_routes=broken).start()
    try:
        raw = exchange(srv, b"GET /anything HTTP/1.1\r\nHost: x\r\n\r\n")
    finally:
        srv.stop()
    error = assert_envelope(raw, 500)
    assert error["code"] == "internal_error" and "a bug" not in error["message"]
