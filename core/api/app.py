"""The HTTP surface as one callable: core Request in, core Response out.

Cloud handlers and the local server only translate their native request to a
`Request` and the `Response` back; routing, auth, limits and the error envelope
happen here, once.
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Callable
from typing import Any

from core.api.auth import Authenticator
from core.api.http import Request, Response
from core.api.router import Route, Router
from core.api.routes import ROUTES
from core.domain.errors import (
    DomainError,
    PayloadTooLargeError,
    RateLimitedError,
    UnavailableError,
    UpstreamError,
    ValidationError,
)
from core.ports import ImageApiError
from core.service.context import Services

log = logging.getLogger("imggo.http")

DEFAULT_MAX_BODY = 11 * 1024 * 1024
# What a caller's X-Request-Id may look like before we echo it into a response header
# and log lines: anything else (60 KB, control characters, CRLF) is replaced.
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")


def safe_request_id(value: str | None) -> str | None:
    """The caller's request id if it is safe to echo and log, else None."""
    return value if value is not None and _REQUEST_ID.fullmatch(value) else None


def error_response(
    status: int, code: str, message: str, details: dict[str, Any] | None = None
) -> Response:
    return Response.json(
        status, {"error": {"code": code, "message": message, "details": details or {}}}
    )


def _from_domain(exc: DomainError) -> Response:
    response = error_response(exc.status, exc.code, exc.message, exc.details)
    if exc.status == 405 and "allowed" in exc.details:
        response.headers["Allow"] = ", ".join(exc.details["allowed"])
    if isinstance(exc, RateLimitedError | UnavailableError) and exc.retry_after_s is not None:
        response.headers["Retry-After"] = str(max(1, round(exc.retry_after_s)))
    return response


def _from_imggo(exc: ImageApiError) -> DomainError:
    if exc.retryable:
        return UnavailableError(
            "ImgGo is not reachable right now; try again shortly",
            code="imggo_unavailable",
            details={"imggo_code": exc.code},
        )
    return UpstreamError(f"ImgGo answered: {exc.message}", details={"imggo_code": exc.code})


def _refuse_empty_query(route: Route, request: Request) -> None:
    """`?status=` is a mistake, not "no filter": a declared parameter, when present,
    must have a value (the generated OpenAPI says so: allowEmptyValue is false)."""
    for param in route.query:
        if request.query.get(param.name) == "":
            raise ValidationError(
                f"query parameter {param.name} is empty",
                code=f"invalid_{param.name}",
                details={"parameter": param.name},
            )


class HttpApp:
    """Holds the route table and, built on first need, the services."""

    def __init__(
        self,
        services: Services | Callable[[], Services],
        *,
        router: Router | None = None,
        max_body_bytes: int | None = None,
    ) -> None:
        self._services = services if isinstance(services, Services) else None
        self._factory = None if isinstance(services, Services) else services
        self._router = router or Router(ROUTES)
        self._auth: Authenticator | None = None
        self._max_body = max_body_bytes

    @property
    def services(self) -> Services:
        if self._services is None:
            assert self._factory is not None
            self._services = self._factory()
        return self._services

    @property
    def router(self) -> Router:
        return self._router

    @property
    def max_body_bytes(self) -> int:
        if self._max_body is None:
            self._max_body = self.services.settings.max_body_bytes
        return self._max_body

    def _authenticate(self, request: Request) -> str:
        if self._auth is None:
            self._auth = Authenticator(self.services.settings.api_key_hashes)
        return self._auth.tenant_for(request.headers.get("authorization"))

    def handle(self, request: Request) -> Response:
        request_id = safe_request_id(request.headers.get("x-request-id")) or uuid.uuid4().hex
        try:
            route, params = self._router.match(request.method.upper(), request.path)
            request.path_params = params
            if route.auth:
                request.tenant = self._authenticate(request)
            _refuse_empty_query(route, request)
            # An empty body needs no limit, and /health must not build the services.
            if request.body and len(request.body) > self.max_body_bytes:
                raise PayloadTooLargeError(f"the body is larger than {self.max_body_bytes} bytes")
            response = route.handler(self, request)
        except DomainError as exc:
            response = _from_domain(exc)
        except ImageApiError as exc:
            response = _from_domain(_from_imggo(exc))
        except Exception:
            log.exception(
                "unhandled error on %s %s (request %s)", request.method, request.path, request_id
            )
            response = error_response(
                500,
                "internal_error",
                "something went wrong on our side",
                {"request_id": request_id},
            )
        response.headers["X-Request-Id"] = request_id
        if request.method.upper() == "HEAD":
            response.body = b""
        return response
