"""Patterns: the built-in demo set shipped as JSON files, plus those created via the API.

Built-in patterns have stable UUIDs (see patterns/*.json) and are visible to every API key.
Each also answers to a short alias wherever a pattern id is expected, e.g.
`POST /api/patterns/invoice/ingest` is `POST /api/patterns/fb8e0e86-.../ingest`:

    invoice      fb8e0e86-c820-5baf-b272-ec0b19c44568
    product      8438a290-3f88-5171-9534-bd769f41520f
    receipt      c080bda8-6f02-5191-b3f9-09e892ba648a
    image-facts  2f5d3ccc-74be-55ec-b2cb-f1cfe82bc8b0

Jobs always record the canonical UUID as their pattern_id, never the alias.
Patterns created with POST /api/patterns belong to the creating API key only, and only
that key may change them with PATCH /api/patterns/{id}; built-in patterns are read-only.
"""

from __future__ import annotations

import json
import re
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .http_types import ApiError, bad_request
from .timestamps import iso_ms

PATTERNS_DIR = Path(__file__).with_name("patterns")
# The owner recorded on built-in patterns (Pattern.user_id is a required uuid).
SYSTEM_USER_ID = "8d79a63d-3730-5c2a-9370-f0b569e78b59"
BUILTIN_CREATED_AT = "2025-01-01T00:00:00.000Z"

FORMATS = ("json", "yaml", "xml", "csv", "text")
CSV_DELIMITERS = ("comma", "semicolon")
_NAME_RE = re.compile(r"^[a-zA-Z0-9\s\-_()]+$")
_STRING_SCHEMA_FIELDS = ("yaml_schema", "xml_schema", "csv_schema", "plain_text_schema")
# What an UpdatePatternRequest may change (openapi.yaml); other fields in the body are
# ignored, as JSON Schema allows them. publish_new_version is the one instruction.
_UPDATABLE_FIELDS = (
    "name",
    "format",
    "instructions",
    "json_schema",
    *_STRING_SCHEMA_FIELDS,
    "csv_delimiter",
    "is_active",
)
_UPDATE_MIN_INSTRUCTIONS = 10  # minLength on update; creation has none

# alias -> canonical id of the built-in patterns (patterns/*.json; a test checks they agree).
BUILTIN_PATTERN_IDS: dict[str, str] = {
    "image-facts": "2f5d3ccc-74be-55ec-b2cb-f1cfe82bc8b0",
    "invoice": "fb8e0e86-c820-5baf-b272-ec0b19c44568",
    "product": "8438a290-3f88-5171-9534-bd769f41520f",
    "receipt": "c080bda8-6f02-5191-b3f9-09e892ba648a",
}


@dataclass(slots=True)
class Pattern:
    data: dict[str, Any]  # the public Pattern object, exactly as the API returns it
    owner: str | None  # user id owning it; None = built-in, visible to all
    alias: str | None = None
    revision: int = 0  # bumped by every update: manifests cached for older ones are stale

    @property
    def id(self) -> str:
        return str(self.data["id"])

    @property
    def json_schema(self) -> Any:
        return self.data.get("json_schema")

    @property
    def csv_delimiter(self) -> str:
        return "," if self.data.get("csv_delimiter") == "comma" else ";"

    def cache_key(self) -> tuple[str, int]:
        return (self.id, self.revision)


def _public(raw: dict[str, Any], *, pid: str, user_id: str, created_at: str) -> dict[str, Any]:
    return {
        "id": pid,
        "user_id": user_id,
        "name": raw["name"],
        "format": raw.get("format", "json"),
        "json_schema": raw.get("json_schema"),
        "yaml_schema": raw.get("yaml_schema"),
        "xml_schema": raw.get("xml_schema"),
        "csv_schema": raw.get("csv_schema"),
        "csv_delimiter": raw.get("csv_delimiter", "comma"),
        "plain_text_schema": raw.get("plain_text_schema"),
        "instructions": raw["instructions"],
        "model_profile": raw.get("model_profile", "managed-default"),
        "version": raw.get("version", 1),
        "is_active": raw.get("is_active", True),
        "created_at": created_at,
        "updated_at": created_at,
        "parent_pattern_id": raw.get("parent_pattern_id"),
    }


