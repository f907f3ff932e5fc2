"""Which paths are the dashboard's, and the headers every one of its answers carries.

`handle` answers `/` (the jobs), `/jobs/{id}` (one job) and `/static/...` (its assets),
and returns None for anything else, so the local server hands that to the core app
(`/v1`, `/health`, `/openapi.json` stay the API's).
"""

from __future__ import annotations

import re

from core.api.app import error_response
from core.api.http import Request, Response
from imggo_cli.dashboard.assets import STATIC_PREFIX, Asset, page, static_assets

# The job page needs no data of its own (the script reads the id from the path); the
# shape check only keeps odd paths out of the dashboard's namespace.
_JOB_PAGE = re.compile(r"/jobs/[A-Za-z0-9_-]{1,128}")
_ALLOWED = ("GET", "HEAD")

# No inline script or style, nothing from another origin, no framing, no form posts
# (the forms are driven by the script; without it they must not submit anywhere).
CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' blob:",
        "connect-src 'self'",
        "form-action 'none'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
    )
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
    # Small local files: always revalidate, so a new version is seen at once.
    "Cache-Control": "no-cache",
}


def _resolve(path: str) -> Asset | None:
    if path == "/":
        return page("jobs")
    if _JOB_PAGE.fullmatch(path):
        return page("job")
    if path.startswith(STATIC_PREFIX):
        return static_assets().get(path)
    return None


def handle(request: Request) -> Response | None:
    """The dashboard's answer to `request`, or None when the path is not the dashboard's."""
    asset = _resolve(request.path)
    if asset is None:
        return None
    method = request.method.upper()
    if method not in _ALLOWED:
        response = error_response(
            405, "method_not_allowed", f"{method} is not allowed here", {"allowed": list(_ALLOWED)}
        )
        response.headers["Allow"] = ", ".join(_ALLOWED)
    else:
        response = Response(200, b"" if method == "HEAD" else asset.body)
        response.headers["Content-Type"] = asset.content_type
    for name, value in SECURITY_HEADERS.items():
        response.headers[name] = value
    return response
