"""The local HTTP server behind `imggo-fn serve`: waitress around the WSGI translator.

Why waitress (against cheroot, uvicorn, granian and the stdlib's http.server):
- An asynchronous front end reads and parses every request - head, body, chunked
  bodies de-chunked, size limits enforced while reading - before a worker thread sees
  it, so a slow or half-sent request holds no thread, and a connection silent for
  `timeout_s` (mid-request or idle between requests) is closed. cheroot hands a
  connection to a worker thread as soon as its first bytes arrive; http.server keeps a
  thread per connection, forever.
- TCP_NODELAY by default, and a response leaves in one write: no Nagle stall.
- Every protocol-level error it answers itself (bad request line, 413, 431, 501 for a
  transfer coding it cannot decode, 500) goes through one class, the channel's
  `error_task_class`. Subclassing that is how our JSON envelope replaces its plain-text
  bodies, without patching the library. uvicorn (h11) and granian (hyper) write their
  protocol error answers in code no option reaches.
- Pure Python, no dependencies, ~25 ms to import (cheroot ~55 ms, uvicorn ~75 ms).
What it lacks is a graceful stop (its `close()` drops responses still being written),
so `stop()` below drains first: it stops accepting, lets requests in flight finish
within a grace period, then closes.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from waitress.adjustments import Adjustments
from waitress.channel import HTTPChannel
from waitress.server import TcpWSGIServer
from waitress.task import ErrorTask
from waitress.wasyncore import close_all

from core.api.app import HttpApp, error_response
from imggo_cli.wsgi import LocalRoutes, WsgiApp

log = logging.getLogger("imggo.server")

# waitress's own error statuses -> our stable error codes.
PROTOCOL_ERROR_CODES = {
    400: "bad_request",
    413: "payload_too_large",
    431: "headers_too_large",
    500: "internal_error",
    501: "not_implemented",
}
MAX_HEADER_BYTES = 64 * 1024
DEFAULT_TIMEOUT_S = 30.0
DEFAULT_THREADS = 16
_DRAIN_POLL_S = 0.02


class _JsonErrorTask(ErrorTask):  # type: ignore[misc]  # waitress's classes are untyped
    """waitress's ErrorTask with our error envelope as the body."""

    def execute(self) -> None:
        error = self.request.error
        response = error_response(
            error.code,
            PROTOCOL_ERROR_CODES.get(error.code, "bad_request"),
            str(error.body or error.reason),
        )
        self.status = f"{error.code} {error.reason}"
        self.response_headers.extend(response.headers.items())
        self.set_close_on_finish()
        self.content_length = len(response.body)
        self.write(response.body)


class _Channel(HTTPChannel):  # type: ignore[misc]
    error_task_class = _JsonErrorTask


class _Server(TcpWSGIServer):  # type: ignore[misc]
    channel_class = _Channel


class LocalServer:
    """`HttpApp` (and optional local routes) on a real loopback port.

    start() serves from a background thread; stop() drains, then closes."""

    def __init__(
        self,
        app: HttpApp,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        local_routes: LocalRoutes | None = None,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        threads: int = DEFAULT_THREADS,
    ) -> None:
        self.app = app
        self._map: dict[int, object] = {}
        adjustments = Adjustments(
            host=host,
            port=port,
            threads=threads,
            ident="imggo-fn",
            # One knob for both: a connection silent this long is closed, whether it is
            # half-way through a request or idle between two.
            channel_timeout=max(1, round(timeout_s)),
            cleanup_interval=max(1, min(30, round(timeout_s))),
            max_request_header_size=MAX_HEADER_BYTES,
            max_request_body_size=app.max_body_bytes,
            connection_limit=500,
            asyncore_use_poll=True,  # select() stops at 1024 descriptors
            expose_tracebacks=False,
            log_socket_errors=False,
        )
        # Raises OSError when the port is taken (the CLI turns that into one line).
        self._server = _Server(WsgiApp(app, local_routes), map=self._map, adj=adjustments)
        self._thread: threading.Thread | None = None
        self._stopped = False

    @property
    def url(self) -> str:
        host, port = self._server.effective_host, self._server.effective_port
        return f"http://[{host}]:{port}" if ":" in str(host) else f"http://{host}:{port}"

    def start(self) -> LocalServer:
        self._thread = threading.Thread(target=self._server.run, name="imggo-http", daemon=True)
        self._thread.start()
        return self

    def _in_loop(self, action: Callable[[], object]) -> None:
        """Run `action` on the server's own loop thread (its channels are not locked)."""
        self._server.trigger.pull_trigger(action)

    def stop(self, grace_s: float = 10.0) -> None:
        """Stop accepting, let requests in flight finish (at most `grace_s`), close."""
        if self._stopped:
            return
        self._stopped = True
        server = self._server
        if self._thread is None:  # never started: nothing in flight
            server.task_dispatcher.shutdown(timeout=0)
            close_all(self._map)
            return

        def stop_accepting() -> None:
            server.accepting = False
            server.del_channel()
            server.socket.close()

        def close_idle() -> None:
            # Idle: no request being served, nothing left to send. Close it (a keep-alive
            # client sees the connection end). A request still arriving is not in flight
            # yet: its connection closes too, or a slow client could hold the stop.
            for channel in list(server.active_channels.values()):
                if not channel.requests and not channel.total_outbufs_len:
                    channel.will_close = True

        self._in_loop(stop_accepting)
        deadline = time.monotonic() + grace_s
        while server.active_channels and time.monotonic() < deadline:
            self._in_loop(close_idle)
            time.sleep(_DRAIN_POLL_S)
        if server.active_channels:
            log.warning(
                "%d connection(s) still busy after %.0f s; closing them",
                len(server.active_channels),
                grace_s,
            )
        server.task_dispatcher.shutdown(timeout=max(0.0, deadline - time.monotonic()))
        self._in_loop(lambda: close_all(self._map))  # an empty map ends the loop
        self._thread.join(timeout=5)
