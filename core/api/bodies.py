"""Reading request bodies: JSON objects and multipart forms, with clear 4xx errors."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from core.api.http import Request
from core.domain import json_input
from core.domain.errors import UnsupportedMediaTypeError, ValidationError


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


@dataclass(frozen=True)
class FormPart:
    name: str
    data: bytes
    filename: str | None = None
    content_type: str | None = None

    def text(self) -> str:
        try:
            return self.data.decode()
        except UnicodeDecodeError:
            raise ValidationError(
                f"form field {self.name!r} is not UTF-8", code="invalid_form"
            ) from None


def read_multipart(request: Request) -> dict[str, FormPart]:
    """The form's parts by field name (first one wins). The stdlib MIME parser is lenient,
    so a mangled form yields missing fields (a clear 4xx later), never an exception."""
    # The MIME parser is imported here: a cold start that never sees a form skips it.
    from email import policy
    from email.message import EmailMessage
    from email.parser import BytesParser

    header = request.headers.get("content-type") or ""
    if "boundary=" not in header:
        raise BadRequestError("multipart body without a boundary", code="invalid_multipart")
    head = (
        b"Content-Type: " + header.encode("latin-1", "replace") + b"\r\nMIME-Version: 1.0\r\n\r\n"
    )
    message = BytesParser(policy=policy.HTTP).parsebytes(head + request.body)
    if not isinstance(message, EmailMessage) or not message.is_multipart():
        raise BadRequestError("the multipart body could not be read", code="invalid_multipart")
    parts: dict[str, FormPart] = {}
    for part in message.iter_parts():
        if not isinstance(part, EmailMessage):
            continue
        name = part.get_param("name", header="content-disposition")
        if not isinstance(name, str) or name in parts:
            continue
        payload = part.get_payload(decode=True)
        data = payload if isinstance(payload, bytes) else b""
        filename = part.get_filename()
        parts[name] = FormPart(
            name=name,
            data=data,
            filename=filename if isinstance(filename, str) else None,
            content_type=part.get_content_type() if "content-type" in part else None,
        )
    return parts
