"""The local HTTP server: stdlib `http.server` translating to the core HTTP surface.

A thin translator like the cloud handlers: bytes in, core Request, core Response,
bytes out. It binds 127.0.0.1 by default and refuses oversized bodies before reading.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

from core.api.app import HttpApp, error_response
from core.api.http import Headers, Request, Response

log = logging.getLogger("imggo.server")

# Paths the local server answers itself before the core app (the dashboard): None
# means "not mine". The cloud handlers have no such hook.
LocalRoutes = Callable[[Request], Response | None]


def _handler_class(app: HttpApp, local_routes: LocalRoutes | None) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "imggo-fn"

        def _serve(self) -> None:
            parts = urlsplit(self.path)
            try:
                length = int(self.headers.get("Content-Length") or 0)
            except ValueError:
                length = -1
            if length < 0:
                self._send(error_response(400, "bad_request", "invalid Content-Length"))
                return
            if length > app.max_body_bytes:
                self._send(
                    error_response(413, "payload_too_large", "the body is too large"), close=True
                )
                return
            body = self.rfile.read(length) if length else b""
            request = Request(
                method=self.command,
                path=parts.path or "/",
                headers=Headers(self.headers.items()),
                query=Request.parse_query(parts.query),
                body=body,
            )
            local = local_routes(request) if local_routes is not None else None
            self._send(local if local is not None else app.handle(request))

        def _send(self, response: Response, *, close: bool = False) -> None:
            self.send_response(response.status)
            for name, value in response.headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(response.body)))
            if close:
                self.send_header("Connection", "close")
                self.close_connection = True
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(response.body)

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _serve

        def log_message(self, format: str, *args: object) -> None:
            log.info("%s %s", self.address_string(), format % args)

    return Handler


class LocalServer:
    def __init__(
        self,
        app: HttpApp,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        local_routes: LocalRoutes | None = None,
    ) -> None:
        self.app = app
        self._httpd = ThreadingHTTPServer((host, port), _handler_class(app, local_routes))
        self._httpd.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> LocalServer:
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        self._httpd.serve_forever()

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
