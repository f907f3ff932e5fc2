"""ImggoClient: the ImageApi port spoken over HTTP to ImgGo (or its simulator).

One HttpSession per ImggoClient (session.py: pooled httpx connections, each attempt
bounded in time and size), opened on first use and kept: a warm serverless function
reuses its connections (TLS handshakes are the slow part).

Retries (tenacity) cover what CONTRACT.md calls transient: 429, 500, 502, 503, 504,
connection errors and timeouts. They are safe for ingest because every submission
carries its Idempotency-Key, so a retry after a lost answer gets the same job back.
Every retry loop is bounded twice: by `max_attempts`, and by the caller's `deadline`
(an absolute `clock()` value) - we never sleep past it, never start an attempt that
could not get going before it, and bound each attempt, as a whole, by the time left
(or by `timeout_s`, whichever is sooner): no server can hold an attempt longer.
The first attempt runs before any of that: tenacity is imported at a call's first
retry, so a cold start whose calls succeed (nearly all) never loads it.

The API key is a secret: it is only ever put in the Authorization header, never in a
log line, an exception message or a repr.
"""

from __future__ import annotations

import json
import logging
import os
import re
import threading
import time
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlsplit

import httpx

from core.adapters.imggo.budget import NO_BUDGET, RateBudget
from core.adapters.imggo.errors import (
    RETRY_AFTER_STATUSES,
    error_from_response,
    invalid_response,
)
from core.adapters.imggo.headers import RateLimit, parse_rate_limit, parse_retry_after
from core.adapters.imggo.proxies import environment_proxies
from core.adapters.imggo.session import HttpSession, Reply
from core.domain.job import JobStatus
from core.ports import ImageApiError, RemoteJob, Resolver, Submission
from core.service.ssrf import system_resolver

if TYPE_CHECKING:
    from tenacity import RetryCallState

log = logging.getLogger("imggo.client")

DEFAULT_USER_AGENT = "imggo-functions/0.1.0 (+httpx)"
# The pool's size when a caller does not say; the composition root sizes it to the
# configured number of calls in flight.
DEFAULT_MAX_CONNECTIONS = 16
# ImgGo answers with small JSON documents (a job, a page of patterns, a rendered
# manifest); nothing it sends us legitimately comes near this.
DEFAULT_MAX_RESPONSE_BYTES = 8 * 1024 * 1024
# ImgGo's own rule for idempotency keys (IngestRequest.idempotency_key in the spec).
_IDEMPOTENCY_KEY = re.compile(r"[A-Za-z0-9_-]{1,255}")
# Visible ASCII only: anything else could not be a header value, and httpx's error for
# an illegal header value would quote the value - that is, the key.
_API_KEY_CHARS = re.compile(r"[\x21-\x7e]+")
_KEY_PREFIXES = ("imggo_live_", "imggo_test_")
# An attempt needs some time to be worth starting: below this much time left before
# the deadline we stop instead of firing a request that can only time out.
_MIN_ATTEMPT_S = 0.05
# Guard against a server whose pagination never ends.
_MAX_PATTERN_PAGES = 50
_PATTERNS_PER_PAGE = 100
_MAX_CACHED_URLS = 64
_STATUSES: dict[str, JobStatus] = {
    "queued": JobStatus.QUEUED,
    "running": JobStatus.RUNNING,
    "succeeded": JobStatus.SUCCEEDED,
    "failed": JobStatus.FAILED,
}


def normalise_base_url(base_url: str) -> str:
    """`https://api.imggo.ai`, `.../`, `.../api` and `.../api/` all mean the same host:
    our paths carry `/api/...` themselves (the guides' base URL ends in /api, the
    spec's does not)."""
    url = base_url.strip().rstrip("/")
    if url.endswith("/api"):
        url = url[: -len("/api")].rstrip("/")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("the ImgGo base URL must look like https://host[:port][/prefix]")
    if parts.query or parts.fragment or parts.username or parts.password:
        raise ValueError("the ImgGo base URL must not carry credentials, a query or a fragment")
    return url


