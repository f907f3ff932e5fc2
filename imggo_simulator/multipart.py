"""A small multipart/form-data parser (RFC 7578): the stdlib `cgi` module is gone in 3.13,
and `email` is slow and lenient in ways that hide client bugs."""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import unquote

_PARAM_RE = re.compile(r';\s*([A-Za-z0-9_\-*]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^;]*)')


@dataclass(frozen=True, slots=True)
class Part:
    name: str
    filename: str | None
    content_type: str | None
    data: bytes


def header_params(value: str) -> tuple[str, dict[str, str]]:
    """`form-data; name="a"; filename*=UTF-8''b.png` -> ("form-data", {name, filename})."""
    main, _, rest = value.partition(";")
    params: dict[str, str] = {}
    extended: dict[str, str] = {}  # RFC 5987 `name*=` values win over plain ones
    for key, raw in _PARAM_RE.findall(";" + rest):
        key = key.lower()
        raw = raw.strip()
        if raw.startswith('"') and raw.endswith('"') and len(raw) >= 2:
            raw = re.sub(r"\\(.)", r"\1", raw[1:-1])
        if key.endswith("*"):  # charset'lang'percent-encoded
            charset, _, encoded = raw.partition("'")
            _, _, encoded = encoded.partition("'")
            try:
                extended[key[:-1]] = unquote(encoded, encoding=charset or "utf-8", errors="replace")
            except LookupError:  # an unknown charset name
                extended[key[:-1]] = unquote(encoded, errors="replace")
        else:
            params[key] = raw
    params.update(extended)
    return main.strip().lower(), params


def parse_multipart(body: bytes, content_type: str) -> list[Part]:
    """The parts of a multipart/form-data body; ValueError if it is malformed."""
    _, params = header_params(content_type)
    boundary = params.get("boundary", "")
    if not boundary or len(boundary) > 200:
        raise ValueError("multipart body without a boundary")
    dash = b"--" + boundary.encode("latin-1")
    start = body.find(dash)
    if start < 0:
        raise ValueError("multipart boundary not found in the body")
    segments = body[start + len(dash) :].split(b"\r\n" + dash)
    parts: list[Part] = []
    for segment in segments:
        if segment.startswith(b"--"):
            return parts  # the closing delimiter
        head_start = segment.find(b"\r\n")
        if head_start < 0 or segment[:head_start].strip(b" \t"):
            raise ValueError("malformed multipart delimiter line")
        head, found, data = segment[head_start + 2 :].partition(b"\r\n\r\n")
        if not found:
            raise ValueError("multipart part without a header/body separator")
        parts.append(_part(head, data))
    raise ValueError("multipart body is not terminated")


def _part(head: bytes, data: bytes) -> Part:
    headers: dict[str, str] = {}
    for line in head.decode("utf-8", errors="replace").split("\r\n"):
        name, sep, value = line.partition(":")
        if sep:
            headers[name.strip().lower()] = value.strip()
    disposition, params = header_params(headers.get("content-disposition", ""))
    if disposition != "form-data" or "name" not in params:
        raise ValueError("multipart part without Content-Disposition: form-data; name=...")
    return Part(
        name=params["name"],
        filename=params.get("filename"),
        content_type=headers.get("content-type"),
        data=data,
    )
