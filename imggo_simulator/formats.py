"""Rendering a manifest as YAML, XML, CSV or plain text, with the stdlib only.

`GET /api/jobs/{id}?format=...` answers with one of these bodies. The renderers take any
JSON value, so they work for every pattern's manifest, not only the built-in ones.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Callable
from typing import Any
from xml.sax.saxutils import escape

RENDERED_FORMATS = ("yaml", "xml", "csv", "text")
FORMATS = ("json", *RENDERED_FORMATS)
CONTENT_TYPES = {
    "json": "application/json; charset=utf-8",
    "yaml": "application/yaml; charset=utf-8",
    "xml": "application/xml; charset=utf-8",
    "csv": "text/csv; charset=utf-8",
    "text": "text/plain; charset=utf-8",
}

_PLAIN_YAML_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_ ./-]*$")
_YAML_RESERVED = frozenset({"true", "false", "null", "yes", "no", "on", "off", "y", "n", "~"})
_XML_NAME_BAD = re.compile(r"[^A-Za-z0-9_.-]")
# Characters XML 1.0 cannot carry even escaped (most C0 controls, lone surrogates, FFFE/F).
_XML_TEXT_BAD = re.compile("[^\t\n\r\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def render(manifest: Any, fmt: str, *, csv_delimiter: str = ",") -> tuple[str, bytes]:
    """(content type, body) for `manifest` in `fmt`; KeyError for an unknown format."""
    renderers: dict[str, Callable[[Any], str]] = {
        "json": lambda m: json.dumps(m, indent=2, ensure_ascii=False) + "\n",
        "yaml": to_yaml,
        "xml": to_xml,
        "csv": lambda m: to_csv(m, delimiter=csv_delimiter),
        "text": to_text,
    }
    text = renderers[fmt](manifest)
    return CONTENT_TYPES[fmt], text.encode("utf-8")


# ---------------------------------------------------------------------------- YAML
def to_yaml(value: Any) -> str:
    lines: list[str] = []
    _yaml_lines(value, 0, lines)
    return "\n".join(lines) + "\n"


def _yaml_scalar(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return json.dumps(value)
    text = str(value)
    if _PLAIN_YAML_RE.match(text) and text.lower() not in _YAML_RESERVED and text == text.strip():
        return text
    # A JSON string literal is a valid YAML double-quoted scalar.
    return json.dumps(text, ensure_ascii=False)


def _yaml_lines(value: Any, indent: int, lines: list[str]) -> None:
    pad = " " * indent
    if isinstance(value, dict):
        if not value:
            lines.append(pad + "{}")
        for key, item in value.items():
            label = f"{pad}{_yaml_scalar(str(key))}:"
            if isinstance(item, (dict, list)) and item:
                lines.append(label)
                _yaml_lines(item, indent + 2, lines)
            else:
                lines.append(f"{label} {_yaml_inline(item)}")
    elif isinstance(value, list):
        if not value:
            lines.append(pad + "[]")
        for item in value:
            if isinstance(item, (dict, list)) and item:
                nested: list[str] = []
                _yaml_lines(item, indent + 2, nested)
                # The first line of the nested block moves up beside the dash.
                lines.append(f"{pad}- {nested[0].lstrip()}")
                lines.extend(nested[1:])
            else:
                lines.append(f"{pad}- {_yaml_inline(item)}")
    else:
        lines.append(pad + _yaml_scalar(value))


def _yaml_inline(value: Any) -> str:
    if isinstance(value, dict):
        return "{}"
    if isinstance(value, list):
        return "[]"
    return _yaml_scalar(value)


# ---------------------------------------------------------------------------- XML
def to_xml(value: Any, root: str = "manifest") -> str:
    parts = ['<?xml version="1.0" encoding="UTF-8"?>']
    _xml_element(root, value, parts)
    return "".join(parts) + "\n"


def _xml_name(key: str) -> str:
    name = _XML_NAME_BAD.sub("_", key) or "_"
    if not (name[0].isalpha() or name[0] == "_") or name.lower().startswith("xml"):
        name = "_" + name
    return name


def _xml_element(name: str, value: Any, parts: list[str]) -> None:
    tag = _xml_name(name)
    if isinstance(value, dict):
        parts.append(f"<{tag}>")
        for key, item in value.items():
            _xml_element(str(key), item, parts)
        parts.append(f"</{tag}>")
    elif isinstance(value, list):
        parts.append(f"<{tag}>")
        for item in value:
            _xml_element("item", item, parts)
        parts.append(f"</{tag}>")
    elif value is None:
        parts.append(f"<{tag}/>")
    else:
        text = _XML_TEXT_BAD.sub("\ufffd", plain(value))
        parts.append(f"<{tag}>{escape(text)}</{tag}>")


# ---------------------------------------------------------------------------- CSV, text
def flatten(value: Any, prefix: str = "") -> dict[str, str]:
    """Dotted keys to plain strings: {"a": {"b": [1, {"c": 2}]}} -> a.b.0, a.b.1.c."""
    out: dict[str, str] = {}
    if isinstance(value, dict):
        if not value and prefix:
            out[prefix] = ""
        for key, item in value.items():
            out.update(flatten(item, f"{prefix}.{key}" if prefix else str(key)))
    elif isinstance(value, list):
        if all(not isinstance(v, (dict, list)) for v in value):
            out[prefix or "value"] = "|".join(plain(v) for v in value)
        else:
            for index, item in enumerate(value):
                out.update(flatten(item, f"{prefix}.{index}" if prefix else str(index)))
    else:
        out[prefix or "value"] = plain(value)
    return out


def to_csv(value: Any, *, delimiter: str = ",") -> str:
    row = flatten(value)
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=delimiter, lineterminator="\r\n")  # RFC 4180
    writer.writerow(list(row))
    writer.writerow(list(row.values()))
    return buffer.getvalue()


def to_text(value: Any) -> str:
    return "".join(f"{key}: {item}\n" for key, item in flatten(value).items())


def plain(value: Any) -> str:
    """A scalar as ImgGo's csv/text formats write it."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return json.dumps(value)
    return str(value)
