"""Errors the use cases raise. Each carries a stable machine code and an HTTP status,
so the HTTP surface maps them to the error envelope without a lookup table."""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    """Base of every error a caller may see. `code` is stable; `message` is for humans."""

    status: int = 400
    code: str = "bad_request"

    def __init__(
        self, message: str, *, code: str | None = None, details: dict[str, Any] | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.details: dict[str, Any] = details or {}


class ValidationError(DomainError):
    status = 422
    code = "validation_error"


class UnauthorizedError(DomainError):
    status = 401
    code = "unauthorized"


class ForbiddenError(DomainError):
    status = 403
    code = "forbidden"


class NotFoundError(DomainError):
    status = 404
    code = "not_found"


class ConflictError(DomainError):
    status = 409
    code = "conflict"


class PayloadTooLargeError(DomainError):
    status = 413
    code = "payload_too_large"


class UnsupportedMediaTypeError(DomainError):
    status = 415
    code = "unsupported_media_type"


class RateLimitedError(DomainError):
    """Too many calls: ImgGo's rate budget has no call free for this work within its
    deadline. Work that meets it is deferred (after `retry_after_s`), not failed:
    nothing was sent, nothing went wrong."""

    status = 429
    code = "rate_limited"

    def __init__(
        self,
        message: str,
        *,
        retry_after_s: float | None = None,
        code: str | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message, code=code, details=details)
        self.retry_after_s = retry_after_s


class UnavailableError(DomainError):
    """A dependency (ImgGo, the store) could not be reached: the caller may retry, after
    `retry_after_s` seconds when the dependency said (or we decided) how long."""

    status = 503
    code = "unavailable"

    def __init__(
        self,
        message: str,
        *,
        retry_after_s: float | None = None,
        code: str | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message, code=code, details=details)
        self.retry_after_s = retry_after_s


class RejectedError(DomainError):
    """ImgGo refused the submission (bad pattern, unreadable image, plan limit)."""

    status = 422
    code = "imggo_rejected"


class UpstreamError(DomainError):
    """ImgGo answered in a way we cannot pass on as the caller's fault."""

    status = 502
    code = "imggo_error"


class NotSupportedError(DomainError):
    """This deployment cannot do that (e.g. signed uploads on local disk)."""

    status = 501
    code = "not_supported"
