"""JSON Schemas of our wire types, for the generated OpenAPI document."""

from __future__ import annotations

from typing import Any

from core.domain.job import JobStatus
from core.domain.json_input import MAX_SAFE_INTEGER

STATUS_ENUM = [s.value for s in JobStatus]

# What core.domain.json_input accepts anywhere in a body, as JSON Schema can say it:
# numbers within +/-(2**53 - 1) (NaN and Infinity are not JSON). Lone surrogates and
# nesting deeper than 32 levels are refused too, which JSON Schema cannot express.
JSON_VALUE_REF = {"$ref": "#/components/schemas/JsonValue"}
JSON_VALUE: dict[str, Any] = {
    "description": "any JSON value whose numbers lie within +/-(2**53 - 1)",
    "anyOf": [
        {"type": ["string", "boolean", "null"]},
        {"type": "number", "minimum": -MAX_SAFE_INTEGER, "maximum": MAX_SAFE_INTEGER},
        {"type": "array", "items": JSON_VALUE_REF},
        {"type": "object", "additionalProperties": JSON_VALUE_REF},
    ],
}
JSON_OBJECT: dict[str, Any] = {"type": "object", "additionalProperties": JSON_VALUE_REF}
# Optional fields may also be null: the server reads null as "not given".
NULLABLE_JSON_OBJECT: dict[str, Any] = {"anyOf": [JSON_OBJECT, {"type": "null"}]}
# The full-match rules of core.service.submit, as ECMA regexes ($ is the end there).
PATTERN_ID: dict[str, Any] = {"type": "string", "pattern": "^[a-zA-Z0-9_-]{1,128}$"}
IDEMPOTENCY_KEY: dict[str, Any] = {"type": "string", "pattern": "^[a-zA-Z0-9_-]{1,255}$"}
NULLABLE_IDEMPOTENCY_KEY: dict[str, Any] = {"anyOf": [IDEMPOTENCY_KEY, {"type": "null"}]}

ERROR: dict[str, Any] = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message", "details"],
            "properties": {
                "code": {"type": "string", "description": "stable, machine-readable"},
                "message": {"type": "string", "description": "for humans"},
                "details": {"type": "object"},
            },
        }
    },
}

JOB: dict[str, Any] = {
    "type": "object",
    "required": ["id", "status", "pattern_id", "source", "created_at", "updated_at"],
    "properties": {
        "id": {"type": "string", "format": "uuid"},
        "status": {"type": "string", "enum": STATUS_ENUM},
        "pattern_id": {"type": "string"},
        "source": {"type": "object"},
        "imggo_job_id": {"type": ["string", "null"]},
        "manifest": {"type": ["object", "null"]},
        "error": {"type": ["object", "null"]},
        "attempts": {"type": "integer"},
        "idempotency_key": {"type": ["string", "null"]},
        "content_sha256": {"type": ["string", "null"]},
        "extras": {"type": "object"},
        "batch_id": {"type": ["string", "null"]},
        "dedupe_of": {"type": ["string", "null"]},
        "created_at": {"type": "string", "format": "date-time"},
        "updated_at": {"type": "string", "format": "date-time"},
        "completed_at": {"type": ["string", "null"], "format": "date-time"},
        "expires_at": {"type": ["string", "null"], "format": "date-time"},
        "links": {"type": "object"},
    },
}

SUBMIT_JSON: dict[str, Any] = {
    "type": "object",
    "required": ["pattern_id", "image_url"],
    "properties": {
        "pattern_id": PATTERN_ID,
        "image_url": {"type": "string", "format": "uri"},
        "extras": NULLABLE_JSON_OBJECT,
        "idempotency_key": NULLABLE_IDEMPOTENCY_KEY,
    },
    "additionalProperties": JSON_VALUE_REF,
}

SUBMIT_MULTIPART: dict[str, Any] = {
    "type": "object",
    "required": ["pattern_id", "image"],
    "properties": {
        "pattern_id": PATTERN_ID,
        "image": {"type": "string", "format": "binary"},
        "extras": {"type": "string", "description": "a JSON object, as a string"},
        "idempotency_key": IDEMPOTENCY_KEY,
    },
}

JOB_LIST: dict[str, Any] = {
    "type": "object",
    "properties": {
        "items": {"type": "array", "items": JOB},
        "next_cursor": {"type": ["string", "null"]},
        "skipped": {
            "type": "integer",
            "description": "jobs of this page left out: their stored record cannot be read",
        },
    },
}

BATCH_REQUEST: dict[str, Any] = {
    "type": "object",
    "required": ["pattern_id", "items"],
    "properties": {
        "pattern_id": PATTERN_ID,
        "items": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "required": ["image_url"],
                "properties": {"image_url": {"type": "string"}, "extras": NULLABLE_JSON_OBJECT},
                "additionalProperties": JSON_VALUE_REF,
            },
        },
    },
    "additionalProperties": JSON_VALUE_REF,
}

BATCH: dict[str, Any] = {
    "type": "object",
    "properties": {
        "id": {"type": "string"},
        "pattern_id": {"type": "string"},
        "total": {"type": "integer"},
        "complete": {"type": "boolean"},
        "counts": {"type": "object"},
        "items": {"type": "array", "items": {"type": "object"}},
    },
}

WEBHOOK: dict[str, Any] = {
    "type": "object",
    "required": ["event", "job_id", "timestamp"],
    "properties": {
        "event": {"type": "string", "enum": ["job.succeeded", "job.failed"]},
        "job_id": {"type": "string"},
        "pattern_id": {"type": "string"},
        "manifest": {"anyOf": [JSON_OBJECT, {"type": "null"}]},
        "error": {"type": ["string", "null"]},
        "timestamp": {"type": "string", "format": "date-time"},
    },
    "additionalProperties": JSON_VALUE_REF,
}

UPLOAD_REQUEST: dict[str, Any] = {
    "type": "object",
    "required": ["pattern_id", "content_type", "size"],
    "properties": {
        "pattern_id": PATTERN_ID,
        "content_type": {
            "type": "string",
            "enum": ["image/jpeg", "image/png", "image/gif", "image/webp", "image/bmp"],
        },
        "size": {
            "type": "integer",
            "minimum": 1,
            "maximum": MAX_SAFE_INTEGER,
            "description": "exact byte count (413 past the image limit)",
        },
        "filename": {"type": ["string", "null"]},
        "extras": NULLABLE_JSON_OBJECT,
        "idempotency_key": NULLABLE_IDEMPOTENCY_KEY,
    },
    "additionalProperties": JSON_VALUE_REF,
}

UPLOAD: dict[str, Any] = {
    "type": "object",
    "properties": {
        "job": JOB,
        "upload": {
            "type": ["object", "null"],
            "properties": {
                "url": {"type": "string"},
                "method": {"type": "string"},
                "headers": {"type": "object"},
                "expires_at": {"type": "string", "format": "date-time"},
            },
        },
    },
}
