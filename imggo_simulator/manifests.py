"""Manifests: a pattern's JSON schema filled in from what Pillow read off the image.

Fields whose names say what they are (width, height, sha256, dominant_colors, exif,
camera make/model...) get the real value from the bytes; everything else gets a
placeholder of the right type, derived from the image digest and the field's path, so
the same bytes and the same pattern always give the same manifest. When the schema
allows extra properties, the manifest carries `"_simulated": true` to say what it is.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from typing import Any

from .image_facts import ImageFacts
from .patterns import Pattern

SIMULATED_MARKER = "_simulated"
_MAX_DEPTH = 12
# Past this depth, or once this many values exist, only what the schema requires is made:
# a recursive schema (a tree of `$ref: "#"`) would otherwise grow without bound.
_LEAN_DEPTH = 4
_VALUE_BUDGET = 2000
_TYPE_ORDER = ("object", "array", "string", "number", "integer", "boolean", "null")
_HEX_COLOR_RE = re.compile(r"^#[0-9a-fA-F]{6}$")

# Property name -> ImageFacts attribute, for names that plainly mean a fact about the file.
_FACT_NAMES: dict[str, str] = {
    "width": "width",
    "image_width": "width",
    "height": "height",
    "image_height": "height",
    "format": "format",
    "image_format": "format",
    "file_format": "format",
    "mime_type": "mime_type",
    "mime": "mime_type",
    "content_type": "mime_type",
    "mode": "mode",
    "color_mode": "mode",
    "colour_mode": "mode",
    "file_size_bytes": "file_size_bytes",
    "file_size": "file_size_bytes",
    "size_bytes": "file_size_bytes",
    "sha256": "sha256",
    "checksum": "sha256",
    "digest": "sha256",
    "megapixels": "megapixels",
    "aspect_ratio": "aspect_ratio",
    "orientation": "orientation",
    "has_alpha": "has_alpha",
    "has_transparency": "has_alpha",
    "animated": "animated",
    "is_animated": "animated",
    "frame_count": "frame_count",
    "brightness": "brightness",
    "dominant_colors": "dominant_colors",
    "dominant_colours": "dominant_colors",
    "colors": "dominant_colors",
    "colours": "dominant_colors",
    "palette": "dominant_colors",
    "exif": "exif",
    "camera_make": "camera_make",
    "camera_model": "camera_model",
}
# Only inside an object named like a camera do these short names mean EXIF facts.
_CAMERA_PARENTS = frozenset({"camera", "exif", "device", "photo", "capture"})
_CAMERA_FIELDS = {
    "make": "camera_make",
    "model": "camera_model",
    "datetime": "taken_at",
    "date_taken": "taken_at",
    "taken_at": "taken_at",
    "captured_at": "taken_at",
}
_PY_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "array": (list,),
    "object": (dict,),
}


def build_manifest(pattern: Pattern, facts: ImageFacts) -> dict[str, Any]:
    schema = pattern.json_schema
    if not isinstance(schema, dict):
        schema = _schema_from_text_schemas(pattern.data)
    value = _Filler(schema, facts).fill_root()
    return value


class _Filler:
    def __init__(self, root: dict[str, Any], facts: ImageFacts) -> None:
        self.root = root
        self.facts = facts
        self.budget = _VALUE_BUDGET

    def fill_root(self) -> dict[str, Any]:
        schema = self._resolve(self.root)
        if _types(schema) and "object" not in _types(schema):
            # A pattern whose root is not an object still needs an object manifest.
            return {"value": self.fill(schema, "/value", "value", None, 0)}
        if not isinstance(schema.get("properties"), dict) and schema.get(
            "additionalProperties", True
        ) in (True, {}):
            # "Any object": say what we honestly know, the image facts.
            schema = {**schema, "properties": {k: {} for k in _IMAGE_FACT_KEYS}}
        value = self._fill_object(schema, "", None, 0)
        if schema.get("additionalProperties", True) is not False:
            value.setdefault(SIMULATED_MARKER, True)
        return value

    # ------------------------------------------------------------------ dispatch
    def fill(self, schema: Any, path: str, name: str | None, parent: str | None, depth: int) -> Any:
        self.budget -= 1
        schema = self._resolve(schema)
        if "const" in schema:
            return schema["const"]
        types = _types(schema)
        found, fact = self._fact(name, parent)
        if found and _fits(fact, schema, types):
            return fact
        if isinstance(schema.get("enum"), list) and schema["enum"]:
            options = schema["enum"]
            return options[self._hash(path) % len(options)]
        if "default" in schema:
            return schema["default"]
        kind = _pick_type(schema, types)
        if depth >= _MAX_DEPTH:
            return None if "null" in types else _empty(kind)
        if kind == "object":
            return self._fill_object(schema, path, name, depth)
        if kind == "array":
            return self._fill_array(schema, path, name, depth)
        if kind == "integer":
            return self._integer(schema, path)
        if kind == "number":
            return self._number(schema, path)
        if kind == "boolean":
            return self._hash(path) % 2 == 0
        if kind == "null":
            return None
        return self._string(schema, path, name or "value", parent)

    def _fill_object(
        self, schema: dict[str, Any], path: str, name: str | None, depth: int
    ) -> dict[str, Any]:
        out: dict[str, Any] = {}
        properties = schema.get("properties")
        required = schema.get("required")
        lean = self._lean(depth)
        if isinstance(properties, dict):
            for key, sub in properties.items():
                if lean and not (isinstance(required, list) and key in required):
                    continue
                out[key] = self.fill(sub, f"{path}/{key}", key, name, depth + 1)
        _reconcile_totals(out, properties if isinstance(properties, dict) else {})
        return out

    def _fill_array(
        self, schema: dict[str, Any], path: str, name: str | None, depth: int
    ) -> list[Any]:
        items = schema.get("items", {})
        prefix = schema.get("prefixItems")
        if isinstance(prefix, list):  # tuple-typed arrays: one value per position
            return [
                self.fill(sub, f"{path}/{i}", name, name, depth + 1) for i, sub in enumerate(prefix)
            ]
        if self._lean(depth):
            count = _as_int(schema.get("minItems"), 0)
        else:
            low = _as_int(schema.get("minItems"), 1)
            high = max(low, _as_int(schema.get("maxItems"), max(low, 3)))
            count = low + self._hash(path + "#count") % (high - low + 1)
        return [self.fill(items, f"{path}/{i}", name, name, depth + 1) for i in range(count)]

    # ------------------------------------------------------------------ scalars
    def _integer(self, schema: dict[str, Any], path: str) -> int:
        low, high = _bounds(schema, default_span=99.0, integer=True)
        return int(low) + self._hash(path) % (int(high) - int(low) + 1)

    def _number(self, schema: dict[str, Any], path: str) -> float:
        low, high = _bounds(schema, default_span=1000.0, integer=False)
        fraction = (self._hash(path) % 1_000_000) / 1_000_000
        value = round(low + fraction * (high - low), 2)
        return min(max(value, low), high)

    def _string(self, schema: dict[str, Any], path: str, name: str, parent: str | None) -> str:
        h = self._hash(path)
        fmt = schema.get("format")
        lowered = name.lower()
        if fmt == "date" or lowered.endswith("_date") or lowered == "date":
            text = f"2025-{1 + h % 12:02d}-{1 + (h // 12) % 28:02d}"
        elif fmt == "date-time":
            text = f"2025-{1 + h % 12:02d}-{1 + (h // 12) % 28:02d}T{(h // 7) % 24:02d}:00:00.000Z"
        elif fmt == "time" or lowered == "time":
            text = f"{8 + h % 12:02d}:{(h // 12) % 60:02d}:{(h // 720) % 60:02d}"
        elif fmt == "email":
            text = f"simulated-{h % 10_000:04d}@example.com"
        elif fmt in ("uri", "url", "iri") or lowered in ("url", "website", "link"):
            text = f"https://example.com/simulated/{h % 10_000:04d}"
        elif fmt == "uuid":
            text = str(uuid.UUID(int=h << 64 | h, version=4))
        elif _HEX_COLOR_RE.match(_example_of_pattern(schema.get("pattern"))):
            text = self.facts.dominant_colors[h % len(self.facts.dominant_colors)]
        elif "currency" in lowered:
            text = ("USD", "EUR", "GBP")[h % 3]
        elif lowered.endswith("number") or lowered.endswith("_id") or lowered == "id":
            text = f"SIM-{h % 1_000_000:06d}"
        elif "address" in lowered:
            text = f"{1 + h % 200} Simulation Way, Testville"
        elif "name" in lowered or lowered in ("merchant", "brand", "vendor", "title"):
            # A bare `name` inside `vendor` reads better as "Simulated Vendor".
            label = parent if lowered == "name" and parent else name
            text = f"Simulated {_title(label)} {h % 1000:03d}"
        else:
            text = f"simulated {name.replace('_', ' ')} {h % 10_000:04d}"
        return _fit_length(text, schema)

    # ------------------------------------------------------------------ helpers
    def _lean(self, depth: int) -> bool:
        return depth >= _LEAN_DEPTH or self.budget <= 0

    def _fact(self, name: str | None, parent: str | None) -> tuple[bool, Any]:
        if name is None:
            return False, None
        key = name.lower()
        attr = _FACT_NAMES.get(key)
        if attr is None and parent is not None and parent.lower() in _CAMERA_PARENTS:
            attr = _CAMERA_FIELDS.get(key)
        if attr is None:
            return False, None
        return True, getattr(self.facts, attr)

    def _hash(self, path: str) -> int:
        digest = hashlib.blake2b(f"{self.facts.sha256}:{path}".encode(), digest_size=8).digest()
        return int.from_bytes(digest, "big")

    def _resolve(self, schema: Any, depth: int = 0) -> dict[str, Any]:
        if not isinstance(schema, dict):
            return {}  # `true` / malformed: anything goes, a string will do
        ref = schema.get("$ref")
        if isinstance(ref, str) and ref.startswith("#") and depth < 16:
            target: Any = self.root
            for part in ref.lstrip("#").strip("/").split("/"):
                if not part:
                    continue
                part = part.replace("~1", "/").replace("~0", "~")
                target = target.get(part) if isinstance(target, dict) else None
            siblings = {k: v for k, v in schema.items() if k != "$ref"}
            return {**self._resolve(target, depth + 1), **siblings}
        for combinator in ("anyOf", "oneOf"):
            options = schema.get(combinator)
            if isinstance(options, list) and options:
                # Prefer the first branch that is not just "null": a value says more.
                chosen = next(
                    (o for o in options if not (isinstance(o, dict) and o.get("type") == "null")),
                    options[0],
                )
                rest = {k: v for k, v in schema.items() if k != combinator}
                return {**rest, **self._resolve(chosen, depth + 1)}
        all_of = schema.get("allOf")
        if isinstance(all_of, list):
            merged = {k: v for k, v in schema.items() if k != "allOf"}
            for part in all_of:
                sub = self._resolve(part, depth + 1)
                props = {**merged.get("properties", {}), **sub.get("properties", {})}
                merged = {**merged, **sub, "properties": props}
            return merged
        return schema


def _types(schema: dict[str, Any]) -> list[str]:
    declared = schema.get("type")
    if isinstance(declared, str):
        types = [declared]
    elif isinstance(declared, list):
        types = [t for t in declared if isinstance(t, str)]
    else:
        types = []
    if schema.get("nullable") is True and "null" not in types:
        types.append("null")
    return types


def _pick_type(schema: dict[str, Any], types: list[str]) -> str:
    concrete = [t for t in types if t != "null"]
    if concrete:
        return min(concrete, key=lambda t: _TYPE_ORDER.index(t) if t in _TYPE_ORDER else 99)
    if types:
        return "null"
    if "properties" in schema:
        return "object"
    if "items" in schema or "prefixItems" in schema:
        return "array"
    if "minimum" in schema or "maximum" in schema:
        return "number"
    return "string"


def _fits(value: Any, schema: dict[str, Any], types: list[str]) -> bool:
    if value is None:
        return "null" in types
    enum = schema.get("enum")
    if isinstance(enum, list) and value not in enum:
        return False
    if not types:
        return True
    for t in types:
        expected = _PY_TYPES.get(t)
        if expected is None or (isinstance(value, bool) and t != "boolean"):
            continue
        if isinstance(value, expected):
            return True
    return False


def _bounds(schema: dict[str, Any], *, default_span: float, integer: bool) -> tuple[float, float]:
    step = 1.0 if integer else 0.01
    low = _as_float(schema.get("minimum"))
    if low is None and _as_float(schema.get("exclusiveMinimum")) is not None:
        low = float(schema["exclusiveMinimum"]) + step
    high = _as_float(schema.get("maximum"))
    if high is None and _as_float(schema.get("exclusiveMaximum")) is not None:
        high = float(schema["exclusiveMaximum"]) - step
    if low is None:
        low = min(1.0 if integer else 0.0, high) if high is not None else (1.0 if integer else 0.0)
    if high is None or high < low:
        high = low + default_span
    if integer:
        low, high = float(int(-(-low // 1))), float(int(high // 1))
        high = max(high, low)
    return low, high


def _as_float(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def _as_int(value: Any, default: int) -> int:
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    return default


def _empty(kind: str) -> Any:
    return {"object": {}, "array": [], "string": "", "number": 0, "integer": 0}.get(kind, False)


def _title(name: str) -> str:
    return name.replace("_", " ").replace("-", " ").title()


def _fit_length(text: str, schema: dict[str, Any]) -> str:
    min_len = _as_int(schema.get("minLength"), 0)
    max_len = schema.get("maxLength")
    if len(text) < min_len:
        text = text + "x" * (min_len - len(text))
    if isinstance(max_len, int) and not isinstance(max_len, bool) and len(text) > max_len:
        text = text[:max_len]
    return text


def _example_of_pattern(pattern: Any) -> str:
    # The one regex shape we can satisfy from facts: a hex colour. Others are ignored.
    if pattern in (r"^#[0-9a-f]{6}$", r"^#[0-9a-fA-F]{6}$", r"^#[0-9A-F]{6}$"):
        return "#000000"
    return ""


def _reconcile_totals(obj: dict[str, Any], properties: dict[str, Any]) -> None:
    """Make invoice-like numbers add up, so a simulated manifest reads plausibly."""

    def free(key: str) -> bool:  # a generated number we may overwrite without breaking bounds
        sub = properties.get(key)
        return (
            isinstance(obj.get(key), (int, float))
            and not isinstance(obj.get(key), bool)
            and isinstance(sub, dict)
            and "maximum" not in sub
            and "enum" not in sub
            and "const" not in sub
        )

    if all(k in obj for k in ("quantity", "unit_price", "amount")) and free("amount"):
        qty, price = obj["quantity"], obj["unit_price"]
        if isinstance(qty, (int, float)) and isinstance(price, (int, float)):
            obj["amount"] = round(qty * price, 2)
    line_sum: float | None = None
    for value in obj.values():
        if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            amounts = [v.get("amount", v.get("price")) for v in value]
            if all(isinstance(a, (int, float)) and not isinstance(a, bool) for a in amounts):
                line_sum = round(sum(amounts), 2)
                break
    if line_sum is None:
        return
    if free("subtotal"):
        obj["subtotal"] = line_sum
    base = obj["subtotal"] if free("subtotal") else line_sum
    if free("tax"):
        obj["tax"] = round(base * 0.08, 2)
    if free("total"):
        tax = obj["tax"] if isinstance(obj.get("tax"), (int, float)) else 0
        obj["total"] = round(base + tax, 2)


_TEXT_KEY_RES = {
    "yaml_schema": re.compile(r"^([A-Za-z_][\w-]*)\s*:", re.MULTILINE),
    "xml_schema": re.compile(r"<([A-Za-z_][\w-]*)[\s>/]"),
}


def _schema_from_text_schemas(data: dict[str, Any]) -> dict[str, Any]:
    """A pattern without a JSON schema: read field names from its csv/yaml/xml/text schema."""
    keys: list[str] = []
    csv_schema = data.get("csv_schema")
    if isinstance(csv_schema, str) and csv_schema.strip():
        header = csv_schema.strip().splitlines()[0]
        sep = ";" if data.get("csv_delimiter") == "semicolon" else ","
        keys = [k.strip().strip('"') for k in header.split(sep) if k.strip()]
    for field_name, regex in _TEXT_KEY_RES.items():
        text = data.get(field_name)
        if not keys and isinstance(text, str):
            found = regex.findall(text)
            keys = found[1:] if field_name == "xml_schema" else found  # drop the XML root
    if not keys and isinstance(data.get("plain_text_schema"), str):
        keys = ["text"]
    if not keys:
        keys = list(_IMAGE_FACT_KEYS)
    return {"type": "object", "properties": {k: {} for k in dict.fromkeys(keys)}}


_IMAGE_FACT_KEYS = (
    "width",
    "height",
    "format",
    "mode",
    "sha256",
    "dominant_colors",
    "exif",
)
