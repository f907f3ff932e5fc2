"""The one route table of the HTTP surface. Every cloud handler serves exactly this."""

from __future__ import annotations

import re
from typing import Any

from core import __version__
from core.api import schemas
from core.api.bodies import BadRequestError, is_json_type, read_json_object, read_multipart
from core.api.http import Request, Response
from core.api.router import AppContext, QueryParam, Route
from core.api.views import batch_view, iso, job_location, job_view
from core.domain import json_input
from core.domain.errors import (
    RejectedError,
    UnavailableError,
    UnsupportedMediaTypeError,
    ValidationError,
)
from core.domain.job import JobStatus
from core.ports import ImageApiError, ImageUpload
from core.service import query
from core.service.submit import NewJob, submit

# The batch, upload and webhook services are imported by their routes, when first
# called: a cold start serving one job (the common case) does not load them.

JSON = "application/json"
_INT_PARAM = re.compile(r"-?[0-9]{1,9}")


def _ok(schema: dict[str, Any], description: str = "OK") -> dict[str, Any]:
    return {"description": description, "content": {JSON: {"schema": schema}}}


def _str_field(body: dict[str, Any], name: str, *, required: bool) -> str | None:
    value = body.get(name)
    if value is None:
        if required:
            raise ValidationError(
                f"{name} is required", code="missing_field", details={"field": name}
            )
        return None
    if not isinstance(value, str):
        raise ValidationError(
            f"{name} must be a string", code="invalid_field", details={"field": name}
        )
    return value


