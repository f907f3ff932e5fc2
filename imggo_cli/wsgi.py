"""WSGI environ -> core Request, core Response -> WSGI answer. Nothing else.

The local server's translator, as thin as the cloud handlers: routing, auth, limits and
the error envelope all happen in `HttpApp.handle`. `local_routes` is tried first, for
pages only the laptop serves (the dashboard): it answers a request it owns with a
Response and returns None for every other path.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from http import HTTPStatus
from typing import Any
from urllib.parse import urlsplit

from core.api.app import HttpApp
from core.api.http import Headers, Request, Response

LocalRoutes = Callable[[Request], Response | None]
StartResponse = Callable[[str, list[tuple[str, str]]], Any]

# WSGI keeps these two without the HTTP_ prefix.
_UNPREFIXED = {"CONTENT_TYPE": "Content-Type", "CONTENT_LENGTH": "Content-Length"}


def _headers(environ: dict[str, Any]) -> Headers:
    headers = Headers()
    for key, value in environ.items():
        if key.startswith("HTTP_"):
            headers[key[5:].replace("_", "-").title()] = value
        elif key in _UNPREFIXED and value:
            headers[_UNPREFIXED[key]] = value
    return headers


def to_core_request(environ: dict[str, Any]) -> Request:
    # The path as it was on the wire (PATH_INFO is percent-decoded), so the router sees
    # what the cloud handlers give it.
    raw_uri = environ.get("REQUEST_URI")
    path = urlsplit(raw_uri).path if raw_uri else environ.get("PATH_INFO", "")
    return Request(
        method=environ["REQUEST_METHOD"],
        path=path or "/",
        headers=_headers(environ),
        query=Request.parse_query(environ.get("QUERY_STRING", "")),
        # The server has read the whole body (de-chunked, within the size limit).
        body=environ["wsgi.input"].read(),
    )


def _status_line(status: int) -> str:
    try:
        return f"{status} {HTTPStatus(status).phrase}"
    except ValueError:
        return f"{status} Unknown"


class WsgiApp:
    """The core HTTP surface (and optional local routes) as a WSGI application."""

    def __init__(self, app: HttpApp, local_routes: LocalRoutes | None = None) -> None:
        self.app = app
        self.local_routes = local_routes

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        request = to_core_request(environ)
        response = self.local_routes(request) if self.local_routes is not None else None
        if response is None:
            response = self.app.handle(request)
        headers = [
            (name, value)
            for name, value in response.headers.items()
            if name.lower() != "content-length"
        ]
        headers.append(("Content-Length", str(len(response.body))))
        start_response(_status_line(response.status), headers)
        return [response.body]
