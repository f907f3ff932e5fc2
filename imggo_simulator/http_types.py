"""Transport-neutral request/response values and the ImgGo JSON envelope.

The API logic (app.py) speaks only these types, so it can be exercised without sockets
and the HTTP layer (server.py) stays a thin adapter.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

JSON_CONTENT_TYPE = "application/json; charset=utf-8"


@dataclass(slots=True)
class Request:
    method: str
    path: str  # without the query string
    query: dict[str, list[str]]
    headers: dict[str, str]  # names lower-cased
    body: bytes

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())

    def query_one(self, name: str) -> str | None:
        values = self.query.get(name)
        return values[-1] if values else None


@dataclass(slots=True)
class Response:
    status: int
    body: bytes
    content_type: str = JSON_CONTENT_TYPE
    headers: dict[str, str] = field(default_factory=dict)


class ApiError(Exception):
    """An error answer; raised anywhere in the API logic and rendered as the envelope."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        details: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details or {}
        self.headers = headers or {}

    def to_response(self) -> Response:
        body = {
            "success": False,
            "error": {"code": self.code, "message": self.message, "details": self.details},
        }
        return Response(self.status, dumps(body), headers=dict(self.headers))


def dumps(value: Any) -> bytes:
    """An answer's body: compact like the real (Node) service, non-ASCII kept readable.
    The stdlib encoder is 4x faster than js_json's exact JSON.stringify, and nothing signs
    an answer; a lone surrogate (JSON allows "\\ud800" in a request) is written as the
    same escape JS writes, never a UnicodeEncodeError."""
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    # Surrogates only occur inside string literals, where \uXXXX is their JSON escape.
    return text.encode("utf-8", "backslashreplace")


def ok(data: Any, status: int = 200) -> Response:
    return Response(status, dumps({"success": True, "data": data}))


def bad_request(message: str, code: str = "VALIDATION_ERROR", **details: Any) -> ApiError:
    return ApiError(400, code, message, dict(details))


def not_found(message: str, code: str = "NOT_FOUND") -> ApiError:
    return ApiError(404, code, message)
