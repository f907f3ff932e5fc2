"""The ImgGo API itself: routing, auth, rate limits, chaos and the endpoints.

Transport-neutral (Request in, Response out): server.py adapts it to http.server.
Order of checks for every call: route (404/405) -> auth (401) -> rate limit (429) ->
chaos (ingest and job reads only) -> the endpoint. Errors are always the envelope.
Every /api answer is counted in stats.py; /_sim/... goes to control.py instead, past
all of this.
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

# The project's one multipart parser: the only core module the simulator uses.
from core.api.multipart import MultipartError, parse_form

from .callers import NOBODY, Caller
from .chaos import Chaos
from .config import SimulatorConfig
from .control import ControlEndpoints, is_control_path
from .fetch import MAX_IMAGE_BYTES, host_of
from .formats import FORMATS, render
from .http_types import ApiError, Request, Response, bad_request, dumps, not_found, ok
from .patterns import Pattern, PatternRegistry
from .processing import JobProcessor
from .processing_time import ProcessingTime
from .ratelimit import FixedWindowLimiter
from .routing import Route, match, route
from .scheduler import Scheduler
from .stats import RequestStats
from .store import QUEUED, JobRecord, JobStore
from .timestamps import iso_ms
from .webhooks import WebhookDispatcher, WebhookRegistry

log = logging.getLogger(__name__)

IDEMPOTENCY_KEY_RE = re.compile(r"[a-zA-Z0-9_-]{1,255}")
ALLOWED_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".gif", ".webp", ".bmp"})
# A job is `queued` for this share of its processing time, then `running` for the rest.
QUEUED_SHARE = 0.25
_SAFE_FILENAME_RE = re.compile(r"[^A-Za-z0-9._-]")

Handler = Callable[[Request, Caller, dict[str, str]], Response]

ROUTES = (
    route("GET", "/api/_health", "health", auth=False),
    route("GET", "/api/patterns", "list_patterns"),
    route("POST", "/api/patterns", "create_pattern"),
    route("GET", "/api/patterns/{id}", "get_pattern"),
    route("PATCH", "/api/patterns/{id}", "update_pattern"),
    route("DELETE", "/api/patterns/{id}", "delete_pattern"),
    route("POST", "/api/patterns/{id}/ingest", "ingest", chaos=True),
    route("GET", "/api/jobs/{id}", "get_job", chaos=True),
    route("GET", "/api/webhooks", "list_webhooks"),
    route("POST", "/api/webhooks", "create_webhook"),
    route("DELETE", "/api/webhooks/{id}", "delete_webhook"),
)


class SimulatorApp:
    def __init__(
        self,
        config: Callable[[], SimulatorConfig],
        base_url: Callable[[], str],
        retention_clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._config = config
        self._base_url = base_url
        self.store = JobStore(config, retention_clock)
        self.patterns = PatternRegistry()
        self.limiter = FixedWindowLimiter()
        self.stats = RequestStats()
        self.control = ControlEndpoints(self.stats, config)
        self.chaos = Chaos(config().seed)
        self.processing_time = ProcessingTime(config().seed)
        self.scheduler = Scheduler()
        self.processor = JobProcessor(
            self.store, self.patterns, config, on_outcome=self._outcome_ready
        )
        self.webhook_registry = WebhookRegistry()
        self.webhooks = WebhookDispatcher(self.webhook_registry, config, self.chaos.rng)
        self._callers: dict[str, Caller] = {}  # by API key: hashing it once is enough
        self._callers_lock = threading.Lock()

    def start(self) -> None:
        self.scheduler.start()
        self.processor.start()
        self.webhooks.start()

    def stop(self) -> None:
        self.scheduler.stop()
        self.processor.stop()
        self.webhooks.stop()

    # ------------------------------------------------------------------ entry point
    def handle(self, request: Request) -> Response:
        if is_control_path(request.path):
            return self.control.handle(request)
        config = self._config()
        found: Route | None = None
        caller: Caller | None = None
        charged = None
        try:
            found, params = match(ROUTES, request)
            if found.auth:
                caller = self._authenticate(request, config)
                # One window per API key, shared by every connection presenting it.
                charged = self.limiter.hit(caller.key_id, config.rate_limit_per_minute)
                if not charged.allowed:
                    raise ApiError(
                        429,
                        "RATE_LIMIT_EXCEEDED",
                        f"Rate limit of {charged.limit} requests per minute exceeded",
                        {"limit": charged.limit, "reset": math.ceil(charged.reset_at)},
                    )
            if found.chaos:
                self.chaos.before_request(config)
            handler: Handler = getattr(self, found.handler)
            response = handler(request, caller or NOBODY, params)
        except ApiError as exc:
            response = exc.to_response()
        except Exception:  # a bug: answer in the envelope rather than drop the connection
            log.exception("unhandled error in %s %s", request.method, request.path)
            response = ApiError(500, "INTERNAL_ERROR", "Internal server error").to_response()
        now = time.time()
        key_id = caller.key_id if caller is not None else None
        decision = charged or self.limiter.peek(key_id, config.rate_limit_per_minute, now)
        for name, value in decision.headers(now).items():
            response.headers.setdefault(name, value)
        if response.status == 429:
            response.headers["X-RateLimit-Remaining"] = "0"
        handler_name = found.handler if found is not None else None
        self.stats.answered(
            key_id,
            status=response.status,
            ingest=handler_name == "ingest",
            poll=handler_name == "get_job",
        )
        return response

    def _authenticate(self, request: Request, config: SimulatorConfig) -> Caller:
        header = request.header("authorization") or ""
        scheme, _, key = header.partition(" ")
        key = key.strip()
        if scheme.lower() != "bearer" or not key:
            raise ApiError(
                401,
                "UNAUTHORIZED",
                "Missing Authorization: Bearer <api key> header",
                headers={"WWW-Authenticate": "Bearer"},
            )
        if key not in config.api_keys:
            raise ApiError(
                401, "INVALID_API_KEY", "Invalid API key", headers={"WWW-Authenticate": "Bearer"}
            )
        with self._callers_lock:
            caller = self._callers.get(key)
            if caller is None:
                caller = self._callers[key] = Caller.of(key)
        return caller

    # ------------------------------------------------------------------ system
    def health(self, request: Request, caller: Caller, params: dict[str, str]) -> Response:
        # The spec's HealthResponse is not wrapped in the success envelope.
        body = {
            "status": "healthy",
            "timestamp": iso_ms(time.time()),
            "services": {"database": "up", "storage": "up", "queue": "up"},
        }
        return Response(200, dumps(body))

    # ------------------------------------------------------------------ patterns
    def list_patterns(self, request: Request, caller: Caller, params: dict[str, str]) -> Response:
        page = _positive_int(request.query_one("page"), "page", default=1)
        per_page = _positive_int(request.query_one("per_page"), "per_page", default=20)
        if per_page > 100:
            raise bad_request("per_page must be at most 100", field="per_page")
        patterns = self.patterns.visible(caller.user_id)
        is_active = request.query_one("is_active")
        if is_active is not None:
            if is_active not in ("true", "false"):
                raise bad_request("is_active must be 'true' or 'false'", field="is_active")
            patterns = [p for p in patterns if p.data["is_active"] == (is_active == "true")]
        total = len(patterns)
        chosen = patterns[(page - 1) * per_page : page * per_page]
        return ok(
            {
                "data": [p.data for p in chosen],
                "pagination": {
                    "page": page,
                    "per_page": per_page,
                    "total": total,
                    "total_pages": math.ceil(total / per_page),
                },
            }
        )

    def create_pattern(self, request: Request, caller: Caller, params: dict[str, str]) -> Response:
        pattern = self.patterns.create(_json_body(request), caller.user_id)
        return ok(pattern.data, status=201)

    def get_pattern(self, request: Request, caller: Caller, params: dict[str, str]) -> Response:
        return ok(self._pattern(params["id"], caller.user_id).data)

    def update_pattern(self, request: Request, caller: Caller, params: dict[str, str]) -> Response:
        updated = self.patterns.update(params["id"], _json_body(request), caller.user_id)
        if updated is None:
            raise not_found(
                f"Pattern {params['id']} not found among this API key's patterns"
                " (built-in patterns are read-only)",
                "PATTERN_NOT_FOUND",
            )
        return ok(updated.data)

    def delete_pattern(self, request: Request, caller: Caller, params: dict[str, str]) -> Response:
        self._pattern(params["id"], caller.user_id)
        raise ApiError(403, "FORBIDDEN", "Pattern deletion via API not allowed: use the dashboard")

    def _pattern(self, ident: str, user_id: str) -> Pattern:
        pattern = self.patterns.get(ident, user_id)
        if pattern is None:
            raise not_found(f"Pattern {ident} not found", "PATTERN_NOT_FOUND")
        return pattern

    # ------------------------------------------------------------------ ingest
    def ingest(self, request: Request, caller: Caller, params: dict[str, str]) -> Response:
        config = self._config()
        if config.ingest_latency_s > 0:
            time.sleep(config.ingest_latency_s)
        pattern = self._pattern(params["id"], caller.user_id)
        submission = self._parse_submission(request)
        header_key = request.header("idempotency-key")
        if header_key is not None:
            _check_idempotency_key(header_key)
        idempotency_key = header_key if header_key is not None else submission.idempotency_key

        def make() -> JobRecord:
            job_id = str(uuid.uuid4())
            now, mono = time.time(), time.monotonic()
            duration = self.processing_time.draw(config)
            image_url = submission.image_url or self._upload_url(job_id, submission.filename)
            return JobRecord(
                id=job_id,
                pattern_id=pattern.id,
                user_id=caller.user_id,
                image_url=image_url,
                idempotency_key=idempotency_key,
                extras=submission.extras,
                created_at=now,
                updated_at=now,
                start_due=mono + duration * QUEUED_SHARE,
                finish_due=mono + duration,
                upload=submission.upload,
            )

        job, created = self.store.create_or_get(caller.user_id, idempotency_key, make)
        if not created:
            status = self.store.status_of(job.id) or QUEUED
            return ok(
                {
                    "job_id": job.id,
                    "status": status,
                    "message": "Job already exists for this idempotency key",
                }
            )
        self.stats.job_created(caller.key_id)
        self._schedule(job)
        error = self.chaos.accepted_then_error(config)
        if error is not None:
            raise error
        return ok(
            {"job_id": job.id, "status": QUEUED, "message": "Image queued for processing"},
            status=202,
        )

    def _upload_url(self, job_id: str, filename: str | None) -> str:
        # Informational, like the storage URL the real service records; not served back.
        safe = _SAFE_FILENAME_RE.sub("_", os.path.basename(filename or "upload"))[:128]
        return f"{self._base_url()}/uploads/{job_id}/{safe}"

    def _schedule(self, job: JobRecord) -> None:
        job_id = job.id
        self.scheduler.at(job.start_due, lambda: self._start(job_id))
        self.scheduler.at(job.finish_due, lambda: self._finalize(job_id))

    def _start(self, job_id: str) -> None:
        # The image is read when the job starts running, not when it is ingested: a burst
        # of ingests then costs the API threads nothing but the request itself, as on the
        # real service, whose workers are not its API servers.
        self.store.mark_running(job_id, time.time())
        self.processor.submit(job_id)

    def _outcome_ready(self, job_id: str, due: float) -> None:
        # Called on a worker thread. If the job's time is already up (slow fetch, or
        # processing_s == 0), finish now; otherwise the scheduled finalize will.
        if time.monotonic() >= due:
            self._finalize(job_id)

    def _finalize(self, job_id: str) -> None:
        job = self.store.finalize(job_id, time.time())
        if job is not None:
            self.webhooks.job_finished(job)

    def complete_now(self) -> None:
        """Finish every pending job at once, processing in the caller's thread if needed."""
        for job_id in self.store.pending_ids():
            self.processor.process(job_id)
            self.store.mark_running(job_id, time.time())
            self._finalize(job_id)

    def _parse_submission(self, request: Request) -> _Submission:
        content_type = (request.header("content-type") or "").lower()
        media_type = content_type.split(";", 1)[0].strip()
        if media_type == "multipart/form-data":
            return _multipart_submission(request)
        if media_type in ("application/json", "") or media_type.endswith("+json"):
            return _json_submission(_json_body(request))
        raise bad_request(
            "Content-Type must be application/json or multipart/form-data",
            "UNSUPPORTED_CONTENT_TYPE",
            content_type=media_type,
        )

    # ------------------------------------------------------------------ jobs
    def get_job(self, request: Request, caller: Caller, params: dict[str, str]) -> Response:
        job = self.store.public(params["id"], caller.user_id)
        if job is None:
            raise not_found(f"Job {params['id']} not found", "JOB_NOT_FOUND")
        fmt = request.query_one("format")
        if fmt is not None and fmt.lower() not in FORMATS:
            raise bad_request(
                f"format must be one of {', '.join(FORMATS)}", "INVALID_FORMAT", field="format"
            )
        if fmt is None or fmt.lower() == "json" or job["manifest"] is None:
            # No manifest yet (or json asked): the Job itself, so pollers see the status.
            return ok(job)
        pattern = self.patterns.get_any(job["pattern_id"])
        delimiter = pattern.csv_delimiter if pattern is not None else ","
        content_type, body = render(job["manifest"], fmt.lower(), csv_delimiter=delimiter)
        return Response(200, body, content_type=content_type)

    # ------------------------------------------------------------------ webhooks
    def list_webhooks(self, request: Request, caller: Caller, params: dict[str, str]) -> Response:
        return ok([hook.to_public() for hook in self.webhook_registry.for_user(caller.user_id)])

    def create_webhook(self, request: Request, caller: Caller, params: dict[str, str]) -> Response:
        hook = self.webhook_registry.create(_json_body(request), caller.user_id)
        return ok(hook.to_public(), status=201)

    def delete_webhook(self, request: Request, caller: Caller, params: dict[str, str]) -> Response:
        if not self.webhook_registry.delete(params["id"], caller.user_id):
            raise not_found(f"Webhook {params['id']} not found", "WEBHOOK_NOT_FOUND")
        return ok({"message": "Webhook deleted"})