def _extras(value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    if isinstance(value, str):
        try:
            value = json_input.loads(value, what="extras")
        except json_input.JsonInputError as exc:
            raise ValidationError(
                "extras must be a JSON object", code="invalid_extras", details=exc.details
            ) from None
    if not isinstance(value, dict):
        raise ValidationError("extras must be a JSON object", code="invalid_extras")
    return value


def _idempotency_key(request: Request, in_body: str | None) -> str | None:
    header = request.headers.get("idempotency-key")
    if header is not None and in_body is not None and header != in_body:
        raise ValidationError(
            "the Idempotency-Key header and the body's idempotency_key differ",
            code="invalid_idempotency_key",
        )
    return header if header is not None else in_body


def _new_job(request: Request, tenant: str) -> NewJob:
    ctype = request.content_type
    if is_json_type(ctype):
        body = read_json_object(request)
        return NewJob(
            tenant=tenant,
            pattern_id=_str_field(body, "pattern_id", required=True) or "",
            image_url=_str_field(body, "image_url", required=True),
            extras=_extras(body.get("extras")),
            idempotency_key=_idempotency_key(
                request, _str_field(body, "idempotency_key", required=False)
            ),
        )
    if ctype == "multipart/form-data":
        parts = read_multipart(request)
        image = parts.get("image")
        if image is None or image.filename is None:
            raise ValidationError("the form needs a file field 'image'", code="missing_image")
        pattern = (
            parts["pattern_id"].text() if "pattern_id" in parts else request.query.get("pattern_id")
        )
        if not pattern:
            raise ValidationError(
                "pattern_id is required", code="missing_field", details={"field": "pattern_id"}
            )
        return NewJob(
            tenant=tenant,
            pattern_id=pattern,
            upload=ImageUpload(image.data, image.filename, image.content_type or ""),
            extras=_extras(parts["extras"].text() if "extras" in parts else None),
            idempotency_key=_idempotency_key(
                request, parts["idempotency_key"].text() if "idempotency_key" in parts else None
            ),
        )
    if ctype.startswith("image/"):
        pattern = request.query.get("pattern_id")
        if not pattern:
            raise ValidationError(
                "a raw image body needs ?pattern_id=",
                code="missing_field",
                details={"field": "pattern_id"},
            )
        return NewJob(
            tenant=tenant,
            pattern_id=pattern,
            upload=ImageUpload(request.body, request.query.get("filename") or "upload", ctype),
            idempotency_key=_idempotency_key(request, None),
        )
    raise UnsupportedMediaTypeError(
        "send application/json (image_url), multipart/form-data (image) or an image/* body"
    )


def _tenant(request: Request) -> str:
    assert request.tenant is not None  # the app authenticates before calling a handler
    return request.tenant


def create_job(ctx: AppContext, request: Request) -> Response:
    outcome = submit(ctx.services, _new_job(request, _tenant(request)))
    job = outcome.job
    if outcome.created and job.status is JobStatus.REJECTED and job.error is not None:
        raise RejectedError(
            f"ImgGo refused the image: {job.error.message}",
            details={"job_id": job.id, "imggo_code": job.error.code},
        )
    return Response.json(
        202 if outcome.created else 200, job_view(job), {"Location": job_location(job.id)}
    )


def get_job(ctx: AppContext, request: Request) -> Response:
    job_id = request.path_params["job_id"]
    fmt = request.query.get("format")
    if fmt is not None and fmt != "json":
        content_type, body = query.export_job(ctx.services, _tenant(request), job_id, fmt)
        response = Response(200, body)
        response.headers["Content-Type"] = content_type
        return response
    return Response.json(200, job_view(query.get_job(ctx.services, _tenant(request), job_id)))


def get_job_image(ctx: AppContext, request: Request) -> Response:
    content_type, data = query.stored_image(
        ctx.services, _tenant(request), request.path_params["job_id"]
    )
    response = Response(200, data)
    response.headers["Content-Type"] = content_type
    # Tenant data behind a key: never a shared cache; never sniffed into something else.
    response.headers["Cache-Control"] = "private, max-age=3600"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


def _int_param(request: Request, name: str, default: int) -> int:
    raw = request.query.get(name)
    if raw is None:
        return default
    # Plain ASCII digits only: int() also takes " 7", "1_0" and other scripts' digits.
    if not _INT_PARAM.fullmatch(raw):
        raise ValidationError(f"{name} must be an integer", code=f"invalid_{name}")
    return int(raw)


def list_jobs(ctx: AppContext, request: Request) -> Response:
    page = query.list_jobs(
        ctx.services,
        _tenant(request),
        status=request.query.get("status"),
        limit=_int_param(request, "limit", 50),
        cursor=request.query.get("cursor"),
    )
    return Response.json(
        200,
        {
            "items": [job_view(j) for j in page.items],
            "next_cursor": page.next_cursor,
            "skipped": len(page.unreadable),
        },
    )


def create_batch(ctx: AppContext, request: Request) -> Response:
    from core.service import batch as batches

    body = read_json_object(request)
    pattern = _str_field(body, "pattern_id", required=True) or ""
    raw_items = body.get("items")
    if not isinstance(raw_items, list):
        raise ValidationError(
            "items must be a list", code="invalid_field", details={"field": "items"}
        )
    items: list[batches.BatchItem] = []
    for index, raw in enumerate(raw_items):
        if not isinstance(raw, dict):
            raise ValidationError(
                f"items[{index}] must be an object", code="invalid_field", details={"index": index}
            )
        url = raw.get("image_url")
        if not isinstance(url, str):
            # The request's shape is wrong (the client's code, not one image): refused
            # whole. What can go wrong with one URL (it does not resolve, it is private)
            # is reported in that item's slot.
            raise ValidationError(
                f"items[{index}].image_url must be a string",
                code="invalid_field",
                details={"index": index, "field": "image_url"},
            )
        items.append(batches.BatchItem(image_url=url, extras=_extras(raw.get("extras"))))
    result = batches.run_batch(
        ctx.services,
        _tenant(request),
        pattern,
        items,
        idempotency_key=_idempotency_key(request, None),
    )
    return Response.json(
        202 if result.created else 200,
        batch_view(result.batch, result.items),
        {"Location": f"/v1/batches/{result.batch.id}"},
    )


def create_upload(ctx: AppContext, request: Request) -> Response:
    from core.service import uploads

    body = read_json_object(request)
    size = body.get("size")
    ticket = uploads.create_upload(
        ctx.services,
        tenant=_tenant(request),
        pattern_id=_str_field(body, "pattern_id", required=True) or "",
        content_type=_str_field(body, "content_type", required=True) or "",
        # bool is an int to Python, not a size to anyone.
        size=size if isinstance(size, int) and not isinstance(size, bool) else -1,
        filename=_str_field(body, "filename", required=False),
        extras=_extras(body.get("extras")),
        idempotency_key=_idempotency_key(
            request, _str_field(body, "idempotency_key", required=False)
        ),
    )
    upload = None
    if ticket.upload is not None:
        upload = {
            "url": ticket.upload.url,
            "method": ticket.upload.method,
            "headers": ticket.upload.headers,
            "expires_at": iso(ticket.upload.expires_at),
        }
    return Response.json(
        201 if ticket.created else 200,
        {"job": job_view(ticket.job), "upload": upload},
        {"Location": job_location(ticket.job.id)},
    )


def get_batch(ctx: AppContext, request: Request) -> Response:
    from core.service import batch as batches

    batch = batches.load_batch(ctx.services, _tenant(request), request.path_params["batch_id"])
    return Response.json(200, batch_view(batch, batches.batch_status(ctx.services, batch)))


def imggo_webhook(ctx: AppContext, request: Request) -> Response:
    from core.service.webhook import SIGNATURE_HEADER, apply_webhook

    result = apply_webhook(ctx.services, request.body, request.headers.get(SIGNATURE_HEADER))
    return Response.json(
        200, {"job_id": result.job.id, "status": result.job.status.value, "applied": result.applied}
    )


def health(ctx: AppContext, request: Request) -> Response:
    return Response.json(200, {"status": "ok", "version": __version__})


def ready(ctx: AppContext, request: Request) -> Response:
    services = ctx.services
    checks: dict[str, str] = {}
    try:
        services.store.ping()
        checks["store"] = "ok"
    except Exception as exc:
        checks["store"] = f"error: {type(exc).__name__}"
    try:
        services.imggo.ping()
        checks["imggo"] = "ok"
    except ImageApiError as exc:
        checks["imggo"] = f"error: {exc.message}"
    if any(v != "ok" for v in checks.values()):
        raise UnavailableError("not ready", code="not_ready", details={"checks": checks})
    return Response.json(200, {"status": "ready", "checks": checks})


def openapi(ctx: AppContext, request: Request) -> Response:
    from core.api.openapi import build_openapi

    return Response.json(200, build_openapi(ctx.router.routes))


FORMAT = QueryParam(
    "format", {"type": "string", "enum": list(query.EXPORT_FORMATS)}, "render the manifest"
)

ROUTES: list[Route] = [
    Route(
        "POST",
        "/v1/jobs",
        create_job,
        "createJob",
        "Submit an image",
        request_body={
            JSON: {"schema": schemas.SUBMIT_JSON},
            "multipart/form-data": {"schema": schemas.SUBMIT_MULTIPART},
            "image/*": {"schema": {"type": "string", "format": "binary"}},
        },
        query=(
            QueryParam("pattern_id", {"type": "string"}, "for a raw image/* body"),
            QueryParam("filename", {"type": "string"}, "for a raw image/* body"),
        ),
        responses={
            "202": _ok(schemas.JOB, "Accepted"),
            "200": _ok(schemas.JOB, "Idempotent replay"),
        },
        tags=("jobs",),
    ),
    Route(
        "GET",
        "/v1/jobs",
        list_jobs,
        "listJobs",
        "List your jobs, newest first",
        query=(
            QueryParam("status", {"type": "string", "enum": schemas.STATUS_ENUM}),
            QueryParam("limit", {"type": "integer", "minimum": 1, "maximum": 200, "default": 50}),
            QueryParam("cursor", {"type": "string"}, "next_cursor of the previous page"),
        ),
        responses={"200": _ok(schemas.JOB_LIST)},
        tags=("jobs",),
    ),
    Route(
        "GET",
        "/v1/jobs/{job_id}",
        get_job,
        "getJob",
        "Read a job (refreshed from ImgGo when stale)",
        query=(FORMAT,),
        responses={"200": _ok(schemas.JOB)},
        tags=("jobs",),
    ),
    Route(
        "GET",
        "/v1/jobs/{job_id}/image",
        get_job_image,
        "getJobImage",
        "The uploaded image of a job (uploads only; see links.image)",
        responses={
            "200": {
                "description": "The image bytes",
                "content": {"image/*": {"schema": {"type": "string", "format": "binary"}}},
            }
        },
        tags=("jobs",),
    ),
    Route(
        "POST",
        "/v1/batches",
        create_batch,
        "createBatch",
        "Submit many image URLs at once",
        request_body={JSON: {"schema": schemas.BATCH_REQUEST}},
        responses={
            "202": _ok(schemas.BATCH, "Accepted"),
            "200": _ok(schemas.BATCH, "Idempotent replay"),
        },
        tags=("batches",),
    ),
    Route(
        "POST",
        "/v1/uploads",
        create_upload,
        "createUpload",
        "Get a signed URL to PUT a large image straight into the blob store",
        request_body={JSON: {"schema": schemas.UPLOAD_REQUEST}},
        responses={
            "201": _ok(schemas.UPLOAD, "Created"),
            "200": _ok(schemas.UPLOAD, "Replay"),
            "501": _ok(
                schemas.ERROR, "This deployment's blob store cannot sign URLs (laptop mode)"
            ),
        },
        tags=("jobs",),
    ),
    Route(
        "GET",
        "/v1/batches/{batch_id}",
        get_batch,
        "getBatch",
        "Read a batch and its items",
        responses={"200": _ok(schemas.BATCH)},
        tags=("batches",),
    ),
    Route(
        "POST",
        "/v1/webhooks/imggo",
        imggo_webhook,
        "imggoWebhook",
        "ImgGo's job events (signed with X-ImgGo-Signature)",
        auth=False,
        request_body={JSON: {"schema": schemas.WEBHOOK}},
        responses={"200": _ok({"type": "object"})},
        tags=("webhooks",),
    ),
    Route(
        "GET",
        "/health",
        health,
        "health",
        "Liveness",
        auth=False,
        responses={"200": _ok({"type": "object"})},
        tags=("health",),
    ),
    Route(
        "GET",
        "/health/ready",
        ready,
        "ready",
        "Readiness: store and ImgGo reachable",
        auth=False,
        responses={"200": _ok({"type": "object"})},
        tags=("health",),
    ),
    Route(
        "GET",
        "/openapi.json",
        openapi,
        "openapi",
        "This document",
        auth=False,
        responses={"200": _ok({"type": "object"})},
        tags=("meta",),
    ),
]

__all__ = ["ROUTES", "BadRequestError"]
