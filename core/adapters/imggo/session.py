"""The ImgGo client's HTTP: one pooled `httpx.Client`, and one exchange (a request and
its whole answer) bounded in time and in size.

The bound in time is bounded_network's: every socket wait of an exchange, on whatever
connection the pool hands it, ends at the exchange's deadline, so a server that trickles
its answer cannot hold a call past it (httpx itself bounds each read, not the whole).

Through a proxy when the environment names one for ImgGo's URL (proxies.py), with the
same bound on every wait.

The answer is streamed, never buffered past `max_response_bytes`: ImgGo answers with
small JSON documents, a declared length over the cap is refused before a byte of the
body is read, and a body that runs past it is cut off there.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from http.cookiejar import CookieJar, DefaultCookiePolicy
from typing import Any

import httpx

from core.adapters.imggo.bounded_network import BoundedTransport, Deadlines
from core.adapters.imggo.errors import (
    client_closed,
    protocol_error,
    timed_out,
    too_large,
    transport_error,
)
from core.adapters.imggo.proxies import ProxyRoutes
from core.ports import Resolver
from core.service.ssrf import system_resolver


@dataclass(frozen=True, slots=True, eq=False)
class Reply:
    """An answer read whole: what the client needs of it, and nothing left open."""

    status: int
    headers: httpx.Headers
    content: bytes

    @property
    def is_success(self) -> bool:
        return 200 <= self.status < 300


def _no_cookies() -> CookieJar:
    """A jar whose policy accepts cookies from no domain: ImgGo authenticates by key and
    sets none, and a client that replayed one would be a surprise."""
    return CookieJar(policy=DefaultCookiePolicy(allowed_domains=[]))


class HttpSession:
    """The pooled connections. Thread-safe: each exchange runs on its caller's thread."""

    def __init__(
        self,
        *,
        transport: httpx.BaseTransport | None,
        max_connections: int,
        max_response_bytes: int,
        user_agent: str,
        resolver: Resolver = system_resolver,
        proxies: ProxyRoutes[httpx.Proxy] | None = None,
    ) -> None:
        # A forked child inherits this object and its sockets, which are the parent's.
        self.pid = os.getpid()
        self._max_response_bytes = max_response_bytes
        self._deadlines = Deadlines()
        # As many connections as calls in flight, all kept alive between calls: a warm
        # function reuses them (TLS handshakes are the slow part), and callers beyond
        # the size wait for a free one (within their own bound).
        limits = httpx.Limits(
            max_connections=max_connections, max_keepalive_connections=max_connections
        )
        self._client = httpx.Client(
            transport=transport
            or BoundedTransport(self._deadlines, limits=limits, resolver=resolver, proxies=proxies),
            headers={"User-Agent": user_agent},
            cookies=_no_cookies(),
            # A redirect is not part of ImgGo's API; following one could carry the key
            # somewhere unexpected.
            follow_redirects=False,
        )

    # ------------------------------------------------------------------ exchanges
    def exchange(self, method: str, url: httpx.URL, *, time_left: float, **request: Any) -> Reply:
        """One request and its whole answer within `time_left` seconds, or an
        ImageApiError. `request` holds httpx's request arguments (headers, params,
        json, data, files)."""
        try:
            with self._deadlines.within(time_left):
                built = self._client.build_request(method, url, timeout=time_left, **request)
                # Gathered into one body: httpx streams a multipart form as a socket
                # write per part header and part (a dozen per upload); one is cheaper.
                built.read()
                response = self._client.send(built, stream=True)
                try:
                    content = self._read(response)
                finally:
                    response.close()
        except httpx.TimeoutException:
            raise timed_out(time_left) from None
        except (httpx.RequestError, OSError) as exc:
            raise transport_error(exc) from exc
        except RuntimeError:
            if self._client.is_closed:  # close() ran meanwhile
                raise client_closed() from None
            raise
        return Reply(response.status_code, response.headers, content)

    def _read(self, response: httpx.Response) -> bytes:
        headers = response.headers
        if "transfer-encoding" in headers and "content-length" in headers:
            # RFC 9112 6.3: such a message "ought to be handled as an error" - it is how
            # response splitting starts; its connection is closed, not pooled.
            raise protocol_error("ImgGo's answer has both Content-Length and Transfer-Encoding")
        cap = self._max_response_bytes
        declared = headers.get("content-length", "")
        if declared.isdigit() and int(declared) > cap:  # h11 has checked it is one number
            raise too_large(response.status_code, cap)
        body = bytearray()
        for chunk in response.iter_bytes():
            body += chunk
            if len(body) > cap:
                raise too_large(response.status_code, cap)
        return bytes(body)

    # ------------------------------------------------------------------ lifecycle
    def close(self) -> None:
        """Close the pooled connections; a call racing this one fails as client_closed."""
        self._client.close()
