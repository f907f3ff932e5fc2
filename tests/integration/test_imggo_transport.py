"""The stdlib-backed httpx transport against real loopback sockets: keep-alive reuse,
a connection the server closed while idle, and failures mapped to httpx's types (the
ImgGo client's retry decisions depend on them)."""

from __future__ import annotations

import socket
import ssl
import threading
import time
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import httpx
import pytest

from core.adapters.imggo.transport import StdlibTransport
from tests.support.loopback import base_url, serve_on_loopback, stop


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

        self.httpd = serve_on_loopback(Handler)
        self.url = base_url(self.httpd)

    def stop(self) -> None:
        stop(self.httpd)


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


class Scripted:
    """A one-connection-at-a-time loopback server that answers each request with the
    next canned byte string, verbatim: the framings real servers use, and broken ones."""

    def __init__(self, answers: list[bytes]) -> None:
        self.answers = list(answers)
        self.requests: list[bytes] = []
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(4)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while self.answers:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                reader = conn.makefile("rb")
                while self.answers:
                    head = b""
                    while not head.endswith(b"\r\n\r\n"):
                        line = reader.readline()
                        if not line:
                            break
                        head += line
                    if not head:
                        break
                    length = 0
                    for line in head.split(b"\r\n"):
                        if line.lower().startswith(b"content-length:"):
                            length = int(line.split(b":")[1])
                    self.requests.append(head + reader.read(length))
                    answer = self.answers.pop(0)
                    conn.sendall(answer)
                    delimited = b"Content-Length" in answer or b"chunked" in answer
                    if b"Connection: close" in answer or not delimited:
                        break

    def stop(self) -> None:
        self.sock.close()


@pytest.mark.parametrize(
    ("answer", "status", "content"),
    [
        (b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello", 200, b"hello"),
        (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"3;ext=1\r\nhel\r\n2\r\nlo\r\n0\r\nX-Trailer: y\r\n\r\n",
            200,
            b"hello",
        ),
        (
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok",
            201,
            b"ok",
        ),
        (b"HTTP/1.0 200 OK\r\nX-Folded: a\r\n  b\r\n\r\nuntil close", 200, b"until close"),
        (b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n", 204, b""),
    ],
    ids=["content-length", "chunked-with-trailers", "interim-100", "close-delimited", "204"],
)
def test_response_framings(answer: bytes, status: int, content: bytes) -> None:
    server = Scripted([answer])
    try:
        with httpx.Client(transport=StdlibTransport()) as client:
            r = client.get(f"{server.url}/p?q=1")
        assert (r.status_code, r.content) == (status, content)
        assert server.requests[0].startswith(b"GET /p?q=1 HTTP/1.1\r\n")
        if b"X-Folded" in answer:
            assert r.headers["x-folded"] == "a b"
    finally:
        server.stop()


@pytest.mark.parametrize(
    "answer",
    [
        b"HTTP/1.1 2OO OK\r\nContent-Length: 0\r\n\r\n",
        b"SPDY/9 200 OK\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort",
        b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
        b"HTTP/1.1 200 OK\r\nno colon here\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
    ],
    ids=["status", "protocol", "truncated", "two-lengths", "header", "chunk-size"],
)
def test_malformed_answers_are_protocol_errors(answer: bytes) -> None:
    server = Scripted([answer])  # then it hangs up: a short body cannot wait forever
    try:
        with (
            httpx.Client(transport=StdlibTransport(), timeout=2) as client,
            pytest.raises(httpx.RemoteProtocolError),
        ):
            client.get(f"{server.url}/")
    finally:
        server.stop()


def test_header_values_cannot_smuggle_a_second_header() -> None:
    server = Scripted([b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"])
    try:
        with (
            httpx.Client(transport=StdlibTransport()) as client,
            pytest.raises(httpx.LocalProtocolError) as caught,
        ):
            client.get(f"{server.url}/", headers={"X-Key": "secret\r\nX-Evil: 1"})
        assert "secret" not in str(caught.value)
        assert server.requests == []
    finally:
        server.stop()


def _self_signed(tmp_path: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 (an IP SAN), made here: no network, no fixtures."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "imggo-test")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def test_https_is_verified_and_kept_alive(tmp_path: Path) -> None:
    cert, key = _self_signed(tmp_path)
    server = Server()
    server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_context.load_cert_chain(cert, key)
    server.httpd.socket = server_context.wrap_socket(server.httpd.socket, server_side=True)
    url = server.url.replace("http://", "https://")
    try:
        trusting = ssl.create_default_context(cafile=str(cert))
        with httpx.Client(transport=StdlibTransport(ssl_context=trusting)) as client:
            for i in range(3):
                r = client.post(f"{url}/", content=f"s{i}".encode(), headers={"X-Test": "t"})
                assert r.content == f"echo:s{i}:t".encode()
        assert server.connections == 1
        # The system's trust store does not know this certificate: refused, as it must be.
        with (
            httpx.Client(transport=StdlibTransport()) as client,
            pytest.raises(httpx.ConnectError, match="TLS"),
        ):
            client.post(f"{url}/", content=b"x", headers={"X-Test": "t"})
    finally:
        server.stop()
