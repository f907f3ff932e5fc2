"""Reading request bodies: JSON objects and multipart forms, with clear 4xx errors."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from core.api.http import Request
from core.domain import json_input
from core.domain.errors import UnsupportedMediaTypeError, ValidationError

if TYPE_CHECKING:
    from core.api.multipart import FormPart


class BadRequestError(ValidationError):
    status = 400
    code = "bad_request"


def is_json_type(content_type: str) -> bool:
    return content_type == "application/json" or (
        content_type.startswith("application/") and content_type.endswith("+json")
    )


def read_json_object(request: Request) -> dict[str, Any]:
    if not is_json_type(request.content_type):
        raise UnsupportedMediaTypeError(
            "send Content-Type: application/json", code="unsupported_media_type"
        )
    payload = json_input.loads(request.body)
    if not isinstance(payload, dict):
        raise ValidationError("the body must be a JSON object", code="invalid_body")
    return payload


def read_multipart(request: Request) -> dict[str, FormPart]:
    """The form's parts by field name (first one wins); a mangled or over-limit form is a
    4xx `MultipartError`."""
    from core.api.multipart import parse_form  # only a multipart route loads the parser

    return parse_form(request.body, request.headers.get("content-type") or "")
