"""The job model and its forward-only state machine. Imports nothing of ours."""

from core.domain.errors import (
    ConflictError,
    DomainError,
    ForbiddenError,
    NotFoundError,
    PayloadTooLargeError,
    RateLimitedError,
    UnauthorizedError,
    UnavailableError,
    UnsupportedMediaTypeError,
    ValidationError,
)
from core.domain.job import Job, JobError, JobSource, JobStatus, advance

__all__ = [
    "ConflictError",
    "DomainError",
    "ForbiddenError",
    "Job",
    "JobError",
    "JobSource",
    "JobStatus",
    "NotFoundError",
    "PayloadTooLargeError",
    "RateLimitedError",
    "UnauthorizedError",
    "UnavailableError",
    "UnsupportedMediaTypeError",
    "ValidationError",
    "advance",
]
