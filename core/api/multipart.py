"""multipart/form-data (RFC 7578) read into fields: the project's one form parser.

The HTTP surface and the embedded ImgGo simulator both read forms here. The byte-level
work is python-multipart's (the parser Starlette and FastAPI use); this module adds what
a server facing the internet needs on top: a bound on the number of parts and on the
header bytes of each part, checked as the parser meets them, so a body of a hundred
thousand empty parts stops at part `max_parts + 1` instead of being read to the end.
The body's total size is the caller's limit (it has the bytes in memory already).

Every malformed or over-limit form raises a `MultipartError` (a `ValidationError`), which
the API renders as a 4xx envelope with a stable code; nothing else escapes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from core.domain.errors import ValidationError

if TYPE_CHECKING:
    from python_multipart.multipart import MultipartCallbacks

# Our forms have at most four fields; 64 leaves room for clients that add their own.
DEFAULT_MAX_PARTS = 64
# A part's headers are a Content-Disposition and a Content-Type: well under 1 KiB.
DEFAULT_MAX_HEADER_BYTES = 8 * 1024
# python-multipart's limit messages; it raises one exception type for syntax and limits.
_LIBRARY_LIMIT_PREFIX = "Maximum header"


class MultipartError(ValidationError):
    """The body is not a readable multipart/form-data form."""

    status = 400
    code = "invalid_multipart"


class MultipartLimitError(MultipartError):
    """The form exceeds a bound (too many parts, too many header bytes in one part)."""

    status = 413
    code = "multipart_too_large"


@dataclass(frozen=True, slots=True)
class FormPart:
    """One part of a multipart/form-data body: a plain field or a file."""

    name: str
    data: bytes
    filename: str | None = None  # None: a plain field; "" is a file input left empty
    content_type: str | None = None  # the part's media type, lower-cased, no parameters

    def text(self) -> str:
        try:
            return self.data.decode()
        except UnicodeDecodeError:
            raise ValidationError(
                f"form field {self.name!r} is not UTF-8", code="invalid_form"
            ) from None


def parse_form(
    body: bytes,
    content_type: str,
    *,
    max_parts: int = DEFAULT_MAX_PARTS,
    max_header_bytes: int = DEFAULT_MAX_HEADER_BYTES,
) -> dict[str, FormPart]:
    """The form's parts by field name (the first part of a name wins)."""
    # Imported here: ~5 ms that a cold start which never sees a form does not pay.
    from python_multipart.exceptions import FormParserError
    from python_multipart.multipart import MultipartParser, parse_options_header

    media_type, params = parse_options_header(content_type.encode("utf-8", "replace"))
    if media_type != b"multipart/form-data":
        raise MultipartError("the body is not multipart/form-data")
    boundary = params.get(b"boundary")
    if not boundary:
        raise MultipartError("multipart body without a boundary")
    form = _Form(max_parts, max_header_bytes)
    try:
        parser = MultipartParser(
            boundary,
            form.callbacks(),
            # One header line may use the whole budget of its part; the count is bounded
            # by the bytes, so python-multipart's own (smaller) count limit is lifted.
            max_header_size=max_header_bytes,
            max_header_count=max_header_bytes,
        )
        parser.write(body)
    except FormParserError as exc:
        if str(exc).startswith(_LIBRARY_LIMIT_PREFIX):
            raise form.headers_too_large() from None
        raise MultipartError(f"malformed multipart body: {exc}") from None
    if not form.ended:
        raise MultipartError("the multipart body is truncated: no closing boundary")
    return form.parts


class _Form:
    """Collects parts from python-multipart's callbacks and enforces the bounds."""

    def __init__(self, max_parts: int, max_header_bytes: int) -> None:
        self._max_parts = max_parts
        self._max_header_bytes = max_header_bytes
        self.parts: dict[str, FormPart] = {}
        self.ended = False
        self._count = 0
        self._header_bytes = 0
        self._field = bytearray()
        self._value = bytearray()
        self._headers: dict[str, bytes] = {}
        self._current: tuple[str, str | None, str | None] | None = None
        self._chunks: list[bytes] = []

    def callbacks(self) -> MultipartCallbacks:
        return {
            "on_part_begin": self._part_begin,
            "on_header_field": self._header_field,
            "on_header_value": self._header_value,
            "on_header_end": self._header_end,
            "on_headers_finished": self._headers_finished,
            "on_part_data": self._part_data,
            "on_part_end": self._part_end,
            "on_end": self._end,
        }

    def headers_too_large(self) -> MultipartLimitError:
        return MultipartLimitError(
            f"a part's headers exceed {self._max_header_bytes} bytes",
            code="multipart_headers_too_large",
            details={"max_header_bytes": self._max_header_bytes},
        )

    def _part_begin(self) -> None:
        self._count += 1
        if self._count > self._max_parts:
            raise MultipartLimitError(
                f"the form has more than {self._max_parts} parts",
                code="multipart_too_many_parts",
                details={"max_parts": self._max_parts},
            )
        self._header_bytes = 0
        self._headers = {}
        self._current = None
        self._chunks = []

    def _charge(self, size: int) -> None:
        self._header_bytes += size
        if self._header_bytes > self._max_header_bytes:
            raise self.headers_too_large()

    def _header_field(self, data: bytes, start: int, end: int) -> None:
        self._charge(end - start)
        self._field += data[start:end]

    def _header_value(self, data: bytes, start: int, end: int) -> None:
        self._charge(end - start)
        self._value += data[start:end]

    def _header_end(self) -> None:
        # Header names are ASCII tokens (python-multipart checks); the first one wins.
        self._headers.setdefault(self._field.decode("ascii").lower(), bytes(self._value))
        self._field.clear()
        self._value.clear()

    def _headers_finished(self) -> None:
        from python_multipart.multipart import parse_options_header

        disposition, params = parse_options_header(self._headers.get("content-disposition"))
        if disposition != b"form-data" or b"name" not in params:
            raise MultipartError("a part lacks Content-Disposition: form-data; name=...")
        name = _utf8(params[b"name"])
        if name in self.parts:
            return  # a repeated field: the first one stands, this one's bytes are skipped
        filename = _utf8(params[b"filename"]) if b"filename" in params else None
        content_type = None
        if "content-type" in self._headers:
            media_type, _ = parse_options_header(self._headers["content-type"])
            content_type = _utf8(media_type) or None
        self._current = (name, filename, content_type)

    def _part_data(self, data: bytes, start: int, end: int) -> None:
        if self._current is not None:
            self._chunks.append(data[start:end])

    def _part_end(self) -> None:
        if self._current is not None:
            name, filename, content_type = self._current
            self.parts[name] = FormPart(name, b"".join(self._chunks), filename, content_type)
        self._current = None
        self._chunks = []

    def _end(self) -> None:
        self.ended = True


def _utf8(raw: bytes) -> str:
    # RFC 7578 section 5.1: names and file names are sent as raw UTF-8.
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise MultipartError("a part's headers are not UTF-8") from None