def load_builtin_patterns(directory: Path = PATTERNS_DIR) -> list[Pattern]:
    patterns = []
    for path in sorted(directory.glob("*.json")):
        raw = json.loads(path.read_text(encoding="utf-8"))
        data = _public(raw, pid=raw["id"], user_id=SYSTEM_USER_ID, created_at=BUILTIN_CREATED_AT)
        patterns.append(Pattern(data=data, owner=None, alias=raw.get("alias")))
    return patterns


class PatternRegistry:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_id: dict[str, Pattern] = {}
        self._aliases: dict[str, str] = {}
        for pattern in load_builtin_patterns():
            self._by_id[pattern.id] = pattern
            if pattern.alias:
                self._aliases[pattern.alias] = pattern.id

    def get(self, ident: str, user_id: str) -> Pattern | None:
        with self._lock:
            pattern = self._by_id.get(self._aliases.get(ident, ident.lower()))
        if pattern is None or (pattern.owner is not None and pattern.owner != user_id):
            return None
        return pattern

    def get_any(self, pattern_id: str) -> Pattern | None:
        """By canonical id, whoever owns it (for the job processor, not for requests)."""
        with self._lock:
            return self._by_id.get(pattern_id)

    def visible(self, user_id: str) -> list[Pattern]:
        with self._lock:
            patterns = list(self._by_id.values())
        return [p for p in patterns if p.owner is None or p.owner == user_id]

    def create(self, body: Any, user_id: str) -> Pattern:
        validated = validate_create_request(body)
        now = iso_ms(time.time())
        pattern = Pattern(
            data=_public(validated, pid=str(uuid.uuid4()), user_id=user_id, created_at=now),
            owner=user_id,
        )
        with self._lock:
            self._by_id[pattern.id] = pattern
        return pattern

    def update(self, ident: str, body: Any, user_id: str) -> Pattern | None:
        """Apply an UpdatePatternRequest; None when `user_id` owns no such pattern."""
        found = self.get(ident, user_id)
        if found is None or found.owner is None:
            return None
        changes, publish = validate_update_request(body)
        now = iso_ms(time.time())
        with self._lock:  # from the latest revision: concurrent updates are not lost
            current = self._by_id[found.id]
            data = {**current.data, **changes, "updated_at": now}
            if publish:
                data["version"] = int(current.data["version"]) + 1
            # A new object, not an edit: a job reading the old one keeps a consistent view.
            updated = Pattern(data, current.owner, current.alias, current.revision + 1)
            self._by_id[found.id] = updated
        return updated


def validate_create_request(body: Any) -> dict[str, Any]:
    """Check a CreatePatternRequest as openapi.yaml describes it; ApiError(400) if not."""
    if not isinstance(body, dict):
        raise bad_request("Request body must be a JSON object")
    _check_name(body.get("name"))
    _check_instructions(body.get("instructions"), min_length=0)
    fmt = body.get("format", "json")
    _check_format(fmt)
    _check_csv_delimiter(body.get("csv_delimiter", "comma"))
    for name in _STRING_SCHEMA_FIELDS:
        _check_schema_string(name, body.get(name), nullable=True)
    model_profile = body.get("model_profile", "managed-default")
    if not isinstance(model_profile, str) or not model_profile:
        raise bad_request("model_profile must be a non-empty string", field="model_profile")
    version = body.get("version", 1)
    if not isinstance(version, int) or isinstance(version, bool) or version < 0:
        raise bad_request("version must be a non-negative integer", field="version")
    _check_boolean("is_active", body.get("is_active", True))
    parent = body.get("parent_pattern_id")
    if parent is not None and not is_uuid(parent):
        raise bad_request("parent_pattern_id must be a uuid", field="parent_pattern_id")
    schema = body.get("json_schema")
    if schema is not None:
        check_json_schema(schema)
    return {**body, "format": fmt, "model_profile": model_profile, "version": max(version, 1)}


