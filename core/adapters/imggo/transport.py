"""A lean HTTP/1.1 transport for httpx on top of the standard library's http.client.

Why: httpx's default transport (httpcore + h11) spends about a third of a request's CPU
in pure-Python protocol handling. A batch pushes hundreds of ingests a second through
one process, so that overhead - not ImgGo's latency - capped throughput. The httpx
Client API (timeouts, headers, our retry loop) is unchanged; only the wire part is
swapped. It keeps a small keep-alive pool per origin, maps failures to httpx's own
exception types (so retry decisions stay the same), and never follows redirects.

It does not speak HTTP/2 or proxies: `ImggoClient` uses httpx's default transport
when HTTP(S)_PROXY is set in the environment.
"""

from __future__ import annotations

import http.client
import ssl
import threading
from typing import Any

import httpx

_Origin = tuple[str, str, int]
# A pooled connection the server closed while idle fails on first use before any byte
# of a response arrives: that, and only that, is retried once on a fresh connection.
_STALE = (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError)


def _default_ssl_context() -> ssl.SSLContext:
    try:
        import certifi

        return ssl.create_default_context(cafile=certifi.where())
    except ImportError:  # pragma: no cover - certifi comes with httpx
        return ssl.create_default_context()


class StdlibTransport(httpx.BaseTransport):
    def __init__(
        self, *, max_idle_per_origin: int = 32, ssl_context: ssl.SSLContext | None = None
    ) -> None:
        self._max_idle = max_idle_per_origin
        self._ssl_context = ssl_context
        self._idle: dict[_Origin, list[http.client.HTTPConnection]] = {}
        self._lock = threading.Lock()
        self._closed = False

    # ------------------------------------------------------------------ pool
    def _new_connection(
        self, origin: _Origin, connect_timeout: float | None
    ) -> http.client.HTTPConnection:
        scheme, host, port = origin
        if scheme == "https":
            if self._ssl_context is None:
                self._ssl_context = _default_ssl_context()
            return http.client.HTTPSConnection(
                host, port, timeout=connect_timeout, context=self._ssl_context
            )
        return http.client.HTTPConnection(host, port, timeout=connect_timeout)

    def _checkout(self, origin: _Origin) -> http.client.HTTPConnection | None:
        with self._lock:
            idle = self._idle.get(origin)
            return idle.pop() if idle else None

    def _checkin(self, origin: _Origin, conn: http.client.HTTPConnection) -> None:
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
        port = url.port or (443 if url.scheme == "https" else 80)
        origin: _Origin = (url.scheme, url.host, port)
        timeouts: dict[str, Any] = request.extensions.get("timeout", {})
        body = request.read()
        conn = self._checkout(origin)
        reused = conn is not None
        while True:
            if conn is None:
                conn = self._new_connection(origin, timeouts.get("connect"))
            try:
                status, headers, content, will_close = self._exchange(conn, request, body, timeouts)
            except _STALE as exc:
                conn.close()
                if reused:  # the server had closed this idle connection: try a fresh one
                    conn, reused = None, False
                    continue
                raise httpx.RemoteProtocolError(
                    f"server disconnected: {exc}", request=request
                ) from exc
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
        conn: http.client.HTTPConnection,
        request: httpx.Request,
        body: bytes,
        timeouts: dict[str, Any],
    ) -> tuple[int, list[tuple[str, str]], bytes, bool]:
        phase = "connect"
        try:
            if conn.sock is None:
                conn.connect()
            phase = "write"
            conn.sock.settimeout(timeouts.get("write"))
            target = request.url.raw_path.decode("ascii")
            conn.putrequest(request.method, target, skip_host=True, skip_accept_encoding=True)
            for name, value in request.headers.raw:
                conn.putheader(name.decode("latin-1"), value.decode("latin-1"))
            conn.endheaders(body or None)
            phase = "read"
            conn.sock.settimeout(timeouts.get("read"))
            response = conn.getresponse()
            content = response.read()
            return response.status, response.getheaders(), content, bool(response.will_close)
        except _STALE:
            raise
        except TimeoutError as exc:
            timeouts_by_phase: dict[str, type[httpx.TimeoutException]] = {
                "connect": httpx.ConnectTimeout,
                "write": httpx.WriteTimeout,
            }
            raise timeouts_by_phase.get(phase, httpx.ReadTimeout)(
                f"{phase} timed out", request=request
            ) from exc
        except (http.client.HTTPException, ValueError) as exc:
            raise httpx.RemoteProtocolError(f"bad HTTP answer: {exc}", request=request) from exc
        except OSError as exc:
            errors_by_phase: dict[str, type[httpx.NetworkError]] = {
                "connect": httpx.ConnectError,
                "write": httpx.WriteError,
            }
            raise errors_by_phase.get(phase, httpx.ReadError)(
                f"{phase} failed: {exc.strerror or exc}", request=request
            ) from exc

    def close(self) -> None:
        with self._lock:
            self._closed = True
            pools, self._idle = self._idle, {}
        for conns in pools.values():
            for conn in conns:
                conn.close()
