"""API Gateway / Function URL events <-> the core's Request and Response.

Three event shapes reach the HTTP function:
- HTTP API, payload 2.0, and Lambda Function URLs (same shape): `rawPath`,
  `rawQueryString`, single-valued `headers` (repeats joined by commas), `cookies`
  apart from the headers, `requestContext.http.method`.
- REST API, payload 1.0 (proxy integration): `path`, `httpMethod`, `headers` and
  `multiValueHeaders`, `queryStringParameters` and `multiValueQueryStringParameters`.
Bodies arrive base64-encoded when `isBase64Encoded` (HTTP API does so for every
non-text body, so binary image uploads come through intact).

Answers use the keys both payload versions accept (statusCode, headers, body,
isBase64Encoded); a body that is not text is sent base64-encoded.

Hand-written rather than Powertools' event data classes: they are the same few
lookups, and importing the data-class package costs the cold start ~20 ms.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from core.api.http import Headers, Request, Response

_TEXT_TYPES = (
    "application/json",
    "application/xml",
    "application/yaml",
    "application/x-yaml",
    "application/javascript",
    "application/x-www-form-urlencoded",
)


class NotAnHttpEventError(ValueError):
    """The event is not from API Gateway or a Function URL."""


@dataclass(frozen=True, eq=False)
class HttpEvent:
    """An API Gateway or Function URL event, read into the core's Request."""

    request: Request
    request_id: str | None  # API Gateway's / the Function URL's request id
    version: str  # "1.0" or "2.0"


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def _body(event: Mapping[str, Any]) -> bytes:
    raw = event.get("body")
    if raw is None or raw == "":
        return b""
    if event.get("isBase64Encoded"):
        try:
            return base64.b64decode(str(raw), validate=True)
        except ValueError as exc:
            raise NotAnHttpEventError("isBase64Encoded is set but the body is not base64") from exc
    return str(raw).encode("utf-8")


def _v2(event: Mapping[str, Any]) -> HttpEvent:
    context = event.get("requestContext") or {}
    method = _text((context.get("http") or {}).get("method")).upper()
    path = _text(event.get("rawPath")) or "/"
    stage = _text(context.get("stage"))
    # A named stage (not $default) is part of rawPath; the route table knows no stages.
    if stage and stage != "$default" and path.startswith(f"/{stage}/"):
        path = path[len(stage) + 1 :]
    headers = Headers(
        (_text(name), _text(value)) for name, value in (event.get("headers") or {}).items()
    )
    cookies = event.get("cookies")
    if cookies:
        headers["Cookie"] = "; ".join(_text(c) for c in cookies)
    request = Request(
        method=method,
        path=path,
        headers=headers,
        query=Request.parse_query(_text(event.get("rawQueryString"))),
        body=_body(event),
    )
    return HttpEvent(request, context.get("requestId"), "2.0")


def _v1(event: Mapping[str, Any]) -> HttpEvent:
    context = event.get("requestContext") or {}
    headers = Headers()
    multi = event.get("multiValueHeaders") or {}
    for name, value in (event.get("headers") or {}).items():
        if name not in multi:
            headers[_text(name)] = _text(value)
    for name, values in multi.items():
        # Repeated headers as one comma-joined value, as HTTP allows and HTTP API sends.
        headers[_text(name)] = ",".join(_text(v) for v in values or [])
    # The multi-value map is the complete one; re-encode it so the core's parser keeps
    # its one rule for repeated names (first value wins).
    pairs: list[tuple[str, str]] = []
    multi_query = event.get("multiValueQueryStringParameters")
    if multi_query:
        for name, values in multi_query.items():
            pairs += [(_text(name), _text(v)) for v in values or []]
    else:
        pairs = [
            (_text(k), _text(v)) for k, v in (event.get("queryStringParameters") or {}).items()
        ]
    request = Request(
        method=_text(event.get("httpMethod")).upper(),
        path=_text(event.get("path")) or "/",
        headers=headers,
        query=Request.parse_query(urlencode(pairs)),
        body=_body(event),
    )
    return HttpEvent(request, context.get("requestId"), "1.0")


def parse_event(event: Any) -> HttpEvent:
    if not isinstance(event, Mapping):
        raise NotAnHttpEventError("the event is not a JSON object")
    if event.get("version") == "2.0" and "rawPath" in event:
        return _v2(event)
    if "httpMethod" in event and "path" in event:
        return _v1(event)
    raise NotAnHttpEventError(
        f"not an API Gateway (payload 1.0 or 2.0) or Function URL event: keys {sorted(event)[:8]}"
    )


def is_text(content_type: str | None) -> bool:
    media = (content_type or "").split(";", 1)[0].strip().lower()
    return (
        media.startswith("text/")
        or media in _TEXT_TYPES
        or media.endswith(("+json", "+xml", "+yaml"))
    )


def to_event_response(response: Response) -> dict[str, Any]:
    headers = response.headers.as_dict()
    if not response.body:
        return {
            "statusCode": response.status,
            "headers": headers,
            "body": "",
            "isBase64Encoded": False,
        }
    if is_text(response.headers.get("content-type")):
        try:
            return {
                "statusCode": response.status,
                "headers": headers,
                "body": response.body.decode("utf-8"),
                "isBase64Encoded": False,
            }
        except UnicodeDecodeError:
            pass  # declared text, but not UTF-8: send the bytes as they are
    return {
        "statusCode": response.status,
        "headers": headers,
        "body": base64.b64encode(response.body).decode("ascii"),
        "isBase64Encoded": True,
    }
