"""JSON Schemas of our wire types, for the generated OpenAPI document."""

from __future__ import annotations

from typing import Any

from core.domain.job import JobStatus

STATUS_ENUM = [s.value for s in JobStatus]

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
        "pattern_id": {"type": "string", "pattern": "^[a-zA-Z0-9_-]{1,128}$"},
        "image_url": {"type": "string", "format": "uri"},
        "extras": {"type": "object"},
        "idempotency_key": {"type": "string", "pattern": "^[a-zA-Z0-9_-]{1,255}$"},
    },
}

SUBMIT_MULTIPART: dict[str, Any] = {
    "type": "object",
    "required": ["pattern_id", "image"],
    "properties": {
        "pattern_id": {"type": "string"},
        "image": {"type": "string", "format": "binary"},
        "extras": {"type": "string", "description": "a JSON object, as a string"},
        "idempotency_key": {"type": "string"},
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
        "pattern_id": {"type": "string"},
        "items": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "required": ["image_url"],
                "properties": {"image_url": {"type": "string"}, "extras": {"type": "object"}},
            },
        },
    },
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
        "manifest": {"type": ["object", "null"]},
        "error": {"type": ["string", "null"]},
        "timestamp": {"type": "string", "format": "date-time"},
    },
}

UPLOAD_REQUEST: dict[str, Any] = {
    "type": "object",
    "required": ["pattern_id", "content_type", "size"],
    "properties": {
        "pattern_id": {"type": "string"},
        "content_type": {
            "type": "string",
            "enum": ["image/jpeg", "image/png", "image/gif", "image/webp", "image/bmp"],
        },
        "size": {"type": "integer", "minimum": 1, "description": "exact byte count"},
        "filename": {"type": "string"},
        "extras": {"type": "object"},
        "idempotency_key": {"type": "string"},
    },
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
