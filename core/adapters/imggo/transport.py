"""A lean HTTP/1.1 transport for httpx, on the standard library's socket and ssl.

Why: a batch pushes hundreds of ingests a second through one process, and per-request
CPU - not ImgGo's latency - is what caps its throughput. httpx's default transport
(httpcore + h11) spends about a third of a request in pure-Python protocol handling;
http.client, the next candidate, parses every response's headers with the `email`
package, which profiled as the largest single cost left. This speaks the small part of
HTTP/1.1 the ImgGo API needs: one request at a time per connection, bodies framed by
Content-Length, chunked or connection close, interim 1xx answers skipped, keep-alive
with a small pool per origin. The httpx Client API (timeouts, headers, our retry loop)
is unchanged; only the wire part is swapped. Failures map to httpx's own exception
types, so retry decisions stay the same. Redirects are never followed.

It does not speak HTTP/2 or proxies: `ImggoClient` uses httpx's default transport
when HTTP(S)_PROXY is set in the environment.
"""

from __future__ import annotations

import contextlib
import re
import socket
import ssl
import threading
from typing import Any, BinaryIO

import httpx

_Origin = tuple[str, str, int]
_MAX_LINE = 64 * 1024
_MAX_HEADERS = 100
_SMALL_BODY = 64 * 1024  # sent in the same write as the head
# A header that could end its line early would let a value smuggle a second header.
_ILLEGAL_IN_HEADER = re.compile(rb"[\r\n\x00]")


class _Stale(Exception):
    """The server closed a pooled connection while it sat idle: nothing of the request
    was processed, so the request may go again on a fresh connection."""


class _Connection:
    __slots__ = ("rfile", "sock")

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.rfile: BinaryIO = sock.makefile("rb")

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.rfile.close()
        with contextlib.suppress(OSError):
            self.sock.close()


def _default_ssl_context() -> ssl.SSLContext:
    try:
        import certifi

        return ssl.create_default_context(cafile=certifi.where())
    except ImportError:  # pragma: no cover - certifi comes with httpx
        return ssl.create_default_context()


def _request_head(request: httpx.Request) -> bytes:
    lines = [b"%s %s HTTP/1.1\r\n" % (request.method.encode("ascii"), request.url.raw_path)]
    for name, value in request.headers.raw:
        if _ILLEGAL_IN_HEADER.search(name) or _ILLEGAL_IN_HEADER.search(value):
            # Never echo the value: it may be the API key.
            raise httpx.LocalProtocolError(
                f"illegal character in header {name.decode('latin-1')!r}", request=request
            )
        lines.append(b"%s: %s\r\n" % (name, value))
    lines.append(b"\r\n")
    return b"".join(lines)


def _protocol_error(message: str, request: httpx.Request) -> httpx.RemoteProtocolError:
    return httpx.RemoteProtocolError(f"bad HTTP answer: {message}", request=request)


def _read_line(rfile: BinaryIO, request: httpx.Request) -> bytes:
    line = rfile.readline(_MAX_LINE + 1)
    if len(line) > _MAX_LINE:
        raise _protocol_error("line too long", request)
    if not line:
        raise _protocol_error("the connection closed mid-answer", request)
    return line


def _read_headers(rfile: BinaryIO, request: httpx.Request) -> list[tuple[bytes, bytes]]:
    headers: list[tuple[bytes, bytes]] = []
    while True:
        line = _read_line(rfile, request)
        if line in (b"\r\n", b"\n"):
            return headers
        if line[:1] in (b" ", b"\t") and headers:  # obsolete folding: continues the last
            name, value = headers[-1]
            headers[-1] = (name, value + b" " + line.strip())
            continue
        name, sep, value = line.partition(b":")
        if not sep or not name.strip():
            raise _protocol_error("malformed header line", request)
        headers.append((name.strip(), value.strip()))
        if len(headers) > _MAX_HEADERS:
            raise _protocol_error("too many headers", request)


def _read_chunked(rfile: BinaryIO, request: httpx.Request) -> bytes:
    chunks: list[bytes] = []
    while True:
        size_field = _read_line(rfile, request).split(b";", 1)[0].strip()
        try:
            size = int(size_field, 16)
        except ValueError:
            raise _protocol_error("malformed chunk size", request) from None
        if size < 0:
            raise _protocol_error("malformed chunk size", request)
        if size == 0:
            _read_headers(rfile, request)  # trailers, ignored
            return b"".join(chunks)
        chunk = rfile.read(size)
        if len(chunk) < size:
            raise _protocol_error("the connection closed mid-chunk", request)
        chunks.append(chunk)
        if _read_line(rfile, request) not in (b"\r\n", b"\n"):
            raise _protocol_error("chunk not followed by CRLF", request)


