"""ImggoClient on the wire, against real loopback servers - well-behaved and hostile.

Each server here is a raw socket speaking verbatim bytes, so a test can send what no
HTTP library would: a body trickled a byte at a time, an endless run of
`100 Continue`, a `Content-Length` no memory can hold, both `Content-Length` and
`Transfer-Encoding`, a body far over the client's cap, a `101` on a connection the
client might reuse, a certificate for another name. Whatever the server does, the
client answers with a typed `ImageApiError` within its deadline, never a stray
exception (which the API layer would turn into a 500). A proxy here is such a server
too: it answers absolute-form requests itself and tunnels CONNECTs to loopback ports.
"""

from __future__ import annotations

import base64
import contextlib
import datetime
import gzip
import io
import ipaddress
import json
import logging
import os
import select
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, BinaryIO

import httpx
import pytest
from PIL import Image

from core.adapters.imggo.client import ImggoClient
from core.bootstrap import open_imggo
from core.config import Settings
from core.ports import ImageApiError, ImageUpload, Submission
from imggo_simulator import SimulatorConfig, SimulatorServer

KEY = "imggo_test_wire_0123456789abcdef"
JOB_ID = "770e8400-e29b-41d4-a716-446655440000"
JOB = json.dumps({"success": True, "data": {"id": JOB_ID, "status": "queued"}}).encode()
MIB = 1024 * 1024
GZIPPED = gzip.compress(b"hello")

Serve = Callable[[socket.socket, BinaryIO, int], None]


class RawServer:
    """A loopback address (127.0.0.1 unless told), an ephemeral port; each connection goes
    to `serve(conn, reader, n)` on its own thread (n counts connections from 1).
    Optionally TLS."""

    def __init__(
        self, serve: Serve, tls: ssl.SSLContext | None = None, host: str = "127.0.0.1"
    ) -> None:
        self.serve = serve
        self.tls = tls
        self.connections = 0
        self.stopped = threading.Event()
        self._open: list[socket.socket] = []
        ipv6 = ":" in host
        family = socket.AF_INET6 if ipv6 else socket.AF_INET
        self._sock = socket.create_server((host, 0), family=family)
        self._sock.settimeout(0.05)  # accept() wakes up to notice stop()
        port = self._sock.getsockname()[1]
        self.url = f"{'https' if tls else 'http'}://{f'[{host}]' if ipv6 else host}:{port}"
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self.stopped.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.connections += 1
            self._open.append(conn)
            threading.Thread(target=self._run, args=(conn, self.connections), daemon=True).start()

    def _run(self, conn: socket.socket, number: int) -> None:
        # A hostile server's client hangs up on it; that is the point, not an error.
        with contextlib.suppress(OSError), conn:
            conn.settimeout(5)
            if self.tls is not None:
                conn = self.tls.wrap_socket(conn, server_side=True)
            self.serve(conn, conn.makefile("rb"), number)

    def stop(self) -> None:
        self.stopped.set()
        self._sock.close()
        for conn in self._open:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
            conn.close()


def read_request(reader: BinaryIO) -> bytes | None:
    """One request (head and Content-Length body), or None when the client hung up."""
    head = b""
    while not head.endswith(b"\r\n\r\n"):
        line = reader.readline()
        if not line:
            return None
        head += line
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":", 1)[1])
    return head + reader.read(length)


def answer(body: bytes = JOB, status: bytes = b"200 OK", extra: bytes = b"") -> bytes:
    return (
        b"HTTP/1.1 " + status + b"\r\nContent-Type: application/json\r\n"
        b"Content-Length: %d\r\n" % len(body) + extra + b"\r\n" + body
    )


def once(raw: bytes) -> Serve:
    """Answer the first request with `raw`, verbatim, then hang up."""

    def serve(conn: socket.socket, reader: BinaryIO, number: int) -> None:
        if read_request(reader) is not None:
            conn.sendall(raw)

    return serve


def keep_alive(raw: bytes = answer(), delay_s: float = 0.0) -> Serve:
    def serve(conn: socket.socket, reader: BinaryIO, number: int) -> None:
        while read_request(reader) is not None:
            time.sleep(delay_s)
            conn.sendall(raw)

    return serve


def trickle(head: bytes, byte: bytes, every_s: float = 0.05, for_s: float = 3.0) -> Serve:
    """Send `head`, then `byte` every `every_s` seconds for `for_s` seconds."""

    def serve(conn: socket.socket, reader: BinaryIO, number: int) -> None:
        if read_request(reader) is None:
            return
        conn.sendall(head)
        give_up = time.monotonic() + for_s
        while time.monotonic() < give_up:
            time.sleep(every_s)
            conn.sendall(byte)

    return serve


def flood(head: bytes, block: bytes, total: int = 64 * MIB) -> Serve:
    """Send `head`, then `block` until `total` bytes have gone (or the client hangs up)."""

    def serve(conn: socket.socket, reader: BinaryIO, number: int) -> None:
        if read_request(reader) is None:
            return
        conn.sendall(head)
        for _ in range(total // len(block)):
            conn.sendall(block)

    return serve


@pytest.fixture
def server() -> Iterator[Callable[..., RawServer]]:
    started: list[RawServer] = []

    def start(
        serve: Serve, tls: ssl.SSLContext | None = None, host: str = "127.0.0.1"
    ) -> RawServer:
        started.append(RawServer(serve, tls, host))
        return started[-1]

    yield start
    for raw_server in started:
        raw_server.stop()


@pytest.fixture
def client() -> Iterator[Callable[..., ImggoClient]]:
    """An ImggoClient for a URL; one attempt unless a test asks for more, so what a test
    sees is what one attempt does."""
    opened: list[ImggoClient] = []

    def make(url: str, **kwargs: object) -> ImggoClient:
        kwargs.setdefault("max_attempts", 1)
        opened.append(ImggoClient(url, KEY, **kwargs))
        return opened[-1]

    yield make
    for imggo in opened:
        imggo.close()


def refused(call: Callable[[], object]) -> tuple[ImageApiError, float]:
    """The ImageApiError `call` raises, and how long it took to raise it."""
    started = time.monotonic()
    with pytest.raises(ImageApiError) as caught:
        call()
    return caught.value, time.monotonic() - started


def cut_off_at_its_bound(call: Callable[[], object]) -> None:
    """`call` ends as a retryable timeout within its bound (0.5 s in these tests; the
    rest is slack for a busy machine)."""
    error, took = refused(call)
    assert took < 1.2, f"held for {took:.2f}s"
    assert (error.code, error.retryable) == ("timeout", True)


# ------------------------------------------------------------------ well-behaved servers
def test_keep_alive_reuses_one_connection(server, client) -> None:
    raw = server(keep_alive())
    imggo = client(raw.url)
    for _ in range(5):
        assert imggo.get_job(JOB_ID).id == JOB_ID
    assert raw.connections == 1


def test_connection_close_is_honoured(server, client) -> None:
    raw = server(once(answer(extra=b"Connection: close\r\n")))
    imggo = client(raw.url)
    for _ in range(3):
        assert imggo.get_job(JOB_ID).id == JOB_ID
    assert raw.connections == 3


def test_an_idle_connection_the_server_dropped_is_replaced(server, client) -> None:
    raw = server(once(answer()))  # keep-alive by default, yet hangs up after one answer
    imggo = client(raw.url)  # one attempt: a replacement is not a retry
    for _ in range(3):
        time.sleep(0.05)  # let the hang-up reach the pooled socket
        assert imggo.get_job(JOB_ID).id == JOB_ID
    assert raw.connections == 3


def test_a_refused_connection_is_a_retryable_connect_error(client) -> None:
    with socket.socket() as bound:
        bound.bind(("127.0.0.1", 0))  # bound, never listening: the connection is refused
        imggo = client(f"http://127.0.0.1:{bound.getsockname()[1]}")
        error, _ = refused(lambda: imggo.get_job(JOB_ID))
    assert (error.code, error.retryable, error.status) == ("connect_error", True, None)


@pytest.mark.parametrize(
    ("raw", "body"),
    [
        (b"HTTP/1.1 200 OK\r\nContent-Type: text/csv\r\nContent-Length: 5\r\n\r\nhello", b"hello"),
        (
            b"HTTP/1.1 200 OK\r\nContent-Type: text/csv\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"3;ext=1\r\nhel\r\n2\r\nlo\r\n0\r\nX-Trailer: y\r\n\r\n",
            b"hello",
        ),
        (
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n"
            b"HTTP/1.1 200 OK\r\nContent-Type: text/csv\r\nContent-Length: 2\r\n\r\nok",
            b"ok",
        ),
        (b"HTTP/1.0 200 OK\r\nContent-Type: text/csv\r\n\r\nuntil close", b"until close"),
        (b"HTTP/1.1 204 No Content\r\nContent-Type: text/csv\r\n\r\n", b""),
        (
            b"HTTP/1.1 200 OK\r\nContent-Type: text/csv\r\nContent-Encoding: gzip\r\n"
            b"Content-Length: %d\r\n\r\n" % len(GZIPPED) + GZIPPED,
            b"hello",
        ),
    ],
    ids=[
        "content-length",
        "chunked-with-trailers",
        "interim-1xx",
        "close-delimited",
        "204",
        "gzip",
    ],
)
def test_response_framings(server, client, raw: bytes, body: bytes) -> None:
    imggo = client(server(once(raw)).url)
    assert imggo.export(JOB_ID, "csv") == ("text/csv", body)


def test_pool_keeps_as_many_connections_as_calls_in_flight(server, client) -> None:
    # More than httpx's default keep-alive pool (20): a pool sized to the calls in
    # flight reuses every connection in the second round instead of reopening some.
    in_flight = 24
    raw = server(keep_alive(delay_s=0.1))
    imggo = client(raw.url, max_connections=in_flight)
    with ThreadPoolExecutor(in_flight) as pool:
        for _ in range(2):
            jobs = list(pool.map(lambda _: imggo.get_job(JOB_ID), range(in_flight)))
            assert len(jobs) == in_flight
    assert raw.connections == in_flight


def test_the_composition_root_sizes_the_pool_to_the_batch_concurrency(server) -> None:
    in_flight = 24
    raw = server(keep_alive(delay_s=0.1))
    settings = Settings(imggo_base_url=raw.url, imggo_api_key=KEY, batch_concurrency=in_flight)
    imggo = open_imggo(settings)
    try:
        with ThreadPoolExecutor(in_flight) as pool:
            for _ in range(2):
                list(pool.map(lambda _: imggo.get_job(JOB_ID), range(in_flight)))
    finally:
        imggo.close()
    assert raw.connections == in_flight


def test_pool_never_opens_more_connections_than_its_size(server, client) -> None:
    raw = server(keep_alive(delay_s=0.05))
    imggo = client(raw.url, max_connections=2, timeout_s=5.0)
    with ThreadPoolExecutor(6) as pool:
        assert len(list(pool.map(lambda _: imggo.get_job(JOB_ID), range(6)))) == 6
    assert raw.connections == 2


# ------------------------------------------------------------------ hostile servers
@pytest.mark.parametrize(
    "raw",
    [
        b"HTTP/1.1 2OO OK\r\nContent-Length: 0\r\n\r\n",
        b"SPDY/9 200 OK\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort",
        b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
        b"HTTP/1.1 200 OK\r\nno colon here\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: xchunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"2\r\n{}\r\n0\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: " + b"9" * 30 + b"\r\n\r\n{}",
    ],
    ids=[
        "status",
        "protocol",
        "truncated",
        "two-lengths",
        "header",
        "chunk-size",
        "not-chunked",
        "length-and-chunked",
        "30-digit-length",
    ],
)
def test_broken_framing_is_a_retryable_protocol_error(server, client, raw: bytes) -> None:
    imggo = client(server(once(raw)).url)
    error, _ = refused(lambda: imggo.get_job(JOB_ID))
    assert (error.code, error.retryable, error.status) == ("protocol_error", True, None)
    assert KEY not in error.message


def test_a_body_that_does_not_decode_is_a_retryable_invalid_response(server, client) -> None:
    raw = answer(body=b"not gzip at all", extra=b"Content-Encoding: gzip\r\n")
    imggo = client(server(once(raw)).url)
    error, _ = refused(lambda: imggo.get_job(JOB_ID))
    assert (error.code, error.retryable) == ("invalid_response", True)


@pytest.mark.parametrize("bound", ["deadline", "timeout_s"])
@pytest.mark.parametrize(
    "serve",
    [
        trickle(b"HTTP/1.1 200 OK\r\nContent-Length: 200\r\n\r\n", b"x"),
        trickle(b"HTTP/1.1 200 OK\r\nX-Slow: ", b"a"),
        trickle(b"", b"HTTP/1.1 100 Continue\r\n\r\n", every_s=0.01),
        trickle(b"", b"", every_s=0.5),  # silence
    ],
    ids=["trickled-body", "trickled-headers", "endless-100-continue", "silent"],
)
def test_no_server_holds_a_call_past_its_bound(server, client, serve: Serve, bound: str) -> None:
    url = server(serve).url
    if bound == "deadline":
        imggo = client(url, timeout_s=10.0)
        error, took = refused(lambda: imggo.get_job(JOB_ID, deadline=time.monotonic() + 0.5))
    else:
        imggo = client(url, timeout_s=0.5)
        error, took = refused(lambda: imggo.get_job(JOB_ID))
    assert took < 1.2, f"held for {took:.2f}s"
    assert (error.code, error.retryable) == ("timeout", True)


def test_a_length_no_memory_holds_is_refused_before_reading(server, client) -> None:
    raw = b"HTTP/1.1 200 OK\r\nContent-Length: " + b"9" * 19 + b"\r\n\r\n{}"
    imggo = client(server(trickle(raw, b"", for_s=2.0)).url, timeout_s=5.0)
    error, took = refused(lambda: imggo.get_job(JOB_ID))
    assert (error.code, error.retryable) == ("response_too_large", False)
    assert error.status == 200 and took < 1.0


@pytest.mark.parametrize(
    "head",
    [
        b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nFFFFFFFFFFFFFFFF\r\n",
    ],
    ids=["close-delimited", "huge-chunk"],
)
def test_a_body_far_over_the_cap_is_cut_off(server, client, head: bytes) -> None:
    imggo = client(server(flood(head, b"x" * MIB)).url, timeout_s=10.0)
    error, took = refused(lambda: imggo.get_job(JOB_ID))
    assert (error.code, error.retryable) == ("response_too_large", False)
    assert took < 3.0


def test_the_cap_is_set_per_client(server, client) -> None:
    raw = answer(body=b'{"success": true, "data": "' + b"x" * 2000 + b'"}')
    imggo = client(server(keep_alive(raw)).url, max_response_bytes=1000)
    error, _ = refused(lambda: imggo.get_job(JOB_ID))
    assert error.code == "response_too_large"
    assert "1000" in error.message


def test_an_unasked_for_101_is_an_error_and_its_connection_never_reused(server, client) -> None:
    switching = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: other\r\nConnection: Upgrade\r\n\r\n"

    def serve(conn: socket.socket, reader: BinaryIO, number: int) -> None:
        first = True
        while read_request(reader) is not None:
            # The upgraded connection speaks another protocol from here on; it answers
            # HTTP only so that a client that wrongly reused it would not notice.
            conn.sendall(switching if number == 1 and first else answer())
            first = False

    raw = server(serve)
    imggo = client(raw.url)
    error, _ = refused(lambda: imggo.get_job(JOB_ID))
    assert imggo.get_job(JOB_ID).id == JOB_ID
    assert raw.connections == 2
    # We never ask to upgrade, so a 101 is a broken answer, not a status to act on.
    assert (error.code, error.retryable) == ("protocol_error", True)


# ------------------------------------------------------------------ TLS
def _certificate(tmp_path: Path, name: str) -> tuple[Path, Path]:
    """A self-signed certificate for `name` (an IP address or a DNS name), made here:
    no network, no fixtures."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    try:
        san: x509.GeneralName = x509.IPAddress(ipaddress.ip_address(name))
    except ValueError:
        san = x509.DNSName(name)
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([san]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp_path / f"{name}.pem", tmp_path / f"{name}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def _tls_context(tmp_path: Path, name: str) -> tuple[ssl.SSLContext, Path]:
    """A server's TLS context for `name`, and the certificate a client must trust."""
    cert, key = _certificate(tmp_path, name)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    return context, cert


def _tls_server(
    server: Callable[..., RawServer], tmp_path: Path, name: str
) -> tuple[RawServer, Path]:
    context, cert = _tls_context(tmp_path, name)
    return server(keep_alive(), tls=context), cert


def test_https_is_verified_and_kept_alive(server, client, tmp_path, monkeypatch) -> None:
    raw, cert = _tls_server(server, tmp_path, "127.0.0.1")
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))  # trust this certificate, and only it
    imggo = client(raw.url)
    for _ in range(3):
        assert imggo.get_job(JOB_ID).id == JOB_ID
    assert raw.connections == 1


def test_a_certificate_for_another_name_is_refused(server, client, tmp_path, monkeypatch) -> None:
    raw, cert = _tls_server(server, tmp_path, "not-imggo.example")
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))  # trusted, but not for 127.0.0.1
    imggo = client(raw.url, max_attempts=3)
    error, _ = refused(lambda: imggo.get_job(JOB_ID))
    assert (error.code, error.retryable, error.status) == ("tls_error", False, None)
    assert raw.connections == 1  # a retry cannot change the certificate: none was made


def test_an_unknown_certificate_authority_is_refused(server, client, tmp_path) -> None:
    raw, _ = _tls_server(server, tmp_path, "127.0.0.1")
    imggo = client(raw.url)  # the default trust store has never heard of it
    error, _ = refused(lambda: imggo.get_job(JOB_ID))
    assert (error.code, error.retryable) == ("tls_error", False)


# ------------------------------------------------------------------ every wait is bounded
def test_a_silent_tls_handshake_is_bounded(server, client) -> None:
    def serve(conn: socket.socket, reader: BinaryIO, number: int) -> None:
        time.sleep(3)  # accepts the connection, says nothing: no ServerHello

    raw = server(serve)
    imggo = client(raw.url.replace("http://", "https://"), timeout_s=10.0)
    cut_off_at_its_bound(lambda: imggo.get_job(JOB_ID, deadline=time.monotonic() + 0.5))


def test_a_server_that_reads_slowly_cannot_hold_an_upload(server, client) -> None:
    def serve(conn: socket.socket, reader: BinaryIO, number: int) -> None:
        give_up = time.monotonic() + 4
        while time.monotonic() < give_up:  # 16 MiB a second: every send gets going
            conn.recv(MIB)
            time.sleep(0.05)

    raw = server(serve)
    imggo = client(raw.url, timeout_s=0.5)
    upload = ImageUpload(data=b"x" * (64 * MIB), filename="big.png", content_type="image/png")
    submission = Submission(pattern_id="p", idempotency_key="k1", upload=upload)
    cut_off_at_its_bound(lambda: imggo.submit(submission))


def test_a_name_is_looked_up_by_the_injected_resolver_and_tls_checks_that_name(
    server, client, tmp_path, monkeypatch
) -> None:
    raw, cert = _tls_server(server, tmp_path, "imggo.test")
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))
    port = int(raw.url.rsplit(":", 1)[1])
    asked: list[str] = []

    def resolve(host: str) -> list[str]:
        asked.append(host)
        return ["127.0.0.1"]

    imggo = client(f"https://imggo.test:{port}", resolver=resolve)
    assert imggo.get_job(JOB_ID).id == JOB_ID
    assert imggo.get_job(JOB_ID).id == JOB_ID
    assert asked == ["imggo.test"]  # once: the connection is kept
    assert raw.connections == 1


def test_a_look_up_that_hangs_is_bounded(client) -> None:
    release = threading.Event()

    def resolve(host: str) -> list[str]:
        release.wait(5)
        return []

    imggo = client("http://imggo.test:8080", resolver=resolve, timeout_s=0.5)
    try:
        error, took = refused(lambda: imggo.get_job(JOB_ID))
    finally:
        release.set()
    assert took < 1.2, f"held for {took:.2f}s"
    assert (error.code, error.retryable) == ("timeout", True)


def test_a_name_that_does_not_resolve_is_a_retryable_connect_error(client) -> None:
    def resolve(host: str) -> list[str]:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    imggo = client("http://imggo.test:8080", resolver=resolve)
    error, _ = refused(lambda: imggo.get_job(JOB_ID))
    assert (error.code, error.retryable) == ("connect_error", True)


# ------------------------------------------------------------------ proxies
PROXY_VARIABLES = ("http_proxy", "https_proxy", "all_proxy", "no_proxy")
USER = b"imggo-user"
# ImgGo's host in the proxy tests: loopback always goes direct, so a test that shows a
# proxy is used needs a name that is not loopback. Never looked up in DNS: the client is
# given `resolve`, the test proxy maps it to 127.0.0.1 itself, and httpx's own client,
# compared with ours, is given `only_numeric_and_imggo_test` for its look-ups.
IMGGO = "imggo.test"


@pytest.fixture(autouse=True)
def no_proxies_but_a_tests_own(monkeypatch) -> None:
    """No test here sees the proxies of the shell running it (they would take loopback
    calls elsewhere); monkeypatch takes back whatever a test sets."""
    for name in list(os.environ):
        if name.lower() in PROXY_VARIABLES:
            monkeypatch.delenv(name)


def resolve(host: str) -> list[str]:
    """The client's resolver here: imggo.test is 127.0.0.1, any other name is unknown."""
    if host != IMGGO:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
    return ["127.0.0.1"]


def only_numeric_and_imggo_test(monkeypatch) -> None:
    """httpx's own client takes no resolver: its look-ups (socket.getaddrinfo) answer
    imggo.test with 127.0.0.1 and an address with itself, and any other name fails
    without asking DNS (AI_NUMERICHOST)."""
    real = socket.getaddrinfo

    def getaddrinfo(
        host: str,
        port: int | str | None,
        family: int = 0,
        kind: int = 0,
        proto: int = 0,
        flags: int = 0,
    ) -> list[tuple[Any, ...]]:
        host = "127.0.0.1" if host == IMGGO else host
        return real(host, port, family, kind, proto, flags | socket.AI_NUMERICHOST)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


def imggo_url(raw: RawServer, host: str = IMGGO) -> str:
    """`raw`'s URL with `host` for its address."""
    scheme = raw.url.split("://", 1)[0]
    return f"{scheme}://{host}:{port_of(raw)}"


def header(request: bytes, name: bytes) -> bytes | None:
    for line in request.split(b"\r\n")[1:]:
        key, _, value = line.partition(b":")
        if key.strip().lower() == name:
            return value.strip()
    return None


def basic(credentials: bytes) -> bytes:
    return b"Basic " + base64.b64encode(credentials)


def _tunnel(client: socket.socket, port: int, every_s: float) -> None:
    """Relay bytes both ways between the client and 127.0.0.1:port until either hangs up;
    with `every_s`, the server's bytes one at a time, that far apart."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as upstream:
        while True:
            ready, _, _ = select.select([client, upstream], [], [], 5)
            if not ready:
                return
            for source in ready:
                data = source.recv(65536)
                if isinstance(source, ssl.SSLSocket):
                    while source.pending():  # decrypted already: select() cannot see it
                        data += source.recv(source.pending())
                if not data:
                    return
                if source is client:
                    upstream.sendall(data)
                    continue
                step = 1 if every_s else len(data)
                for at in range(0, len(data), step):
                    time.sleep(every_s)
                    client.sendall(data[at : at + step])


def proxy(seen: list[bytes], credentials: bytes | None = None, every_s: float = 0.0) -> Serve:
    """An HTTP proxy. Each request (head and body) goes to `seen`; an absolute-form one it
    answers itself, as ImgGo would; a CONNECT to 127.0.0.1 or imggo.test (which it maps to
    127.0.0.1 itself, never asking DNS) it answers 200 and tunnels (anything else is
    refused: a test touches loopback only), trickling the tunnel's bytes with `every_s`.
    With `credentials`, a request without them as Proxy-Authorization gets a 407."""

    def serve(conn: socket.socket, reader: BinaryIO, number: int) -> None:
        while (request := read_request(reader)) is not None:
            seen.append(request)
            if credentials is not None and header(request, b"proxy-authorization") != basic(
                credentials
            ):
                conn.sendall(
                    b"HTTP/1.1 407 Proxy Authentication Required\r\n"
                    b'Proxy-Authenticate: Basic realm="test"\r\nContent-Length: 0\r\n\r\n'
                )
                continue
            method, target, _ = request.split(b" ", 2)
            if method != b"CONNECT":
                conn.sendall(answer())
                continue
            host, _, port = target.rpartition(b":")
            if host not in (b"127.0.0.1", IMGGO.encode()):
                conn.sendall(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")
                return
            conn.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
            _tunnel(conn, int(port), every_s)
            return

    return serve


def port_of(raw: RawServer) -> int:
    return int(raw.url.rsplit(":", 1)[1])


def _trust(tmp_path: Path, monkeypatch, *certs: Path) -> None:
    """Trust these certificates, and only them (SSL_CERT_FILE is one file)."""
    bundle = tmp_path / "trusted.pem"
    bundle.write_bytes(b"".join(cert.read_bytes() for cert in certs))
    monkeypatch.setenv("SSL_CERT_FILE", str(bundle))


@pytest.mark.parametrize(
    ("scheme", "environment", "route"),
    [
        ("http", {}, "direct"),
        ("http", {"HTTP_PROXY": "{proxy}"}, "proxy"),
        ("http", {"http_proxy": "{proxy}"}, "proxy"),
        ("http", {"HTTP_PROXY": "127.0.0.1:{proxy_port}"}, "proxy"),  # no scheme: http://
        ("http", {"HTTPS_PROXY": "{proxy}"}, "direct"),
        ("http", {"ALL_PROXY": "{proxy}"}, "proxy"),
        ("https", {"HTTPS_PROXY": "{proxy}"}, "proxy"),
        ("https", {"HTTP_PROXY": "{proxy}"}, "direct"),
        ("https", {"all_proxy": "{proxy}"}, "proxy"),
        ("https", {"ALL_PROXY": "http://127.0.0.1:9", "HTTPS_PROXY": "{proxy}"}, "proxy"),
        ("http", {"HTTP_PROXY": "{proxy}", "NO_PROXY": "imggo.test"}, "direct"),
        ("https", {"HTTPS_PROXY": "{proxy}", "no_proxy": "other.test, imggo.test"}, "direct"),
        ("http", {"HTTP_PROXY": "{proxy}", "NO_PROXY": "*"}, "direct"),
        ("http", {"HTTP_PROXY": "{proxy}", "NO_PROXY": "imggo.test:{port}"}, "direct"),
        ("http", {"HTTP_PROXY": "{proxy}", "NO_PROXY": "imggo.test:{proxy_port}"}, "proxy"),
        ("http", {"HTTP_PROXY": "{proxy}", "NO_PROXY": "https://imggo.test"}, "proxy"),
        # httpx's own rule: NO_PROXY matches the URL's host, not the address it resolves to.
        ("http", {"HTTP_PROXY": "{proxy}", "NO_PROXY": "127.0.0.1"}, "proxy"),
    ],
    ids=[
        "none",
        "HTTP_PROXY",
        "http_proxy",
        "no-scheme",
        "HTTPS_PROXY-not-for-http",
        "ALL_PROXY",
        "https-HTTPS_PROXY",
        "https-HTTP_PROXY-not-for-https",
        "https-all_proxy",
        "https-own-scheme-before-ALL_PROXY",
        "NO_PROXY-host",
        "https-no_proxy-list",
        "NO_PROXY-star",
        "NO_PROXY-port",
        "NO_PROXY-another-port",
        "NO_PROXY-another-scheme",
        "NO_PROXY-address-not-the-name",
    ],
)
def test_the_environment_picks_the_proxy_httpx_would_pick(
    server, client, tmp_path, monkeypatch, scheme: str, environment: dict[str, str], route: str
) -> None:
    seen: list[bytes] = []
    through = server(proxy(seen))
    if scheme == "https":
        target, cert = _tls_server(server, tmp_path, IMGGO)
        monkeypatch.setenv("SSL_CERT_FILE", str(cert))
    else:
        target = server(keep_alive())
    names = {"proxy": through.url, "proxy_port": port_of(through), "port": port_of(target)}
    for name, value in environment.items():
        monkeypatch.setenv(name, value.format(**names))

    assert client(imggo_url(target), resolver=resolve).get_job(JOB_ID).id == JOB_ID
    ours = "proxy" if seen else "direct"
    seen.clear()
    only_numeric_and_imggo_test(monkeypatch)
    with httpx.Client() as theirs:  # httpx's own transport, and its own reading of the env
        assert theirs.get(f"{imggo_url(target)}/api/jobs/{JOB_ID}").status_code == 200
    httpx_route = "proxy" if seen else "direct"
    assert (ours, httpx_route) == (route, route)


@pytest.mark.parametrize(
    ("host", "listen"),
    [
        ("127.0.0.1", "127.0.0.1"),
        ("127.1.2.3", "127.1.2.3"),  # all of 127.0.0.0/8
        ("localhost", "127.0.0.1"),
        ("LocalHost", "127.0.0.1"),
        ("api.localhost", "127.0.0.1"),
        ("[::1]", "::1"),
    ],
)
@pytest.mark.parametrize(
    ("scheme", "variable"),
    [("http", "HTTP_PROXY"), ("https", "HTTPS_PROXY"), ("http", "ALL_PROXY")],
)
def test_loopback_imggo_goes_direct_whatever_the_proxy_variables_say(
    server, client, tmp_path, monkeypatch, host: str, listen: str, scheme: str, variable: str
) -> None:
    # Our deliberate difference from httpx (which would proxy all of these): a loopback
    # ImgGo is the simulator or a tunnel on this machine, which no proxy can reach.
    seen: list[bytes] = []
    through = server(proxy(seen))
    name = host.strip("[]").lower()
    tls = None
    if scheme == "https":
        tls, cert = _tls_context(tmp_path, name)
        monkeypatch.setenv("SSL_CERT_FILE", str(cert))
    target = server(keep_alive(), tls=tls, host=listen)
    monkeypatch.setenv(variable, through.url)
    monkeypatch.setenv("NO_PROXY", "imggo.test")  # a NO_PROXY that does not name it

    def loopback(asked: str) -> list[str]:
        assert asked == name  # only the names are looked up; the addresses need none
        return ["127.0.0.1"]

    imggo = client(imggo_url(target, host), resolver=loopback)
    assert imggo.get_job(JOB_ID).id == JOB_ID
    assert (seen, through.connections, target.connections) == ([], 0, 1)


def test_a_proxy_that_is_not_there_does_not_stand_between_us_and_the_simulator(
    monkeypatch,
) -> None:
    # `make demo` behind a corporate proxy: HTTP_PROXY names a proxy this machine's
    # loopback is out of reach of (here: nothing listens there at all).
    png = io.BytesIO()
    Image.new("RGB", (8, 8), (200, 30, 30)).save(png, format="PNG")
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:1")
    with SimulatorServer(SimulatorConfig(processing_s=0.01)) as simulator:
        imggo = ImggoClient(simulator.url, "imggo_test_simulator", max_attempts=1)
        try:
            upload = ImageUpload(data=png.getvalue(), filename="a.png", content_type="image/png")
            job = imggo.submit(
                Submission(pattern_id="invoice", idempotency_key="k1", upload=upload)
            )
            assert imggo.get_job(job.id).id == job.id
        finally:
            imggo.close()


@pytest.mark.parametrize(
    ("no_proxy", "route"),
    [
        ("api.imggo.test", "direct"),
        ("imggo.test", "direct"),  # the domain and its subdomains
        (".imggo.test", "direct"),  # its subdomains
        (".api.imggo.test", "proxy"),  # not the host itself
        ("API.IMGGO.TEST", "direct"),
        ("other.test,api.imggo.test:{port}", "direct"),
        ("api.imggo.test:{proxy_port}", "proxy"),
        ("ggo.test", "proxy"),  # a domain, not a suffix
    ],
)
def test_no_proxy_names_hosts_and_domains_as_httpx_does(
    server, client, monkeypatch, no_proxy: str, route: str
) -> None:
    # httpx's own client is not asked here; these are its rules, as httpx 0.28 applies them.
    seen: list[bytes] = []
    through = server(proxy(seen))
    target = server(keep_alive())
    asked: list[str] = []

    def resolve(host: str) -> list[str]:
        asked.append(host)
        return ["127.0.0.1"]

    names = {"port": port_of(target), "proxy_port": port_of(through)}
    monkeypatch.setenv("HTTP_PROXY", through.url)
    monkeypatch.setenv("NO_PROXY", no_proxy.format(**names))
    imggo = client(f"http://api.imggo.test:{port_of(target)}", resolver=resolve)
    assert imggo.get_job(JOB_ID).id == JOB_ID
    assert ("proxy" if seen else "direct") == route
    assert asked == ([] if seen else ["api.imggo.test"])  # the proxy looks the name up


def test_an_http_proxy_gets_the_absolute_form_and_a_connect_for_https(
    server, client, tmp_path, monkeypatch
) -> None:
    seen: list[bytes] = []
    through = server(proxy(seen))
    plain = server(keep_alive())
    tls, cert = _tls_server(server, tmp_path, IMGGO)
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))
    monkeypatch.setenv("HTTP_PROXY", through.url)
    monkeypatch.setenv("HTTPS_PROXY", through.url)
    assert client(imggo_url(plain), resolver=resolve).get_job(JOB_ID).id == JOB_ID
    secure = client(imggo_url(tls), resolver=resolve)
    for _ in range(3):
        assert secure.get_job(JOB_ID).id == JOB_ID
    assert seen[0].startswith(f"GET {imggo_url(plain)}/api/jobs/{JOB_ID} HTTP/1.1\r\n".encode())
    assert header(seen[0], b"authorization") == f"Bearer {KEY}".encode()
    # The key goes inside the tunnel's TLS: the proxy sees the CONNECT, and only once.
    assert len(seen) == 2
    assert seen[1].startswith(f"CONNECT {IMGGO}:{port_of(tls)} HTTP/1.1\r\n".encode())
    assert KEY.encode() not in seen[1]
    assert (plain.connections, tls.connections) == (0, 1)


def test_tls_through_an_https_proxy_is_tls_inside_tls(
    server, client, tmp_path, monkeypatch
) -> None:
    proxy_context, proxy_cert = _tls_context(tmp_path, "127.0.0.1")
    context, cert = _tls_context(tmp_path, IMGGO)
    _trust(tmp_path, monkeypatch, proxy_cert, cert)
    seen: list[bytes] = []
    through = server(proxy(seen), tls=proxy_context)
    target = server(keep_alive(), tls=context)
    monkeypatch.setenv("HTTPS_PROXY", through.url)
    imggo = client(imggo_url(target), resolver=resolve)
    upload = ImageUpload(data=b"x" * MIB, filename="big.png", content_type="image/png")
    assert imggo.submit(Submission(pattern_id="p", idempotency_key="k1", upload=upload)).id
    assert imggo.get_job(JOB_ID).id == JOB_ID
    assert len(seen) == 1 and seen[0].startswith(f"CONNECT {IMGGO}:".encode())
    assert target.connections == 1


@pytest.mark.parametrize(
    ("scheme", "serve"),
    [
        ("http", trickle(b"HTTP/1.1 200 OK\r\nContent-Length: 200\r\n\r\n", b"x")),
        ("http", trickle(b"", b"", every_s=0.5)),
        ("https", trickle(b"", b"", every_s=0.5)),
        ("https", trickle(b"HTTP/1.1 200 Connection established\r\nX-Slow: ", b"a")),
        ("https", trickle(b"HTTP/1.1 200 Connection established\r\n\r\n", b"", every_s=0.5)),
    ],
    ids=[
        "trickled-answer",
        "silent-answer",
        "silent-connect",
        "trickled-connect-reply",
        "tunnel-without-tls",
    ],
)
def test_no_proxy_holds_a_call_past_its_deadline(
    server, client, monkeypatch, scheme: str, serve: Serve
) -> None:
    through = server(serve)
    monkeypatch.setenv(f"{scheme.upper()}_PROXY", through.url)
    # Never reached direct: nothing listens on port 9.
    imggo = client(f"{scheme}://{IMGGO}:9", resolver=resolve, timeout_s=10.0)
    cut_off_at_its_bound(lambda: imggo.get_job(JOB_ID, deadline=time.monotonic() + 0.5))
    assert through.connections >= 1  # the proxy was asked (a stray connection may add one)


@pytest.mark.parametrize("proxy_scheme", ["http", "https"])
def test_a_proxy_that_trickles_the_tunnel_cannot_hold_its_tls_past_the_deadline(
    server, client, tmp_path, monkeypatch, proxy_scheme: str
) -> None:
    # A byte at a time: no TLS record, the handshake's included, ever arrives whole. Through
    # an https:// proxy that is TLS inside TLS, whose every read must be bounded too.
    proxy_context, proxy_cert = _tls_context(tmp_path, "127.0.0.1")
    context, cert = _tls_context(tmp_path, IMGGO)
    _trust(tmp_path, monkeypatch, proxy_cert, cert)
    tls = proxy_context if proxy_scheme == "https" else None
    through = server(proxy([], every_s=0.005), tls=tls)
    target = server(keep_alive(), tls=context)
    monkeypatch.setenv("HTTPS_PROXY", through.url)
    imggo = client(imggo_url(target), resolver=resolve, timeout_s=10.0)
    cut_off_at_its_bound(lambda: imggo.get_job(JOB_ID, deadline=time.monotonic() + 0.5))
    assert through.connections >= 1  # the proxy was asked (a stray connection may add one)


@pytest.mark.parametrize("scheme", ["http", "https"])
def test_proxy_credentials_go_as_proxy_authorization_and_nowhere_else(
    server, client, tmp_path, monkeypatch, caplog, scheme: str
) -> None:
    seen: list[bytes] = []
    through = server(proxy(seen, credentials=USER + b":s3cr@t"))
    if scheme == "https":
        target, cert = _tls_server(server, tmp_path, IMGGO)
        monkeypatch.setenv("SSL_CERT_FILE", str(cert))
    else:
        target = server(keep_alive())
    variable = f"{scheme.upper()}_PROXY"
    # Percent-encoded in the URL, as an @ in a password must be.
    monkeypatch.setenv(variable, through.url.replace("//", "//imggo-user:s3cr%40t@"))
    assert client(imggo_url(target), resolver=resolve).get_job(JOB_ID).id == JOB_ID
    assert header(seen[0], b"proxy-authorization") == basic(USER + b":s3cr@t")

    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv(variable, through.url.replace("//", "//imggo-user:wr0ng%40pw@"))
    imggo = client(imggo_url(target), resolver=resolve, max_attempts=3)
    error, _ = refused(lambda: imggo.get_job(JOB_ID))
    assert header(seen[1], b"proxy-authorization") == basic(USER + b":wr0ng@pw")
    # The proxy's no will not change on a retry; it names the proxy, not ImgGo.
    assert (error.code, error.retryable, len(seen)) == ("proxy_error", False, 2)
    assert "proxy" in error.message and "407" in error.message
    said = error.message + json.dumps(error.details) + repr(imggo) + caplog.text
    for secret in ("wr0ng", "s3cr", basic(USER + b":wr0ng@pw").decode()[6:]):
        assert secret not in said


@pytest.mark.parametrize(
    ("variable", "url"),
    [
        ("ALL_PROXY", "socks5://127.0.0.1:1080"),
        ("all_proxy", "socks5h://imggo-user:hunter2@127.0.0.1:1080"),
        ("HTTPS_PROXY", "socks4://127.0.0.1:1080"),
    ],
)
def test_a_socks_proxy_is_refused_when_the_client_is_built(
    monkeypatch, variable: str, url: str
) -> None:
    monkeypatch.setenv(variable, url)
    with pytest.raises(ValueError) as caught:
        ImggoClient("https://127.0.0.1:9", KEY)
    message = str(caught.value)
    assert variable in message and "SOCKS" in message and "http://" in message
    assert "hunter2" not in message and "imggo-user" not in message
    # What httpx would not use either is no reason to refuse.
    monkeypatch.setenv("NO_PROXY", "*")
    ImggoClient("https://127.0.0.1:9", KEY).close()


def test_a_proxy_url_that_does_not_parse_is_refused_without_quoting_it(monkeypatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://imggo-user:hunter2@127.0.0.1:80a")
    with pytest.raises(ValueError) as caught:
        ImggoClient("https://127.0.0.1:9", KEY)
    assert "HTTPS_PROXY" in str(caught.value)
    assert "hunter2" not in str(caught.value) and caught.value.__suppress_context__
