"""The ImgGo client's HTTP: one pooled `httpx.AsyncClient` on a private event loop, and
one exchange (a request and its whole answer) bounded in time and in size.

Why async under a synchronous client: httpx's timeouts are per network operation, and
httpx has no total timeout (encode/httpx#1450). A server that trickles a byte every
half second - in the body, in the headers, or as an endless run of `100 Continue` -
never trips a per-read timeout, and a thread blocked in a read cannot be interrupted.
A cancel scope around an async exchange can: `anyio.fail_after` ends the exchange at
its bound wherever it is, and httpcore then closes the connection (a half-read one is
never pooled). The loop runs on one daemon thread for the life of the session; the
callers' threads each hand it one exchange and wait, never longer than its bound.

The answer is streamed, never buffered past `max_response_bytes`: ImgGo answers with
small JSON documents, a declared length over the cap is refused before a byte of the
body is read, and a body that runs past it is cut off there.
"""

from __future__ import annotations

import asyncio
import os
import threading
from dataclasses import dataclass
from http.cookiejar import CookieJar, DefaultCookiePolicy
from typing import Any

import anyio
import httpx

from core.adapters.imggo.errors import (
    client_closed,
    protocol_error,
    timed_out,
    too_large,
    transport_error,
)

# How much longer than an exchange's own bound a caller waits for the loop to report.
# The exchange ends itself at its bound; this only matters if the loop cannot run.
_LOOP_GRACE_S = 1.0
_CLOSE_WAIT_S = 5.0


@dataclass(frozen=True, slots=True)
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
    """The pooled connections and the loop they live on. Thread-safe."""

    def __init__(
        self,
        *,
        transport: httpx.AsyncBaseTransport | None,
        max_connections: int,
        max_response_bytes: int,
        user_agent: str,
    ) -> None:
        # A forked child inherits this object but not the loop's thread.
        self.pid = os.getpid()
        self._max_response_bytes = max_response_bytes
        self._client = httpx.AsyncClient(
            transport=transport,
            # As many connections as calls in flight, all kept alive between calls: a
            # warm function reuses them (TLS handshakes are the slow part), and callers
            # beyond the size wait for a free one (within their own bound).
            limits=httpx.Limits(
                max_connections=max_connections, max_keepalive_connections=max_connections
            ),
            headers={"User-Agent": user_agent},
            cookies=_no_cookies(),
            # A redirect is not part of ImgGo's API; following one could carry the key
            # somewhere unexpected.
            follow_redirects=False,
        )
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run_loop, name="imggo-http", daemon=True)
        self._thread.start()

    def _run_loop(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_forever()
        finally:
            self._loop.close()

    # ------------------------------------------------------------------ exchanges
    def exchange(self, method: str, url: httpx.URL, *, time_left: float, **request: Any) -> Reply:
        """One request and its whole answer within `time_left` seconds, or an
        ImageApiError. `request` holds httpx's request arguments (headers, params,
        json, data, files)."""
        exchange = self._exchange(method, url, time_left, request)
        try:
            future = asyncio.run_coroutine_threadsafe(exchange, self._loop)
        except RuntimeError:  # the loop is closed: close() ran meanwhile
            exchange.close()
            raise client_closed() from None
        try:
            return future.result(timeout=time_left + _LOOP_GRACE_S)
        except TimeoutError:
            future.cancel()
            raise timed_out(time_left) from None

    async def _exchange(
        self, method: str, url: httpx.URL, time_left: float, request: dict[str, Any]
    ) -> Reply:
        try:
            with anyio.fail_after(time_left):
                built = self._client.build_request(method, url, timeout=time_left, **request)
                # Gathered into one body: httpx streams a multipart form as a socket
                # write per part header and part (a dozen per upload); one is cheaper.
                await built.aread()
                response = await self._client.send(built, stream=True)
                try:
                    content = await self._read(response)
                finally:
                    await response.aclose()
        except TimeoutError:
            raise timed_out(time_left) from None
        except (httpx.RequestError, OSError) as exc:
            raise transport_error(exc) from exc
        return Reply(response.status_code, response.headers, content)

    async def _read(self, response: httpx.Response) -> bytes:
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
        async for chunk in response.aiter_bytes():
            body += chunk
            if len(body) > cap:
                raise too_large(response.status_code, cap)
        return bytes(body)

    # ------------------------------------------------------------------ lifecycle
    def close(self, *, wait: bool = True) -> None:
        """Close the pooled connections and stop the loop. `wait=False` only starts
        that, which is safe from any thread (a finalizer may run on the loop's own)."""
        shutdown = self._shutdown()
        try:
            asyncio.run_coroutine_threadsafe(shutdown, self._loop)
        except RuntimeError:  # closed already
            shutdown.close()
            return
        if wait and threading.current_thread() is not self._thread:
            self._thread.join(timeout=_CLOSE_WAIT_S)

    async def _shutdown(self) -> None:
        try:
            await self._client.aclose()
        finally:
            self._loop.stop()
