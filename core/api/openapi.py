"""The OpenAPI 3.1 document, generated from the route table so it cannot drift."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from core import __version__
from core.api import schemas
from core.api.router import Route

_ERRORS = {
    "400": "Malformed request",
    "401": "Missing or invalid credentials",
    "404": "Not found (or another tenant's)",
    "409": "Conflict",
    "413": "Body too large",
    "415": "Unsupported content type",
    "422": "Invalid fields",
    "429": "Rate limited",
    "503": "A dependency is unavailable",
}


def _operation(route: Route) -> dict[str, Any]:
    params: list[dict[str, Any]] = [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
        for name in re.findall(r"\{(\w+)\}", route.path)
    ]
    params += [
        {
            "name": q.name,
            "in": "query",
            "required": False,
            "schema": q.schema,
            "description": q.description,
        }
        for q in route.query
    ]
    if route.auth and route.method == "POST":
        params.append(
            {
                "name": "Idempotency-Key",
                "in": "header",
                "required": False,
                "schema": {"type": "string"},
            }
        )
    responses: dict[str, Any] = dict(route.responses)
    for code, text in _ERRORS.items():
        if code in responses or (code == "401" and not route.auth and "webhook" not in route.path):
            continue
        responses[code] = {
            "description": text,
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
        }
    op: dict[str, Any] = {
        "operationId": route.operation_id,
        "summary": route.summary,
        "tags": list(route.tags),
        "parameters": params,
        "responses": responses,
        "security": [{"bearer": []}] if route.auth else [],
    }
    if route.request_body is not None:
        op["requestBody"] = {"required": True, "content": route.request_body}
    return op


def build_openapi(routes: Sequence[Route]) -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    for route in routes:
        paths.setdefault(route.path, {})[route.method.lower()] = _operation(route)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "imggo-functions",
            "version": __version__,
            "description": "Submit images to ImgGo and track each job until its structured "
            'result is stored. Every error is {"error": {"code", "message", "details"}}.',
        },
        "paths": paths,
        "components": {
            "schemas": {
                "Error": schemas.ERROR,
                "Job": schemas.JOB,
                "Batch": schemas.BATCH,
                "JsonValue": schemas.JSON_VALUE,
            },
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }
