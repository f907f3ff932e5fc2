"""Small stdlib HTTP servers for tests: 127.0.0.1, an ephemeral port, a daemon thread."""

from __future__ import annotations

import threading
from collections.abc import Callable
from http.server import ThreadingHTTPServer
from socketserver import BaseRequestHandler


def serve_on_loopback(handler: Callable[..., BaseRequestHandler]) -> ThreadingHTTPServer:
    """Start serving `handler` at once; stop it with `stop(httpd)`."""
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    httpd.daemon_threads = True
    # A short poll interval: shutdown() waits for the loop to notice.
    threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True).start()
    return httpd


def base_url(httpd: ThreadingHTTPServer) -> str:
    return f"http://127.0.0.1:{httpd.server_address[1]}"


def stop(httpd: ThreadingHTTPServer) -> None:
    httpd.shutdown()
    httpd.server_close()


class Blackhole:
    """A loopback port that completes TCP handshakes (the kernel's backlog) and never
    answers: what a store looks like when its network path is gone. A client without
    a total timeout waits on it forever."""

    def __init__(self) -> None:
        import socket

        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.bind(("127.0.0.1", 0))
        self._socket.listen(128)  # never accept()ed
        self.port = self._socket.getsockname()[1]

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.host}"

    def close(self) -> None:
        self._socket.close()
