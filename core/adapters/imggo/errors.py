"""Turning ImgGo's failures (error envelopes, odd bodies, broken connections, hostile
framing) into ImageApiError, the one exception the rest of the code base handles.

Every code and every retry verdict for a failure is decided here. A retry is worth it
where asking again on a fresh connection can help - all our calls are idempotent - and
not where it cannot (a certificate that does not verify, an answer over our cap).

Nothing here sees request headers, so nothing here can leak the API key; the client
additionally scrubs the key out of any text it did not write itself.
"""

from __future__ import annotations

import json
import ssl
from typing import Any

import httpx

from core.ports import ImageApiError

# The statuses worth asking again (CONTRACT.md): rate limiting and server-side trouble.
RETRYABLE_STATUSES: frozenset[int] = frozenset({429, 500, 502, 503, 504})
# Only these carry a Retry-After we honour; elsewhere it is unusual and not promised.
RETRY_AFTER_STATUSES: frozenset[int] = frozenset({429, 503})
_SNIPPET_CHARS = 200


def parse_envelope(body: bytes) -> tuple[str, str, dict[str, Any]] | None:
    """(code, message, details) from `{"success": false, "error": {...}}`, or None when
    the body is not such an envelope (HTML from a proxy, empty, truncated JSON)."""
    try:
        payload = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(payload, dict):
        return None
    error = payload.get("error")
    if isinstance(error, str) and error:
        # Tolerate the looser `{"error": "message"}` shape some gateways produce.
        return ("", error, {})
    if not isinstance(error, dict):
        return None
    code = error.get("code")
    message = error.get("message")
    details = error.get("details")
    return (
        code if isinstance(code, str) else "",
        message if isinstance(message, str) else "",
        details if isinstance(details, dict) else {},
    )


def _snippet(body: bytes) -> str:
    text = body[: _SNIPPET_CHARS * 4].decode("utf-8", errors="replace")
    return " ".join(text.split())[:_SNIPPET_CHARS]


def error_from_response(
    status: int, body: bytes, *, retry_after_s: float | None = None
) -> ImageApiError:
    """The ImageApiError for a non-2xx answer. ImgGo's own code and message win; a body
    that is not an envelope still yields a clean error naming the status."""
    if status == 407:  # not ImgGo's answer: a forwarding proxy's, to an http:// ImgGo
        return proxy_refused(f"HTTP {status}", retryable=False)
    retryable = status in RETRYABLE_STATUSES
    envelope = parse_envelope(body)
    if envelope is not None:
        code, message, details = envelope
        return ImageApiError(
            message or f"ImgGo answered HTTP {status}",
            status=status,
            code=code or f"http_{status}",
            details=details,
            retryable=retryable,
            retry_after_s=retry_after_s,
        )
    extra: dict[str, Any] = {}
    snippet = _snippet(body)
    if snippet:
        # Kept out of the message (which ends up in job records) but handy when debugging.
        extra["body"] = snippet
    return ImageApiError(
        f"ImgGo answered HTTP {status}",
        status=status,
        code=f"http_{status}",
        details=extra,
        retryable=retryable,
        retry_after_s=retry_after_s,
    )


def invalid_response(message: str, *, status: int | None) -> ImageApiError:
    """A 2xx whose body is not what the spec promises. Retryable: asking the same
    question again (all our calls are idempotent) may well get a whole answer."""
    return ImageApiError(message, status=status, code="invalid_response", retryable=True)


def too_large(status: int, limit: int) -> ImageApiError:
    """An answer longer than the client accepts: the same question would get the same
    answer, so it is not retried."""
    return ImageApiError(
        f"ImgGo's answer is larger than the {limit} bytes this client accepts",
        status=status,
        code="response_too_large",
        retryable=False,
    )


def protocol_error(message: str) -> ImageApiError:
    """An answer that is not well-formed HTTP/1.1. Retryable: a fresh connection (maybe
    to another of ImgGo's servers) may well get a whole answer."""
    return ImageApiError(message, code="protocol_error", retryable=True)


def timed_out(seconds: float) -> ImageApiError:
    return ImageApiError(
        f"ImgGo did not answer within {seconds:.2f}s", code="timeout", retryable=True
    )


def proxy_refused(detail: str, *, retryable: bool) -> ImageApiError:
    """The proxy between us and ImgGo would not pass the call on. Its 4xx (407: it does
    not accept our credentials; 403: it will not reach that host) will not change on a
    retry; its 5xx (it could not reach ImgGo) may."""
    return ImageApiError(
        f"the proxy did not let the call through to ImgGo ({detail})",
        code="proxy_error",
        retryable=retryable,
    )


def client_closed() -> ImageApiError:
    """A call raced `close()`; the next attempt opens a fresh pool."""
    return ImageApiError(
        "the ImgGo client was closed mid-call", code="client_closed", retryable=True
    )


def _tls_failure(exc: BaseException) -> ssl.SSLError | None:
    """The ssl error behind `exc`, if any (httpx wraps it, sometimes twice)."""
    seen: BaseException | None = exc
    for _ in range(8):  # a chain is short, and may loop
        if seen is None or isinstance(seen, ssl.SSLError):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


def transport_error(exc: httpx.RequestError | OSError) -> ImageApiError:
    """What went wrong below HTTP's status line: connecting, TLS, timeouts, framing."""
    name = type(exc).__name__
    detail = f"{name}: {exc}" if str(exc) else name
    tls = _tls_failure(exc) if isinstance(exc, httpx.ConnectError) else None
    if tls is not None:
        # The handshake failed. A certificate that does not verify, or a server that
        # speaks no TLS we accept, will not change on a retry; a connection dropped
        # mid-handshake might.
        dropped = isinstance(tls, ssl.SSLEOFError | ssl.SSLZeroReturnError)
        return ImageApiError(
            f"TLS with ImgGo failed ({detail})", code="tls_error", retryable=dropped
        )
    if isinstance(exc, httpx.RemoteProtocolError):
        return protocol_error(f"ImgGo's answer is not valid HTTP ({detail})")
    if isinstance(exc, httpx.ProxyError):
        # A CONNECT refused; httpcore's message is the proxy's status and reason.
        return proxy_refused(detail, retryable=not str(exc).startswith("4"))
    if isinstance(exc, httpx.DecodingError):
        return invalid_response(f"ImgGo's answer could not be decoded ({detail})", status=None)
    if isinstance(exc, httpx.TimeoutException):
        code, retryable = "timeout", True
    elif isinstance(exc, httpx.ConnectError):
        code, retryable = "connect_error", True
    elif isinstance(exc, httpx.UnsupportedProtocol | httpx.LocalProtocolError):
        # A request we could not even build (bad URL scheme, illegal header).
        code, retryable = "request_error", False
    elif isinstance(exc, httpx.TransportError | OSError):
        # ReadError, WriteError, a connection reset mid-answer...
        code, retryable = "network_error", True
    else:
        code, retryable = "request_error", False
    return ImageApiError(f"ImgGo could not be reached ({detail})", code=code, retryable=retryable)