def validate_update_request(body: Any) -> tuple[dict[str, Any], bool]:
    """Check an UpdatePatternRequest; (the changes, publish_new_version) or ApiError(400).
    Every field is checked before anything is applied: a bad body changes nothing."""
    if not isinstance(body, dict):
        raise bad_request("Request body must be a JSON object")
    changes = {key: body[key] for key in _UPDATABLE_FIELDS if key in body}
    if "name" in changes:
        _check_name(changes["name"])
    if "format" in changes:
        _check_format(changes["format"])
    if "instructions" in changes:
        _check_instructions(changes["instructions"], min_length=_UPDATE_MIN_INSTRUCTIONS)
    for name in _STRING_SCHEMA_FIELDS:
        if name in changes:  # plain_text_schema alone is not nullable on update
            _check_schema_string(name, changes[name], nullable=name != "plain_text_schema")
    if "csv_delimiter" in changes:
        _check_csv_delimiter(changes["csv_delimiter"])
    if "is_active" in changes:
        _check_boolean("is_active", changes["is_active"])
    if changes.get("json_schema") is not None:
        check_json_schema(changes["json_schema"])
    publish = body.get("publish_new_version", False)
    _check_boolean("publish_new_version", publish)
    return changes, publish


def _check_name(name: Any) -> None:
    if not isinstance(name, str) or not 1 <= len(name) <= 255 or not _NAME_RE.match(name):
        raise bad_request("name must be 1-255 letters, digits, spaces, -, _ or ()", field="name")


def _check_instructions(instructions: Any, *, min_length: int) -> None:
    if not isinstance(instructions, str) or not min_length <= len(instructions) <= 2000:
        length = f"{min_length} to 2000" if min_length else "at most 2000"
        raise bad_request(
            f"instructions must be a string of {length} characters", field="instructions"
        )


def _check_format(fmt: Any) -> None:
    if fmt not in FORMATS:
        raise bad_request(f"format must be one of {', '.join(FORMATS)}", field="format")


def _check_csv_delimiter(delimiter: Any) -> None:
    if delimiter not in CSV_DELIMITERS:
        raise bad_request("csv_delimiter must be comma or semicolon", field="csv_delimiter")


def _check_schema_string(name: str, value: Any, *, nullable: bool) -> None:
    if value is None and nullable:
        return
    if not isinstance(value, str) or len(value) > 5000:
        raise bad_request(f"{name} must be a string of at most 5000 characters", field=name)


def _check_boolean(name: str, value: Any) -> None:
    if not isinstance(value, bool):
        raise bad_request(f"{name} must be a boolean", field=name)


def check_json_schema(schema: Any) -> None:
    if not isinstance(schema, dict):
        raise ApiError(
            400,
            "INVALID_SCHEMA",
            "The provided JSON schema is invalid",
            {"field": "json_schema", "reason": "The schema must be a JSON object"},
        )
    _check_property_keys(schema, depth=0)


def _check_property_keys(schema: dict[str, Any], depth: int) -> None:
    # The real service refuses property names with whitespace (openapi.yaml's example error).
    if depth > 32:
        return
    properties = schema.get("properties")
    if isinstance(properties, dict):
        for key, sub in properties.items():
            if any(ch.isspace() for ch in key):
                raise ApiError(
                    400,
                    "INVALID_SCHEMA",
                    "The provided JSON schema is invalid",
                    {"field": "json_schema", "reason": "Property keys cannot contain whitespace"},
                )
            if isinstance(sub, dict):
                _check_property_keys(sub, depth + 1)
    items = schema.get("items")
    if isinstance(items, dict):
        _check_property_keys(items, depth + 1)


def is_uuid(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True
