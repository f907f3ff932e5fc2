"""The simulator's own endpoints, under /_sim: never part of ImgGo's API.

They live outside /api so no client of ImgGo can mistake them for an ImgGo call, and
they skip everything ImgGo does to a request: no Bearer key, no rate limit, no chaos,
no X-RateLimit-* headers, and they are not counted in the stats they report.

- `GET /_sim/stats`: stats.py's snapshot (per key id, unattributed, totals, the limit).
- `POST /_sim/stats/reset`: zero the counters; answers the snapshot taken just before.
  The rate-limit windows are left alone: they are ImgGo's state, not counters.
"""

from __future__ import annotations

from collections.abc import Callable

from .config import SimulatorConfig
from .http_types import ApiError, Request, Response, dumps
from .routing import match, route
from .stats import RequestStats

_ROOT = "/_sim"

CONTROL_ROUTES = (
    route("GET", "/_sim/stats", "stats", auth=False),
    route("POST", "/_sim/stats/reset", "reset_stats", auth=False),
)


def is_control_path(path: str) -> bool:
    return path == _ROOT or path.startswith(_ROOT + "/")


class ControlEndpoints:
    def __init__(self, stats: RequestStats, config: Callable[[], SimulatorConfig]) -> None:
        self._stats = stats
        self._config = config

    def handle(self, request: Request) -> Response:
        try:
            found, _ = match(CONTROL_ROUTES, request)
        except ApiError as exc:
            return exc.to_response()
        handler: Callable[[], Response] = getattr(self, found.handler)
        return handler()

    def stats(self) -> Response:
        return Response(200, dumps(self._stats.snapshot(self._config().rate_limit_per_minute)))

    def reset_stats(self) -> Response:
        return Response(200, dumps(self._stats.reset(self._config().rate_limit_per_minute)))
