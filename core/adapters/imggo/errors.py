"""Turning ImgGo's failures (error envelopes, odd bodies, transport errors) into
ImageApiError, the one exception the rest of the code base handles.

Nothing here sees request headers, so nothing here can leak the API key; the client
additionally scrubs the key out of any text it did not write itself.
"""

from __future__ import annotations

import json
from typing import Any

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
