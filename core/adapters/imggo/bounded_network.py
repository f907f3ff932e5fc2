"""httpx's synchronous client, with every wait of an exchange ending at one deadline.

httpx's timeouts are per network operation and it has no total timeout
(encode/httpx#1450): a server that trickles a byte every half second - in the body, in
the headers, or as an endless run of `100 Continue` - never trips a per-read timeout.
httpcore lets a client bring its own network backend (`ConnectionPool(network_backend=)`,
httpcore's documented extension point), and every socket wait of an exchange goes
through it: the connect, the TLS handshake, each send and each read. Ours gives each of
those waits only the time left before the exchange's deadline, and refuses to start one
once it has passed, so no server can hold an exchange past its bound however it
spreads its bytes. The deadline is per thread: a synchronous exchange runs wholly on
its caller's thread.

Why not the async client on a private event loop (what this replaced): a cancel scope
bounds an exchange just as well, but asyncio and anyio are ~55 modules a cold start
imports before its first call; this module is ~100 lines over the sockets httpcore
already uses. What is ours is small: the bound on each wait, a send loop that bounds
each send (httpcore's would give every send of one write the same timeout), a bounded
name look-up, and the glue httpx's own HTTPTransport has (request and response
conversion, httpcore's exceptions as httpx's), since that transport has no way to take a
network backend.

- The TLS handshake is one bounded wait: CPython gives `do_handshake` one deadline for
  all its reads and writes when the socket has a timeout.
- Names are looked up on a daemon thread the caller waits for within its bound (the C
  resolver cannot be interrupted); an IP address needs no look-up.
- A proxy the environment names (proxies.py) is an `httpcore.HTTPProxy` pool over the
  same backend, so the connect to it, the CONNECT tunnel and the TLS through the tunnel
  are waits like any other. TLS inside TLS (an https:// proxy tunnelling to an https://
  ImgGo) is ours too: httpcore's own waits on the outer socket with one timeout per
  call, however many reads a trickled record takes.
"""

from __future__ import annotations

import contextlib
import functools
import ipaddress
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any, TypeVar

import httpcore
import httpx

from core.adapters.imggo.proxies import ProxyRoutes
from core.ports import Resolver
from core.service.ssrf import system_resolver

T = TypeVar("T")


class Deadlines(threading.local):
    """The deadline (a `time.monotonic()` value) of the exchange running on each thread;
    None outside an exchange, where the per-operation timeouts alone apply."""

    at: float | None = None

    @contextlib.contextmanager
    def within(self, seconds: float) -> Iterator[None]:
        previous, self.at = self.at, time.monotonic() + seconds
        try:
            yield
        finally:
            self.at = previous

    def bound(self, timeout: float | None, expired: type[Exception]) -> float | None:
        """The time one wait may take: its own timeout, cut to what is left."""
        if self.at is None:
            return timeout
        left = self.at - time.monotonic()
        if left <= 0:
            raise expired("the exchange's deadline has passed")
        return left if timeout is None else min(timeout, left)


