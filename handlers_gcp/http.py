"""Flask request -> core Request, core Response -> Flask response. Nothing else."""

from __future__ import annotations

from urllib.parse import urlsplit

import flask

from core.api.http import Headers, Request, Response


class _CoreResponse(flask.Response):
    # The core sets Content-Type where there is a body; Flask must not invent one.
    default_mimetype = None


def to_core_request(request: flask.Request) -> Request:
    """The raw body bytes (a webhook's signature covers exactly them), every header, and
    the query string as sent."""
    # The path as it was on the wire (gunicorn and werkzeug both keep it), so the router
    # sees what the local server would; werkzeug's `path` is percent-decoded.
    raw_uri = request.environ.get("RAW_URI") or request.environ.get("REQUEST_URI")
    path = urlsplit(raw_uri).path if raw_uri else request.path
    return Request(
        method=request.method,
        path=path or "/",
        headers=Headers(request.headers.items()),
        query=Request.parse_query(request.query_string.decode("latin-1")),
        body=request.get_data(cache=True),
    )


def to_flask_response(response: Response) -> flask.Response:
    out = _CoreResponse(response.body, status=response.status)
    for name, value in response.headers.items():
        out.headers[name] = value
    return out