def _mask(api_key: str) -> str:
    for prefix in _KEY_PREFIXES:
        if api_key.startswith(prefix):
            return prefix + "***"  # the kind of key (live/test) is useful and not secret
    return "***"


def _segment(value: str, what: str) -> str:
    """One path segment, percent-encoded so an id can never change the path."""
    if not value:
        raise ImageApiError(f"{what} must not be empty", code="invalid_request")
    return quote(value, safe="")


def _map_status(raw: object, *, status: int) -> JobStatus:
    if isinstance(raw, str) and raw in _STATUSES:
        return _STATUSES[raw]
    raise invalid_response(f"ImgGo sent an unknown job status {raw!r}", status=status)


def _manifest(raw: object) -> dict[str, Any] | None:
    if raw is None or isinstance(raw, dict):
        return raw
    # The spec promises an object; if a text/csv pattern ever hands back a bare value,
    # keep it rather than lose the result.
    return {"value": raw}


def _job_error(raw: object) -> str | None:
    if raw is None or isinstance(raw, str):
        return raw
    if isinstance(raw, dict) and isinstance(raw.get("message"), str):
        return str(raw["message"])
    return json.dumps(raw, default=str)


class _RetryPlan:
    """One call's retry decisions, shared by tenacity's `stop` and `wait` hooks.

    The wait for attempt n is drawn once and remembered, so the stop test ("would the
    next attempt start before the deadline?") and the actual sleep agree, whichever
    order the installed tenacity version calls them in.
    """

    def __init__(
        self,
        *,
        method: str,
        path: str,
        deadline: float | None,
        max_attempts: int,
        clock: Callable[[], float],
        backoff: tuple[float, float],
        retry_after_cap_s: float,
    ) -> None:
        self.method = method
        self.path = path
        self.deadline = deadline
        self.max_attempts = max_attempts
        self.clock = clock
        self.backoff = backoff  # (base, cap) of the full-jitter exponential wait
        self.retry_after_cap_s = retry_after_cap_s
        self.attempts = 0  # counted by the attempt itself, for the give-up log line
        self.stopped_by_deadline = False
        self._waits: dict[int, float] = {}

    def planned_wait(self, state: RetryCallState) -> float:
        number = state.attempt_number
        if number not in self._waits:
            exc = state.outcome.exception() if state.outcome is not None else None
            if isinstance(exc, ImageApiError) and exc.retry_after_s is not None:
                # The server said when; its word beats our guess (but within reason).
                wait = min(exc.retry_after_s, self.retry_after_cap_s)
            else:
                from tenacity import wait_random_exponential

                base, cap = self.backoff
                wait = float(wait_random_exponential(multiplier=base, max=cap)(state))
            self._waits[number] = max(0.0, wait)
        return self._waits[number]

    def wait(self, state: RetryCallState) -> float:
        return self.planned_wait(state)

    def stop(self, state: RetryCallState) -> bool:
        if state.attempt_number >= self.max_attempts:
            return True
        if self.deadline is None:
            return False
        next_start = self.clock() + self.planned_wait(state)
        if next_start + _MIN_ATTEMPT_S > self.deadline:
            self.stopped_by_deadline = True
            return True
        return False

    def before_sleep(self, state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome is not None else None
        what = (
            f"HTTP {exc.status} {exc.code}"
            if isinstance(exc, ImageApiError) and exc.status is not None
            else (exc.code if isinstance(exc, ImageApiError) else type(exc).__name__)
        )
        log.info(
            "ImgGo %s %s failed (%s), attempt %d/%d; retrying in %.3fs",
            self.method,
            self.path,
            what,
            state.attempt_number,
            self.max_attempts,
            self.planned_wait(state),
        )


def _worth_retrying(exc: BaseException) -> bool:
    # Only our own verdicts are retried: a bug (TypeError...) must surface at once.
    return isinstance(exc, ImageApiError) and exc.retryable


class ImggoClient:
    """The ImageApi port over httpx. Thread-safe: one instance serves every worker.

    `timeout_s` bounds one attempt as a whole: waiting for a pooled connection,
    connecting, sending and reading the whole answer. `max_connections` is the pool's
    size (a call beyond it waits for a free connection, within its bound);
    `max_response_bytes` caps an answer. `transport` replaces the bounded one
    (bounded_network; tests pass an httpx.MockTransport); `resolver` looks up ImgGo's
    host name for it (tests pass one that never asks DNS). The bounded transport goes
    through the proxy the environment names for ImgGo's URL, as httpx would, loopback
    excepted (proxies.py); a proxy it cannot use (SOCKS) is a ValueError here.
    """

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        timeout_s: float = 10.0,
        max_attempts: int = 5,
        backoff_base_s: float = 0.2,
        backoff_cap_s: float = 5.0,
        retry_after_cap_s: float = 30.0,
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
        transport: httpx.BaseTransport | None = None,
        resolver: Resolver = system_resolver,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        user_agent: str = DEFAULT_USER_AGENT,
        budget: RateBudget = NO_BUDGET,
    ) -> None:
        if not api_key or not _API_KEY_CHARS.fullmatch(api_key):
            # Deliberately does not echo the value.
            raise ValueError("the ImgGo API key must be non-empty visible ASCII")
        if max_attempts < 1 or max_connections < 1 or max_response_bytes < 1:
            raise ValueError("max_attempts, max_connections and max_response_bytes must be >= 1")
        if timeout_s <= 0 or backoff_base_s < 0 or backoff_cap_s < 0 or retry_after_cap_s < 0:
            raise ValueError("timeouts must be positive and backoff values not negative")
        self._base_url = normalise_base_url(base_url)
        self._api_key = api_key
        self._timeout_s = timeout_s
        self._max_attempts = max_attempts
        self._backoff = (backoff_base_s, backoff_cap_s)
        self._retry_after_cap_s = retry_after_cap_s
        self._max_connections = max_connections
        self._max_response_bytes = max_response_bytes
        self._transport = transport
        # Read now, as httpx reads them when a client is built: a proxy that cannot be
        # used is refused here, not at the first call. A transport of the caller's own
        # takes none (httpx's rule too).
        self._proxies = environment_proxies() if transport is None else None
        self._resolver = resolver
        self._sleep = sleep
        self._clock = clock
        self._wall_clock = wall_clock  # Retry-After HTTP-dates are wall time, not monotonic
        self._user_agent = user_agent
        self._budget = budget
        self._lock = threading.Lock()
        self._session: HttpSession | None = None
        self._finalizer: weakref.finalize[Any, Any] | None = None
        # Parsed absolute URLs by path: httpx re-parses and re-joins a relative URL
        # against base_url on every call, which cost more than the rest of the request
        # building together. Paths are few (an ingest path per pattern); the cap keeps
        # per-job paths (GET /api/jobs/{id}) from growing it without bound.
        self._urls: dict[str, httpx.URL] = {}
        # Replaced (never mutated) after each response carrying X-RateLimit-*: a single
        # reference assignment, so readers on other threads see one whole value.
        self.last_rate_limit: RateLimit | None = None

    # ----------------------------------------------------------------- lifecycle
    def __repr__(self) -> str:
        return f"ImggoClient(base_url={self._base_url!r}, api_key={_mask(self._api_key)!r})"

    @property
    def base_url(self) -> str:
        return self._base_url

    @property
    def budget(self) -> RateBudget:
        """The rate budget every authenticated call takes its slot from (a caller that
        paces itself reads it; it must not take slots of its own for these calls)."""
        return self._budget

    def _http(self) -> HttpSession:
        session = self._session
        # After a fork the pool's connections are the parent's too: open a new one.
        if session is None or session.pid != os.getpid():
            with self._lock:
                session = self._session
                if session is None or session.pid != os.getpid():
                    if self._finalizer is not None:
                        self._finalizer.detach()  # an inherited session is not ours to stop
                    session = HttpSession(
                        transport=self._transport,
                        resolver=self._resolver,
                        proxies=self._proxies,
                        max_connections=self._max_connections,
                        max_response_bytes=self._max_response_bytes,
                        user_agent=self._user_agent,
                    )
                    # A client dropped without close() closes its connections then.
                    self._finalizer = weakref.finalize(self, session.close)
                    self._finalizer.atexit = False  # the process's end closes them anyway
                    self._session = session
        return session

    def _url(self, path: str) -> httpx.URL:
        url = self._urls.get(path)
        if url is None:
            url = httpx.URL(self._base_url + path)
            if len(self._urls) < _MAX_CACHED_URLS:
                self._urls[path] = url
        return url

    def close(self) -> None:
        """Close the pooled connections; a later call opens a fresh pool."""
        with self._lock:
            session, self._session = self._session, None
            finalizer, self._finalizer = self._finalizer, None
        if finalizer is not None:
            finalizer.detach()
        if session is not None and session.pid == os.getpid():
            session.close()

    def __enter__(self) -> ImggoClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # ----------------------------------------------------------------- ImageApi
    def submit(self, submission: Submission, *, deadline: float | None = None) -> RemoteJob:
        key = submission.idempotency_key
        if not _IDEMPOTENCY_KEY.fullmatch(key):
            raise ImageApiError(
                "the idempotency key must match ^[a-zA-Z0-9_-]{1,255}$",
                code="invalid_idempotency_key",
            )
        if (submission.image_url is None) == (submission.upload is None):
            raise ImageApiError(
                "a submission needs exactly one of image_url and upload",
                code="invalid_submission",
            )
        try:
            extras_json = json.dumps(submission.extras, separators=(",", ":"))
        except (TypeError, ValueError) as exc:
            raise ImageApiError(
                "extras must be JSON-serialisable", code="invalid_submission"
            ) from exc
        path = f"/api/patterns/{_segment(submission.pattern_id, 'pattern_id')}/ingest"
        # The header is what the service keys on; the body field is kept for older
        # deployments that read it from there.
        headers = {"Idempotency-Key": key}
        upload = submission.upload
        if upload is not None:
            response = self._send(
                "POST",
                path,
                deadline=deadline,
                headers=headers,
                form={"idempotency_key": key, "extras": extras_json},
                files={"image": (upload.filename, upload.data, upload.content_type)},
            )
        else:
            response = self._send(
                "POST",
                path,
                deadline=deadline,
                headers=headers,
                json_body={
                    "image_url": submission.image_url,
                    "extras": submission.extras,
                    "idempotency_key": key,
                },
            )
        data = self._data(response)
        if not isinstance(data, dict):
            raise invalid_response(
                "ImgGo's ingest answer has no data object", status=response.status
            )
        job_id = data.get("job_id") or data.get("id")
        if not isinstance(job_id, str) or not job_id:
            raise invalid_response("ImgGo's ingest answer has no job_id", status=response.status)
        status = _map_status(data.get("status", "queued"), status=response.status)
        manifest = _manifest(data.get("manifest"))
        if status is JobStatus.SUCCEEDED and manifest is None:
            # A replayed ingest may report a finished job without its result; calling it
            # succeeded would record an empty result. Queued is true, and the next poll
            # fetches the manifest.
            status = JobStatus.QUEUED
        return RemoteJob(
            id=job_id,
            status=status,
            manifest=manifest,
            error=_job_error(data.get("error")),
            replayed=response.status == 200,
        )

    def get_job(self, imggo_job_id: str, *, deadline: float | None = None) -> RemoteJob:
        path = f"/api/jobs/{_segment(imggo_job_id, 'job id')}"
        response = self._send("GET", path, deadline=deadline)
        data = self._data(response)
        if not isinstance(data, dict):
            raise invalid_response("ImgGo's job answer has no data object", status=response.status)
        job_id = data.get("id") or imggo_job_id
        return RemoteJob(
            id=str(job_id),
            status=_map_status(data.get("status"), status=response.status),
            manifest=_manifest(data.get("manifest")),
            error=_job_error(data.get("error")),
        )

    def export(self, imggo_job_id: str, fmt: str) -> tuple[str, bytes]:
        path = f"/api/jobs/{_segment(imggo_job_id, 'job id')}"
        response = self._send("GET", path, deadline=None, params={"format": fmt})
        content_type = response.headers.get("content-type", "application/octet-stream")
        return content_type, response.content

    def list_patterns(self) -> list[dict[str, Any]]:
        patterns: list[dict[str, Any]] = []
        for page in range(1, _MAX_PATTERN_PAGES + 1):
            response = self._send(
                "GET",
                "/api/patterns",
                deadline=None,
                params={"page": page, "per_page": _PATTERNS_PER_PAGE},
            )
            data = self._data(response)
            # The spec nests {data: [...], pagination: {...}}; a bare list is accepted too.
            items = data.get("data") if isinstance(data, dict) else data
            if not isinstance(items, list):
                raise invalid_response("ImgGo's pattern list has no items", status=response.status)
            patterns.extend(item for item in items if isinstance(item, dict))
            pagination = data.get("pagination") if isinstance(data, dict) else None
            total_pages = pagination.get("total_pages") if isinstance(pagination, dict) else None
            if not isinstance(total_pages, int) or page >= total_pages or not items:
                break
        return patterns

    def ping(self) -> None:
        # A readiness probe wants a quick yes/no: one attempt, no retries, no key.
        self._send("GET", "/api/_health", deadline=None, auth=False, max_attempts=1)

    # ----------------------------------------------------------------- plumbing
    def _scrub(self, text: str) -> str:
        return text.replace(self._api_key, "***")

    def _scrub_error(self, exc: ImageApiError) -> ImageApiError:
        """Defence in depth: a server or library that echoes the key must not get it
        into our logs or job records through an error message."""
        if self._api_key not in exc.message and self._api_key not in json.dumps(
            exc.details, default=str
        ):
            return exc
        details = json.loads(self._scrub(json.dumps(exc.details, default=str)))
        return ImageApiError(
            self._scrub(exc.message),
            status=exc.status,
            code=self._scrub(exc.code),
            details=details,
            retryable=exc.retryable,
            retry_after_s=exc.retry_after_s,
        )

    def _data(self, response: Reply) -> Any:
        """The `data` of a `{"success": true, "data": ...}` answer."""
        try:
            payload = json.loads(response.content)
        except ValueError:  # UnicodeDecodeError is one
            raise invalid_response(
                f"ImgGo answered HTTP {response.status} with a body that is not JSON",
                status=response.status,
            ) from None
        if not isinstance(payload, dict):
            raise invalid_response("ImgGo's answer is not a JSON object", status=response.status)
        if payload.get("success") is False:
            raise self._scrub_error(error_from_response(response.status, response.content))
        if "data" not in payload:
            raise invalid_response("ImgGo's answer has no data", status=response.status)
        return payload["data"]

    def _send(
        self,
        method: str,
        path: str,
        *,
        deadline: float | None,
        auth: bool = True,
        max_attempts: int | None = None,
        headers: dict[str, str] | None = None,
        params: dict[str, Any] | None = None,
        json_body: Any = None,
        form: dict[str, str] | None = None,
        files: dict[str, tuple[str, bytes, str]] | None = None,
    ) -> Reply:
        """One logical call: attempts with retries until a 2xx, a final error, or a bound."""
        if deadline is not None and self._clock() + _MIN_ATTEMPT_S > deadline:
            raise ImageApiError(
                "the deadline passed before ImgGo could be called",
                code="deadline_exceeded",
                retryable=True,
            )
        request_headers = dict(headers or {})
        if auth:
            request_headers["Authorization"] = f"Bearer {self._api_key}"
        plan = _RetryPlan(
            method=method,
            path=path,
            deadline=deadline,
            max_attempts=max_attempts or self._max_attempts,
            clock=self._clock,
            backoff=self._backoff,
            retry_after_cap_s=self._retry_after_cap_s,
        )

        def send_once() -> Reply:
            return self._attempt(
                method,
                path,
                deadline=deadline,
                headers=request_headers,
                params=params,
                json_body=json_body,
                form=form,
                files=files,
            )

        held = [False]  # a slot already taken, left to the next attempt

        def attempt() -> Reply:
            plan.attempts += 1
            # Every authenticated call ImgGo sees counts against the key's limit; one
            # that never reached it (no connection) leaves its slot to the retry.
            if auth and not held[0]:
                self._take_budget(deadline)
            held[0] = False
            try:
                return send_once()
            except ImageApiError as exc:
                held[0] = auth and exc.code == "connect_error"
                raise

        try:
            return attempt()  # most calls end here, and a cold start never loads tenacity
        except ImageApiError as exc:
            if not _worth_retrying(exc):
                raise
            failed = exc
        try:
            return self._retry(plan, attempt, failed)
        except ImageApiError as exc:
            if plan.attempts > 1 or plan.stopped_by_deadline:
                log.warning(
                    "ImgGo %s %s gave up after %d attempt(s)%s: %s %s",
                    method,
                    path,
                    plan.attempts,
                    " (deadline)" if plan.stopped_by_deadline else "",
                    exc.status if exc.status is not None else "-",
                    exc.code,
                )
            raise

    def _retry(
        self, plan: _RetryPlan, attempt: Callable[[], Reply], failed: ImageApiError
    ) -> Reply:
        """The attempts after a first one that failed with `failed`: tenacity's loop,
        started as if it had made that attempt itself (its first call re-raises it)."""
        from tenacity import Retrying, retry_if_exception

        replay = [failed]

        def next_attempt() -> Reply:
            if replay:
                raise replay.pop()
            return attempt()

        retrying = Retrying(
            stop=plan.stop,
            wait=plan.wait,
            retry=retry_if_exception(_worth_retrying),
            sleep=self._sleep,
            before_sleep=plan.before_sleep,
            reraise=True,  # callers get our ImageApiError, not tenacity's RetryError
        )
        return retrying(next_attempt)

    def _take_budget(self, deadline: float | None) -> None:
        """Wait for this call's slot in the shared budget: as long as the deadline
        leaves room for the call itself, or one attempt's timeout without a deadline."""
        if deadline is None:
            max_wait = self._timeout_s
        else:
            max_wait = deadline - self._clock() - self._timeout_s / 2
        self._budget.acquire(max_wait_s=max(0.0, max_wait))

    def _attempt(
        self,
        method: str,
        path: str,
        *,
        deadline: float | None,
        headers: dict[str, str],
        params: dict[str, Any] | None,
        json_body: Any,
        form: dict[str, str] | None,
        files: dict[str, tuple[str, bytes, str]] | None,
    ) -> Reply:
        time_left = self._timeout_s
        if deadline is not None:
            # The retry plan only starts an attempt with time left, but the clock moved
            # since; never hand httpx a zero or negative timeout.
            time_left = max(min(time_left, deadline - self._clock()), _MIN_ATTEMPT_S)
        started = time.perf_counter()
        try:
            # httpx encodes the form (multipart when there are files) afresh for each
            # attempt, so a retry resends the whole file.
            response = self._http().exchange(
                method,
                self._url(path),
                time_left=time_left,
                headers=headers,
                params=params,
                json=json_body,
                data=form,
                files=files,
            )
        except ImageApiError as exc:
            log.debug("ImgGo %s %s failed: %s", method, path, exc.code)
            scrubbed = self._scrub_error(exc)
            if scrubbed is exc:
                raise
            raise scrubbed from None  # the original quotes the key
        log.debug(
            "ImgGo %s %s -> %d in %.0f ms",
            method,
            path,
            response.status,
            (time.perf_counter() - started) * 1000,
        )
        rate_limit = parse_rate_limit(response.headers)
        if rate_limit is not None:
            self.last_rate_limit = rate_limit
        retry_after = None
        if response.status in RETRY_AFTER_STATUSES:
            retry_after = parse_retry_after(
                response.headers.get("retry-after"), wall_now=self._wall_clock
            )
        # A 503's Retry-After is about the service, not this key's allowance.
        self._budget.observe(rate_limit, retry_after if response.status == 429 else None)
        if response.is_success:
            return response
        raise self._scrub_error(
            error_from_response(response.status, response.content, retry_after_s=retry_after)
        )
