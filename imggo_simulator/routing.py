"""Route tables: a method and a path template per handler, matched in order, with the
404 and 405 answers (in the error envelope) for requests no route takes."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from .http_types import ApiError, Request, not_found


@dataclass(frozen=True, slots=True)
class Route:
    method: str
    regex: re.Pattern[str]
    handler: str  # method name on the object serving the table
    auth: bool = True
    chaos: bool = False  # the calls chaos may hit: ingest and job reads


def route(method: str, pattern: str, handler: str, **flags: bool) -> Route:
    """`pattern` like "/api/jobs/{id}": each {name} matches one path segment."""
    regex = re.compile("^" + re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", pattern) + "/?$")
    return Route(method, regex, handler, **flags)


def match(routes: Sequence[Route], request: Request) -> tuple[Route, dict[str, str]]:
    """The route taking `request` and its path parameters; raises the 404 or 405."""
    allowed: list[str] = []
    method = "GET" if request.method == "HEAD" else request.method
    for candidate in routes:
        found = candidate.regex.match(request.path)
        if found is None:
            continue
        if candidate.method == method:
            return candidate, found.groupdict()
        allowed.append(candidate.method)
    if allowed:
        raise ApiError(
            405,
            "METHOD_NOT_ALLOWED",
            f"Method {request.method} not allowed on {request.path}",
            {"allowed": allowed},
            headers={"Allow": ", ".join(allowed)},
        )
    raise not_found(f"No route for {request.method} {request.path}")
