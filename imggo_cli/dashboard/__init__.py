"""The local dashboard of `imggo-fn serve`: jobs, their images and extracted data.

Server-rendered shell pages and a little plain JavaScript. The shells hold no tenant
data, so they need no auth: the browser reads everything through the public API
(`/v1/...`) with the API key in the `Authorization` header, so there is no second
auth path. Only the local server mounts this (`handle` is its `local_routes` hook);
the cloud handlers never serve it.
"""

from __future__ import annotations

from imggo_cli.dashboard.routes import handle

__all__ = ["handle"]
