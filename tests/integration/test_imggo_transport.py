"""The stdlib-backed httpx transport against real loopback sockets: keep-alive reuse,
a connection the server closed while idle, and failures mapped to httpx's types (the
ImgGo client's retry decisions depend on them)."""

from __future__ import annotations

import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from core.adapters.imggo.transport import StdlibTransport


class Server:
    def __init__(self, delay: float = 0.0, close: bool = False, drop_idle: bool = False) -> None:
        self.connections = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self) -> None:
                outer.connections += 1
                super().setup()

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                time.sleep(delay)
                reply = b"echo:" + body + b":" + self.headers["X-Test"].encode()
                self.send_response(201)
                self.send_header("Content-Length", str(len(reply)))
                if close:
                    self.send_header("Connection", "close")
                self.end_headers()
                self.wfile.write(reply)
                if drop_idle:  # hang up after answering, without saying so
                    self.close_connection = True

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def test_round_trip_and_keep_alive_reuse():
    server = Server()
    try:
        with httpx.Client(base_url=server.url, transport=StdlibTransport()) as client:
            for i in range(5):
                r = client.post("/x?q=1", content=f"b{i}".encode(), headers={"X-Test": "h"})
                assert (r.status_code, r.content) == (201, f"echo:b{i}:h".encode())
        assert server.connections == 1
    finally:
        server.stop()


def test_connection_close_is_honoured():
    server = Server(close=True)
    try:
        with httpx.Client(base_url=server.url, transport=StdlibTransport()) as client:
            for _ in range(3):
                assert client.post("/", content=b"x", headers={"X-Test": "h"}).status_code == 201
        assert server.connections == 3
    finally:
        server.stop()


def test_idle_connection_closed_by_the_server_is_replaced_transparently():
    server = Server(drop_idle=True)
    try:
        with httpx.Client(base_url=server.url, transport=StdlibTransport()) as client:
            for i in range(3):
                time.sleep(0.05)  # let the server's hang-up reach our pooled socket
                r = client.post("/", content=str(i).encode(), headers={"X-Test": "h"})
                assert r.content == f"echo:{i}:h".encode()
        assert server.connections == 3  # each stale one was replaced, none surfaced as an error
    finally:
        server.stop()


def test_read_timeout_and_connect_error_map_to_httpx_types():
    server = Server(delay=0.5)
    try:
        with httpx.Client(base_url=server.url, transport=StdlibTransport(), timeout=0.1) as client:
            with pytest.raises(httpx.ReadTimeout):
                client.post("/", content=b"x", headers={"X-Test": "h"})
            time.sleep(0.5)  # let the slow handler finish before the server stops
    finally:
        server.stop()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound, not listening: connection refused
        with httpx.Client(transport=StdlibTransport()) as client, pytest.raises(httpx.ConnectError):
            client.post(f"http://127.0.0.1:{port}/", content=b"x", headers={"X-Test": "h"})


def test_other_schemes_are_refused():
    with (
        httpx.Client(transport=StdlibTransport()) as client,
        pytest.raises(httpx.UnsupportedProtocol),
    ):
        client.get("ftp://127.0.0.1/")
