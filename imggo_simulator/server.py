"""The HTTP layer: a stdlib ThreadingHTTPServer on loopback around SimulatorApp.

HTTP/1.1 with keep-alive and an exact Content-Length on every answer, so pooled client
connections (httpx) are reused instead of reconnecting per request; Nagle is off so a
small answer is not held back waiting for an ACK. One thread per *connection* (not per
request), all daemons.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import signal
import socket
import socketserver
import sys
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import FrameType, TracebackType
from typing import Any
from urllib.parse import parse_qs, urlsplit

from .app import SimulatorApp
from .config import SimulatorConfig
from .http_types import ApiError, Request, Response

log = logging.getLogger(__name__)

# 10 MB image plus multipart framing and form fields.
MAX_BODY_BYTES = 12 * 1024 * 1024
_ERROR_CODES = {
    400: "BAD_REQUEST",
    408: "REQUEST_TIMEOUT",
    413: "PAYLOAD_TOO_LARGE",
    414: "URI_TOO_LONG",
    431: "HEADERS_TOO_LARGE",
    501: "NOT_IMPLEMENTED",
    505: "HTTP_VERSION_NOT_SUPPORTED",
}


# Request head limits, as http.server's own (it answers 431 beyond them).
_MAX_HEADER_LINE = 65536
_MAX_HEADERS = 100


class _BodyError(Exception):
    def __init__(self, error: ApiError) -> None:
        super().__init__(error.message)
        self.error = error


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "ImgGo-Simulator/1.0"
    disable_nagle_algorithm = True
    timeout = 120  # an idle keep-alive connection gives its thread back eventually
    server: _HTTPServer
    raw_requestline: bytes  # set by handle_one_request
    fields: dict[str, str]  # the request's headers, names lower-cased

    def version_string(self) -> str:
        return self.server_version

    def parse_request(self) -> bool:
        """http.server's checks, with a plain header reader instead of its `email`
        parser. That parser was most of the simulator's CPU per request: it even tries
        to parse the (absent) body of a multipart request, compiling a fresh regex for
        every new boundary. A slow simulator would make the benchmarks measure it."""
        self.command = None  # type: ignore[assignment]  # as http.server does
        # Not http.server's HTTP/0.9 default: an error answer keeps its status line.
        self.request_version = "HTTP/1.0"
        self.close_connection = True
        self.requestline = str(self.raw_requestline, "iso-8859-1").rstrip("\r\n")
        words = self.requestline.split()
        if not words:
            return False
        if len(words) != 3:
            self.send_error(400, f"Bad request syntax ({self.requestline!r})")
            return False
        command, path, version = words
        major, dot, minor = version.removeprefix("HTTP/").partition(".")
        if not version.startswith("HTTP/") or not (dot and major.isdigit() and minor.isdigit()):
            self.send_error(400, f"Bad request version ({version!r})")
            return False
        if len(major) > 10 or len(minor) > 10 or int(major) >= 2:
            self.send_error(505, f"Invalid HTTP version ({version})")
            return False
        self.request_version = version
        self.close_connection = (int(major), int(minor)) < (1, 1)
        # As http.server does (gh-87389): '//host/...' must not read as a network path.
        self.command, self.path = command, "/" + path.lstrip("/") if path[:2] == "//" else path
        fields: dict[str, str] = {}
        for count in range(_MAX_HEADERS + 1):
            line = self.rfile.readline(_MAX_HEADER_LINE + 1)
            if len(line) > _MAX_HEADER_LINE:
                self.send_error(431, "Line too long")
                return False
            if line in (b"\r\n", b"\n", b""):
                break
            if count == _MAX_HEADERS:
                self.send_error(431, "Too many headers")
                return False
            name, sep, value = line.decode("iso-8859-1").partition(":")
            if not sep or not name.strip():
                self.send_error(400, "Malformed header line")
                return False
            fields[name.strip().lower()] = value.strip()
        self.fields = fields
        connection = fields.get("connection", "").lower()
        if connection == "close":
            self.close_connection = True
        elif connection == "keep-alive":
            self.close_connection = False
        if fields.get("expect", "").lower() == "100-continue" and version >= "HTTP/1.1":
            return self.handle_expect_100()
        return True

    def do_GET(self) -> None:
        self._dispatch()

    do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = do_HEAD = do_GET

    def _dispatch(self) -> None:
        split = urlsplit(self.path)
        headers = self.fields
        try:
            body = self._read_body(headers)
        except _BodyError as exc:
            self.close_connection = True  # the unread body would poison the next request
            response = exc.error.to_response()
        else:
            request = Request(
                method=self.command,
                path=split.path,
                query=parse_qs(split.query, keep_blank_values=True),
                headers=headers,
                body=body,
            )
            response = self.server.app.handle(request)
        self._write(response)

    def _read_body(self, headers: dict[str, str]) -> bytes:
        if "chunked" in headers.get("transfer-encoding", "").lower():
            return self._read_chunked()
        raw = headers.get("content-length")
        if raw is None:
            return b""
        try:
            length = int(raw)
        except ValueError:
            length = -1
        if length < 0:
            raise _BodyError(ApiError(400, "BAD_REQUEST", "Invalid Content-Length header"))
        if length > MAX_BODY_BYTES:
            raise _BodyError(ApiError(413, "PAYLOAD_TOO_LARGE", "Request body too large"))
        return self.rfile.read(length) if length else b""

    def _read_chunked(self) -> bytes:
        chunks: list[bytes] = []
        total = 0
        while True:
            line = self.rfile.readline(1024)
            try:
                size = int(line.split(b";", 1)[0].strip(), 16)
            except ValueError:
                raise _BodyError(ApiError(400, "BAD_REQUEST", "Malformed chunked body")) from None
            if size == 0:
                while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                    pass  # trailers
                return b"".join(chunks)
            total += size
            if total > MAX_BODY_BYTES:
                raise _BodyError(ApiError(413, "PAYLOAD_TOO_LARGE", "Request body too large"))
            chunks.append(self.rfile.read(size))
            self.rfile.readline(16)  # the CRLF after each chunk

    def _write(self, response: Response) -> None:
        self.send_response(response.status)
        self.send_header("Content-Type", response.content_type)
        self.send_header("Content-Length", str(len(response.body)))
        for name, value in response.headers.items():
            self.send_header(name, value)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(response.body)

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        # http.server's own errors (bad request line, huge headers...) in the envelope too.
        self.close_connection = True
        error = ApiError(code, _ERROR_CODES.get(code, "HTTP_ERROR"), message or "HTTP error")
        response = error.to_response()
        try:
            self.send_response(code, message)
            self.send_header("Content-Type", response.content_type)
            self.send_header("Content-Length", str(len(response.body)))
            self.send_header("Connection", "close")
            self.end_headers()
            if self.command != "HEAD" and code >= 200 and code not in (204, 304):
                self.wfile.write(response.body)
        except OSError:
            pass  # the client is gone

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        if log.isEnabledFor(logging.DEBUG):  # skip the formatting cost unless wanted
            log.debug('"%s" %s', self.requestline, code)

    def log_message(self, format: str, *args: Any) -> None:
        log.debug(format, *args)


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128  # benchmarks open many connections at once

    def __init__(self, address: tuple[str, int], app: SimulatorApp) -> None:
        self.address_family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        self.app = app
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(address, _Handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind calls socket.getfqdn(): a reverse DNS lookup we don't need.
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name, self.server_port = str(host), int(port)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._connections_lock:
            self._connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._connections_lock:
            self._connections.discard(request)
        super().shutdown_request(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Clients that time out and hang up are routine here (chaos stalls): no tracebacks.
        exc = sys.exc_info()[1]
        if isinstance(exc, (ConnectionError, TimeoutError)):
            log.debug("connection from %s dropped: %s", client_address, exc)
            return
        log.exception("error while serving %s", client_address)

    def close_connections(self) -> None:
        """Cut idle keep-alive connections so a stopped server really stops answering."""
        with self._connections_lock:
            connections = list(self._connections)
        for conn in connections:
            with contextlib.suppress(OSError):  # already closed by the client
                conn.shutdown(socket.SHUT_RDWR)


class SimulatorServer:
    """The ImgGo API simulator on a real loopback port. Use as a context manager:

    with SimulatorServer(SimulatorConfig(processing_s=0.01)) as sim:
        httpx.get(f"{sim.url}/api/_health")
    """

    def __init__(
        self,
        config: SimulatorConfig | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        retention_clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """`retention_clock`: the monotonic seconds finished jobs age by before they are
        forgotten (config.job_retention_s); tests pass a manual one."""
        self._config = config if config is not None else SimulatorConfig()
        self._host = host
        self._port = port
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._stopped = False
        self._app = SimulatorApp(lambda: self._config, lambda: self.url, retention_clock)

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> SimulatorServer:
        if self._httpd is not None:
            return self
        if self._stopped:  # its worker threads are gone; make a new server instead
            raise RuntimeError("a stopped SimulatorServer cannot be restarted")
        self._httpd = _HTTPServer((self._host, self._port), self._app)
        self._app.start()
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.05},  # how long stop() may wait for the loop
            name="imggo-sim-http",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        httpd, self._httpd = self._httpd, None
        if httpd is None:
            return
        self._stopped = True
        httpd.shutdown()
        httpd.close_connections()
        httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=2)
        self._app.stop()

    def __enter__(self) -> SimulatorServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # ------------------------------------------------------------------ introspection
    @property
    def url(self) -> str:
        """Base URL such as http://127.0.0.1:54321; the API lives under /api/..."""
        if self._httpd is None:
            raise RuntimeError("SimulatorServer is not running: call start() first")
        host, port = self._httpd.server_address[:2]
        host = str(host)
        return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"

    @property
    def config(self) -> SimulatorConfig:
        """The live config: assign to its fields to change behaviour at runtime."""
        return self._config

    @config.setter
    def config(self, value: SimulatorConfig) -> None:
        self._config = value

    def stats(self) -> dict[str, Any]:
        """What GET /_sim/stats answers: per key id, unattributed and total counts of
        requests, 429s, ingests, jobs created and polls, and the configured limit."""
        return self._app.stats.snapshot(self._config.rate_limit_per_minute)

    def reset_stats(self) -> dict[str, Any]:
        """Zero the counters (not the rate-limit windows); returns them as they were."""
        return self._app.stats.reset(self._config.rate_limit_per_minute)

    def ingest_count(self) -> int:
        """Distinct jobs created (idempotent replays and refused requests not counted),
        forgotten ones included, since the start or reset_stats()."""
        return self._app.stats.totals().jobs_created

    def ingest_calls(self) -> int:
        """Ingest HTTP requests answered, including retries, replays and errors, since
        the start or reset_stats()."""
        return self._app.stats.totals().ingests

    def jobs(self) -> list[dict[str, Any]]:
        """A deep-copied snapshot of every job still kept, as GET /api/jobs/{id} shows it."""
        return copy.deepcopy(self._app.store.snapshot())

    def complete_now(self) -> None:
        """Finish every pending job immediately (webhooks are still sent asynchronously)."""
        self._app.complete_now()

    def webhook_stats(self) -> dict[str, int]:
        """Deliveries so far: sent, dropped (chaos), refused (host), failed."""
        return dict(self._app.webhooks.stats)


def serve_forever(
    config: SimulatorConfig | None = None,
    host: str = "127.0.0.1",
    port: int = 8787,
    *,
    ready: Callable[[SimulatorServer], None] | None = None,
) -> None:
    """Run a simulator until Ctrl-C or SIGTERM. `ready` is called once it listens (e.g. to
    print the URL when port=0)."""
    stop = threading.Event()
    server = SimulatorServer(config, host, port).start()
    previous: Any = None
    on_main_thread = threading.current_thread() is threading.main_thread()
    if on_main_thread:  # signal handlers can only be installed from the main thread

        def _terminate(signum: int, frame: FrameType | None) -> None:
            stop.set()

        previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        if ready is not None:
            ready(server)
        while not stop.wait(0.5):  # a timed wait keeps Ctrl-C responsive everywhere
            pass
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
        if on_main_thread and previous is not None:  # None: set outside Python; leave ours
            signal.signal(signal.SIGTERM, previous)