def _read_response(
    conn: _Connection, request: httpx.Request
) -> tuple[int, list[tuple[bytes, bytes]], bytes, bool]:
    rfile = conn.rfile
    first = True
    while True:
        try:
            line = rfile.readline(_MAX_LINE + 1)
        except ConnectionResetError:
            if first:
                raise _Stale from None
            raise
        if not line:
            if first:
                raise _Stale
            raise _protocol_error("the connection closed before the status line", request)
        first = False
        parts = line.split(None, 2)
        if len(parts) < 2 or not parts[0].startswith(b"HTTP/1."):
            raise _protocol_error("malformed status line", request)
        try:
            status = int(parts[1])
        except ValueError:
            raise _protocol_error("malformed status code", request) from None
        if not 100 <= status <= 999:
            raise _protocol_error("malformed status code", request)
        headers = _read_headers(rfile, request)
        if status >= 200 or status == 101:
            break  # 100 Continue, 103 Early Hints...: interim, the real answer follows
    framing: dict[bytes, bytes] = {}
    for name, value in headers:
        lowered = name.lower()
        if lowered in (b"content-length", b"transfer-encoding", b"connection"):
            if lowered in framing and framing[lowered] != value:
                if lowered == b"content-length":
                    raise _protocol_error("conflicting Content-Length headers", request)
                value = framing[lowered] + b", " + value
            framing[lowered] = value
    connection = framing.get(b"connection", b"").lower()
    will_close = b"close" in connection or (
        parts[0] == b"HTTP/1.0" and b"keep-alive" not in connection
    )
    if request.method == "HEAD" or status in (204, 304) or status < 200:
        return status, headers, b"", will_close
    if b"chunked" in framing.get(b"transfer-encoding", b"").lower():
        return status, headers, _read_chunked(rfile, request), will_close
    if b"content-length" in framing:
        raw_length = framing[b"content-length"]
        if not raw_length.isdigit():
            raise _protocol_error("malformed Content-Length", request)
        length = int(raw_length)
        content = rfile.read(length) if length else b""
        if len(content) < length:
            raise _protocol_error("the connection closed mid-body", request)
        return status, headers, content, will_close
    return status, headers, rfile.read(), True  # delimited by the server closing


class StdlibTransport(httpx.BaseTransport):
    def __init__(
        self, *, max_idle_per_origin: int = 32, ssl_context: ssl.SSLContext | None = None
    ) -> None:
        self._max_idle = max_idle_per_origin
        self._ssl_context = ssl_context
        self._idle: dict[_Origin, list[_Connection]] = {}
        self._lock = threading.Lock()
        self._closed = False

    # ------------------------------------------------------------------ pool
    def _connect(
        self, origin: _Origin, timeout: float | None, request: httpx.Request
    ) -> _Connection:
        scheme, host, port = origin
        try:
            sock = socket.create_connection((host, port), timeout=timeout)
        except TimeoutError as exc:
            raise httpx.ConnectTimeout("connect timed out", request=request) from exc
        except OSError as exc:
            raise httpx.ConnectError(
                f"connect failed: {exc.strerror or exc}", request=request
            ) from exc
        try:
            # Small requests and answers: do not let Nagle hold the last segment back.
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if scheme == "https":
                if self._ssl_context is None:
                    self._ssl_context = _default_ssl_context()
                sock = self._ssl_context.wrap_socket(sock, server_hostname=host)
        except TimeoutError as exc:
            sock.close()
            raise httpx.ConnectTimeout("TLS handshake timed out", request=request) from exc
        except OSError as exc:  # ssl.SSLError is an OSError
            sock.close()
            raise httpx.ConnectError(f"TLS handshake failed: {exc}", request=request) from exc
        return _Connection(sock)

    def _checkout(self, origin: _Origin) -> _Connection | None:
        with self._lock:
            idle = self._idle.get(origin)
            return idle.pop() if idle else None

    def _checkin(self, origin: _Origin, conn: _Connection) -> None:
        with self._lock:
            idle = self._idle.setdefault(origin, [])
            if not self._closed and len(idle) < self._max_idle:
                idle.append(conn)
                return
        conn.close()

    # ------------------------------------------------------------------ requests
    def handle_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        if url.scheme not in ("http", "https"):
            raise httpx.UnsupportedProtocol(f"unsupported scheme {url.scheme!r}", request=request)
        origin: _Origin = (url.scheme, url.host, url.port or (443 if url.scheme == "https" else 80))
        timeouts: dict[str, Any] = request.extensions.get("timeout", {})
        head = _request_head(request)
        body = request.read()
        conn = self._checkout(origin)
        reused = conn is not None
        while True:
            if conn is None:
                conn = self._connect(origin, timeouts.get("connect"), request)
            try:
                status, headers, content, will_close = self._exchange(
                    conn, request, head, body, timeouts
                )
            except _Stale:
                conn.close()
                if reused:  # the server had closed this idle connection: try a fresh one
                    conn, reused = None, False
                    continue
                raise httpx.RemoteProtocolError(
                    "server disconnected without sending a response", request=request
                ) from None
            except BaseException:
                conn.close()
                raise
            break
        if will_close:
            conn.close()
        else:
            self._checkin(origin, conn)
        return httpx.Response(
            status, headers=headers, content=content, extensions={"http_version": b"HTTP/1.1"}
        )

    @staticmethod
    def _exchange(
        conn: _Connection,
        request: httpx.Request,
        head: bytes,
        body: bytes,
        timeouts: dict[str, Any],
    ) -> tuple[int, list[tuple[bytes, bytes]], bytes, bool]:
        phase = "write"
        try:
            conn.sock.settimeout(timeouts.get("write"))
            try:
                if len(body) <= _SMALL_BODY:
                    conn.sock.sendall(head + body)
                else:
                    conn.sock.sendall(head)
                    conn.sock.sendall(body)
            except (BrokenPipeError, ConnectionResetError):
                raise _Stale from None  # closed while idle; no answer can come
            phase = "read"
            conn.sock.settimeout(timeouts.get("read"))
            return _read_response(conn, request)
        except TimeoutError as exc:
            kind = httpx.WriteTimeout if phase == "write" else httpx.ReadTimeout
            raise kind(f"{phase} timed out", request=request) from exc
        except (_Stale, httpx.TransportError):
            raise
        except OSError as exc:
            kind_error = httpx.WriteError if phase == "write" else httpx.ReadError
            raise kind_error(f"{phase} failed: {exc.strerror or exc}", request=request) from exc

    def close(self) -> None:
        with self._lock:
            self._closed = True
            pools, self._idle = self._idle, {}
        for conns in pools.values():
            for conn in conns:
                conn.close()