# ---------------------------------------------------------------------- request parsing
@dataclass(frozen=True, slots=True)
class _Submission:
    image_url: str | None
    upload: bytes | None
    filename: str | None
    extras: dict[str, Any] | None
    idempotency_key: str | None


def _json_body(request: Request) -> Any:
    if not request.body.strip():
        raise bad_request("Request body is empty: a JSON object is required", "INVALID_JSON")
    try:
        return json.loads(request.body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise bad_request(f"Malformed JSON body: {exc}", "INVALID_JSON") from exc


def _json_submission(body: Any) -> _Submission:
    if not isinstance(body, dict):
        raise bad_request("Request body must be a JSON object")
    image_url = body.get("image_url")
    if not isinstance(image_url, str) or len(image_url) > 4096 or host_of(image_url) is None:
        raise bad_request("image_url is required: an absolute http(s) URL", field="image_url")
    extras = body.get("extras")
    if extras is not None and not isinstance(extras, dict):
        raise bad_request("extras must be a JSON object", field="extras")
    key = body.get("idempotency_key")
    if key is not None:
        _check_idempotency_key(key)
    return _Submission(image_url, None, None, extras, key)


def _multipart_submission(request: Request) -> _Submission:
    try:
        fields = parse_form(request.body, request.header("content-type") or "")
    except MultipartError as exc:
        # Over-limit forms too: the real service answers every unreadable body 400.
        raise bad_request(
            f"Malformed multipart body: {exc.message}", "INVALID_MULTIPART", **exc.details
        ) from exc
    image = fields.get("image")
    if image is None or image.filename is None:
        raise bad_request("multipart field 'image' (a file) is required", field="image")
    if not (image.content_type or "").lower().startswith("image/"):
        raise bad_request(
            "image must have an image/* content type",
            "INVALID_FILE_TYPE",
            field="image",
            content_type=image.content_type,
        )
    extension = os.path.splitext(image.filename)[1].lower()
    if extension not in ALLOWED_EXTENSIONS:
        raise bad_request(
            f"image extension must be one of {', '.join(sorted(ALLOWED_EXTENSIONS))}",
            "INVALID_FILE_TYPE",
            field="image",
        )
    if not image.data:
        raise bad_request("image is empty", field="image")
    if len(image.data) > MAX_IMAGE_BYTES:
        raise bad_request(
            f"image exceeds the {MAX_IMAGE_BYTES // (1024 * 1024)} MB limit",
            "FILE_TOO_LARGE",
            field="image",
            size=len(image.data),
        )
    key: str | None = None
    if "idempotency_key" in fields:
        key = _text_field(fields["idempotency_key"].data, "idempotency_key")
        _check_idempotency_key(key)
    extras: dict[str, Any] | None = None
    if "extras" in fields:
        try:
            parsed = json.loads(fields["extras"].data)
        except (ValueError, UnicodeDecodeError) as exc:
            raise bad_request("extras must be a JSON object string", field="extras") from exc
        if not isinstance(parsed, dict):
            raise bad_request("extras must be a JSON object string", field="extras")
        extras = parsed
    return _Submission(None, image.data, image.filename, extras, key)


def _text_field(data: bytes, name: str) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise bad_request(f"{name} must be UTF-8 text", field=name) from exc


def _check_idempotency_key(key: Any) -> None:
    if not isinstance(key, str) or not IDEMPOTENCY_KEY_RE.fullmatch(key):
        raise bad_request(
            "idempotency_key must match ^[a-zA-Z0-9_-]{1,255}$", field="idempotency_key"
        )


def _positive_int(raw: str | None, name: str, *, default: int) -> int:
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value < 1:
        raise bad_request(f"{name} must be a positive integer", field=name)
    return value
