"""A route table: method + path template -> handler, with what OpenAPI needs to know."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from core.api.http import Request, Response
from core.domain.errors import DomainError, NotFoundError
from core.service.context import Services


class AppContext(Protocol):
    """What a route handler may reach: the services (built lazily, on first need, so
    /health answers a cold start without touching a store) and the route table."""

    @property
    def services(self) -> Services: ...

    @property
    def router(self) -> Router: ...


Handler = Callable[[AppContext, Request], Response]


class MethodNotAllowedError(DomainError):
    status = 405
    code = "method_not_allowed"


@dataclass(frozen=True, eq=False)
class QueryParam:
    """A query parameter a route reads, as the OpenAPI document describes it."""

    name: str
    schema: dict[str, Any]
    description: str = ""


@dataclass(frozen=True, eq=False)
class Route:
    """One entry of the route table: what it matches, the handler it calls, and what the
    OpenAPI document says of it."""

    method: str
    path: str
    handler: Handler
    operation_id: str
    summary: str
    auth: bool = True
    query: Sequence[QueryParam] = ()
    request_body: dict[str, Any] | None = None  # OpenAPI `content` map
    responses: dict[str, dict[str, Any]] = field(default_factory=dict)
    tags: Sequence[str] = ()

    def compile(self) -> re.Pattern[str]:
        pattern = re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", self.path)
        return re.compile(pattern)


class Router:
    def __init__(self, routes: Sequence[Route]) -> None:
        self.routes = list(routes)
        self._compiled = [(route, route.compile()) for route in self.routes]

    def match(self, method: str, path: str) -> tuple[Route, dict[str, str]]:
        allowed: list[str] = []
        for route, regex in self._compiled:
            found = regex.fullmatch(path)
            if found is None:
                continue
            if route.method == method or (method == "HEAD" and route.method == "GET"):
                return route, found.groupdict()
            allowed.append(route.method)
        if allowed:
            raise MethodNotAllowedError(
                f"{method} is not allowed here", details={"allowed": sorted(set(allowed))}
            )
        raise NotFoundError(f"no route for {path}", code="route_not_found")
