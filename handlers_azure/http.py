"""azure.functions.HttpRequest -> core Request, core Response -> HttpResponse. Nothing else."""

from __future__ import annotations

from urllib.parse import urlsplit

import azure.functions as func

from core.api.http import Headers, Request, Response


def to_core_request(request: func.HttpRequest) -> Request:
    """The raw body bytes (a webhook's signature covers exactly them), every header, and
    the query string as sent (from the URL: `params` has already decoded it)."""
    url = urlsplit(request.url)
    return Request(
        method=request.method.upper(),
        path=url.path or "/",
        headers=Headers(request.headers.items()),
        query=Request.parse_query(url.query),
        body=request.get_body() or b"",
    )


def to_http_response(response: Response) -> func.HttpResponse:
    headers = dict(response.headers.items())
    return func.HttpResponse(
        body=response.body,
        status_code=response.status,
        headers=headers,
        mimetype=None,
        charset=None,
    )