class BoundedStream(httpcore.NetworkStream):
    """A connection whose every wait is cut to the thread's deadline."""

    def __init__(self, inner: httpcore.NetworkStream, deadlines: Deadlines) -> None:
        self._inner = inner
        self._deadlines = deadlines

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        # One recv: the bound is exact.
        return self._inner.read(max_bytes, self._deadlines.bound(timeout, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        sock: socket.socket | None = self._inner.get_extra_info("socket")
        if sock is None:  # not a socket of httpcore's sync backend: bound the whole write
            self._inner.write(buffer, self._deadlines.bound(timeout, httpcore.WriteTimeout))
            return
        view = memoryview(buffer)
        try:
            while view:
                sock.settimeout(self._deadlines.bound(timeout, httpcore.WriteTimeout))
                view = view[sock.send(view) :]
        except TimeoutError as exc:
            raise httpcore.WriteTimeout(exc) from exc
        except OSError as exc:
            raise httpcore.WriteError(exc) from exc

    def close(self) -> None:
        self._inner.close()

    def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.NetworkStream:
        if self._inner.get_extra_info("ssl_object") is not None:
            # Already TLS (to an https:// proxy): httpcore's TLS in TLS would wait on
            # that socket itself, and its socket is no place for our send loop.
            return TlsInTlsStream(self, ssl_context, server_hostname, timeout)
        bound = self._deadlines.bound(timeout, httpcore.ConnectTimeout)
        return BoundedStream(
            self._inner.start_tls(ssl_context, server_hostname, bound), self._deadlines
        )

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


class TlsInTlsStream(httpcore.NetworkStream):
    """TLS through a stream that is TLS already: the inner TLS runs on memory buffers
    (`ssl.SSLObject`) and its records go through the outer bounded stream, so each of
    its waits is one of the outer stream's, cut to the deadline."""

    _RECORD_BYTES = 16384  # one TLS record: what a read asks the outer stream for
    _WRITE_BYTES = 65536  # encrypted and sent at a time, not the whole body at once

    def __init__(
        self,
        outer: BoundedStream,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None,
        timeout: float | None,
    ) -> None:
        self._outer = outer
        self._incoming, self._outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        self._tls = ssl_context.wrap_bio(
            self._incoming, self._outgoing, server_hostname=server_hostname
        )
        try:
            self._run(self._tls.do_handshake, timeout)
        except ssl.SSLError as exc:  # kept as the cause: errors.py reads a TLS failure there
            raise httpcore.ConnectError(exc) from exc

    def _run(self, step: Callable[[], T], timeout: float | None) -> T:
        """`step` on the TLS object, feeding it the outer stream's bytes until it is done."""
        while True:
            try:
                result = step()
            except ssl.SSLWantReadError:
                self._flush(timeout)
                data = self._outer.read(self._RECORD_BYTES, timeout)
                if data:
                    self._incoming.write(data)
                else:
                    self._incoming.write_eof()
                continue
            self._flush(timeout)
            return result

    def _flush(self, timeout: float | None) -> None:
        pending = self._outgoing.read()
        if pending:
            self._outer.write(pending, timeout)

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        try:
            return self._run(functools.partial(self._tls.read, max_bytes), timeout)
        except (ssl.SSLZeroReturnError, ssl.SSLEOFError):
            return b""  # the end of the stream, as an SSLSocket reports it by default
        except ssl.SSLError as exc:
            raise httpcore.ReadError(exc) from exc

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        view = memoryview(buffer)
        try:
            while view:
                chunk = view[: self._WRITE_BYTES]
                view = view[self._run(functools.partial(self._tls.write, chunk), timeout) :]
        except ssl.SSLError as exc:
            raise httpcore.WriteError(exc) from exc

    def close(self) -> None:
        self._outer.close()

    def get_extra_info(self, info: str) -> Any:
        if info == "ssl_object":
            return self._tls
        if info == "socket":
            return None  # bytes written to it would skip this TLS
        return self._outer.get_extra_info(info)


class BoundedBackend(httpcore.NetworkBackend):
    """httpcore's sync backend with the connect, including the name look-up, bounded."""

    def __init__(self, deadlines: Deadlines, resolver: Resolver = system_resolver) -> None:
        self._deadlines = deadlines
        self._resolver = resolver
        self._sync = httpcore.SyncBackend()

    def _addresses(self, host: str, timeout: float | None) -> list[str]:
        try:
            return [str(ipaddress.ip_address(host))]
        except ValueError:
            pass
        found: list[list[str] | BaseException] = []
        lookup = threading.Thread(
            target=lambda: found.append(_call(self._resolver, host)),
            name="imggo-resolve",
            daemon=True,
        )
        lookup.start()
        lookup.join(timeout)
        if not found:
            raise httpcore.ConnectTimeout(f"looking up {host} took longer than {timeout}s")
        result = found[0]
        if isinstance(result, BaseException):
            raise httpcore.ConnectError(result) from result
        return result

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        addresses = self._addresses(host, self._deadlines.bound(timeout, httpcore.ConnectTimeout))
        failure: Exception = httpcore.ConnectError(f"{host} has no address")
        for address in addresses:
            try:
                stream = self._sync.connect_tcp(
                    address,
                    port,
                    self._deadlines.bound(timeout, httpcore.ConnectTimeout),
                    local_address,
                    socket_options,
                )
            except httpcore.ConnectError as exc:
                failure = exc  # the next address may answer
                continue
            return BoundedStream(stream, self._deadlines)
        raise failure

    def sleep(self, seconds: float) -> None:
        self._sync.sleep(seconds)


def _call(resolver: Resolver, host: str) -> list[str] | BaseException:
    try:
        return resolver(host)
    except BaseException as exc:  # handed to the waiting caller, not lost on this thread
        return exc


# httpcore's exceptions as httpx's, most specific first (what httpx's own transport does).
_EXCEPTIONS: tuple[tuple[type[Exception], type[httpx.TransportError]], ...] = (
    (httpcore.PoolTimeout, httpx.PoolTimeout),
    (httpcore.ConnectTimeout, httpx.ConnectTimeout),
    (httpcore.ReadTimeout, httpx.ReadTimeout),
    (httpcore.WriteTimeout, httpx.WriteTimeout),
    (httpcore.TimeoutException, httpx.TimeoutException),
    (httpcore.ConnectError, httpx.ConnectError),
    (httpcore.ReadError, httpx.ReadError),
    (httpcore.WriteError, httpx.WriteError),
    (httpcore.NetworkError, httpx.NetworkError),
    (httpcore.UnsupportedProtocol, httpx.UnsupportedProtocol),
    (httpcore.RemoteProtocolError, httpx.RemoteProtocolError),
    (httpcore.LocalProtocolError, httpx.LocalProtocolError),
    (httpcore.ProtocolError, httpx.ProtocolError),
    (httpcore.ProxyError, httpx.ProxyError),
)


@contextlib.contextmanager
def _as_httpx() -> Iterator[None]:
    try:
        yield
    except Exception as exc:
        for theirs, ours in _EXCEPTIONS:
            if isinstance(exc, theirs):
                raise ours(str(exc)) from exc
        raise


class _Body(httpx.SyncByteStream):
    def __init__(self, stream: Iterable[bytes]) -> None:
        self._stream = stream

    def __iter__(self) -> Iterator[bytes]:
        with _as_httpx():
            yield from self._stream

    def close(self) -> None:
        close = getattr(self._stream, "close", None)
        if close is not None:
            with _as_httpx():
                close()


class BoundedTransport(httpx.BaseTransport):
    """An httpx transport over httpcore's connection pools and the bounded backend: one
    pool for ImgGo direct, and one for each proxy `proxies` sends a URL through."""

    def __init__(
        self,
        deadlines: Deadlines,
        *,
        limits: httpx.Limits,
        resolver: Resolver = system_resolver,
        proxies: ProxyRoutes[httpx.Proxy] | None = None,
    ) -> None:
        # Honours SSL_CERT_FILE / SSL_CERT_DIR, as httpx's default transport does; an
        # https:// proxy's certificate is checked against the same trust.
        self._ssl_context = httpx.create_ssl_context(trust_env=True)
        self._backend = BoundedBackend(deadlines, resolver)
        # Each pool, direct or through a proxy, has the whole size (as httpx's have).
        self._sizes: dict[str, Any] = {
            "max_connections": limits.max_connections,
            "max_keepalive_connections": limits.max_keepalive_connections,
            "keepalive_expiry": limits.keepalive_expiry,
        }
        self._direct = httpcore.ConnectionPool(
            ssl_context=self._ssl_context, network_backend=self._backend, **self._sizes
        )
        self._proxied = (ProxyRoutes() if proxies is None else proxies).map(self._through)

    def _through(self, proxy: httpx.Proxy) -> httpcore.HTTPProxy:
        url = proxy.url
        return httpcore.HTTPProxy(
            proxy_url=httpcore.URL(
                scheme=url.raw_scheme, host=url.raw_host, port=url.port, target=url.raw_path
            ),
            proxy_auth=proxy.raw_auth,
            proxy_headers=proxy.headers.raw,
            ssl_context=self._ssl_context,
            # httpcore refuses a TLS context for a plain http:// proxy.
            proxy_ssl_context=self._ssl_context if url.scheme == "https" else None,
            network_backend=self._backend,
            **self._sizes,
        )

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        core_request = httpcore.Request(
            method=request.method,
            url=httpcore.URL(
                scheme=url.raw_scheme, host=url.raw_host, port=url.port, target=url.raw_path
            ),
            headers=request.headers.raw,
            content=request.stream,
            extensions=request.extensions,
        )
        proxied = self._proxied.through(url)
        pool = self._direct if proxied is None else proxied
        with _as_httpx():
            answer = pool.handle_request(core_request)
        return httpx.Response(
            status_code=answer.status,
            headers=answer.headers,
            stream=_Body(answer.stream),  # type: ignore[arg-type]
            extensions=answer.extensions,
        )

    def close(self) -> None:
        self._direct.close()
        for pool in self._proxied.targets():
            pool.close()
