"""ImggoClient against a scripted fake of ImgGo (httpx.MockTransport) and a fake clock.

No test really sleeps: the client's `sleep` advances a fake monotonic clock and records
each wait, so backoff, Retry-After and deadlines are checked exactly.
"""

from __future__ import annotations

import gc
import json
import logging
import os
import subprocess
import sys
import threading
from collections.abc import Callable
from email.parser import BytesParser
from email.policy import HTTP
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.adapters.imggo import client as client_module
from core.adapters.imggo.client import ImggoClient, normalise_base_url
from core.adapters.imggo.headers import RateLimit
from core.adapters.imggo.session import HttpSession
from core.domain.job import JobStatus
from core.ports import ImageApiError, ImageUpload, RemoteJob, Submission

KEY = "imggo_test_s3cr3t_K3y_do_not_log_0123456789"
BASE = "http://imggo.test"
JOB_ID = "770e8400-e29b-41d4-a716-446655440000"
RETRYABLE = (429, 500, 502, 503, 504)
NEVER_RETRIED = (400, 401, 403, 404, 409, 422)

Step = httpx.Response | Exception | Callable[[httpx.Request], httpx.Response]


class FakeTime:
    """A monotonic clock that only moves when the client sleeps."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start
        self.waits: list[float] = []
        self.woke_at: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        assert seconds >= 0
        self.waits.append(seconds)
        self.now += seconds
        self.woke_at.append(self.now)


class Script:
    """Answers requests from a list of steps (a Response, an exception to raise, or a
    function of the request); the last step repeats forever. Records every request."""

    def __init__(self, *steps: Step) -> None:
        assert steps
        self.steps = list(steps)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        request.read()
        self.requests.append(request)
        step = self.steps[min(len(self.requests), len(self.steps)) - 1]
        if isinstance(step, Exception):
            if isinstance(step, httpx.RequestError):
                step.request = request
            raise step
        if isinstance(step, httpx.Response):
            return step
        return step(request)

    @property
    def calls(self) -> int:
        return len(self.requests)


def ok(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.Response(status, json={"success": True, "data": data}, headers=headers)


def envelope(
    status: int,
    code: str = "SOME_CODE",
    message: str = "something went wrong",
    details: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    error: dict[str, Any] = {"code": code, "message": message}
    if details is not None:
        error["details"] = details
    return httpx.Response(status, json={"success": False, "error": error}, headers=headers)


def ingest_ok(status: int = 202, job_id: str = JOB_ID) -> httpx.Response:
    return ok({"job_id": job_id, "status": "queued", "message": "queued"}, status=status)


def job_body(status: str = "succeeded", **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": JOB_ID,
        "pattern_id": "550e8400-e29b-41d4-a716-446655440000",
        "image_url": "https://example.com/a.png",
        "status": status,
        "manifest": {"total": 12.5} if status == "succeeded" else None,
        "error": "could not read the image" if status == "failed" else None,
        "latency_ms": 10,
        "created_at": "2025-01-15T10:00:00Z",
        "updated_at": "2025-01-15T10:00:00Z",
        "started_at": None,
        "completed_at": None,
        "idempotency_key": "k1",
        "requested_by": None,
        "extras": None,
    }
    body.update(overrides)
    return body


def make(
    script: Script, time: FakeTime | None = None, *, base_url: str = BASE, **kwargs: Any
) -> tuple[ImggoClient, FakeTime]:
    fake = time or FakeTime()
    client = ImggoClient(
        base_url,
        KEY,
        transport=httpx.MockTransport(script),
        sleep=fake.sleep,
        clock=fake.clock,
        **kwargs,
    )
    return client, fake


def url_submission(key: str = "job-1") -> Submission:
    return Submission(
        pattern_id="invoice",
        idempotency_key=key,
        image_url="https://example.com/a.png",
        extras={"source": "test", "n": 1},
    )


PNG = b"\x89PNG\r\n\x1a\n" + b"\x00fake-png-bytes\xff" * 8


def upload_submission(key: str = "job-2") -> Submission:
    return Submission(
        pattern_id="invoice",
        idempotency_key=key,
        upload=ImageUpload(PNG, "receipt.png", "image/png"),
        extras={"tenant": "acme"},
    )


# ------------------------------------------------------------------ success paths
def test_cookies_a_server_sets_are_never_sent_back() -> None:
    with_cookie = ingest_ok(202)
    with_cookie.headers["Set-Cookie"] = "session=abc; Path=/"
    script = Script(with_cookie, ingest_ok(200))
    client, _ = make(script)

    client.submit(url_submission("job-1"))
    client.submit(url_submission("job-1"))

    assert [r.headers.get("Cookie") for r in script.requests] == [None, None]


def test_base_url_prefix_is_kept_on_every_path() -> None:
    script = Script(ingest_ok(202), ok(job_body()))
    client, _ = make(script, base_url="https://gw.example/imggo/api/")

    client.submit(url_submission("job-1"))
    client.get_job(JOB_ID)

    assert [str(r.url) for r in script.requests] == [
        "https://gw.example/imggo/api/patterns/invoice/ingest",
        f"https://gw.example/imggo/api/jobs/{JOB_ID}",
    ]


def test_json_submit_sends_body_headers_and_maps_answer() -> None:
    script = Script(ingest_ok(202))
    client, _ = make(script)

    job = client.submit(url_submission("job-1"))

    assert job == RemoteJob(id=JOB_ID, status=JobStatus.QUEUED, replayed=False)
    (request,) = script.requests
    assert request.method == "POST"
    assert str(request.url) == f"{BASE}/api/patterns/invoice/ingest"
    assert request.headers["Authorization"] == f"Bearer {KEY}"
    assert request.headers["Idempotency-Key"] == "job-1"
    assert request.headers["User-Agent"].startswith("imggo-functions/")
    assert request.headers["Content-Type"] == "application/json"
    assert json.loads(request.content) == {
        "image_url": "https://example.com/a.png",
        "extras": {"source": "test", "n": 1},
        "idempotency_key": "job-1",
    }


def test_ingest_answered_200_is_a_replay() -> None:
    client, _ = make(Script(ingest_ok(200)))
    job = client.submit(url_submission())
    assert job.replayed is True
    assert job.id == JOB_ID


def test_replayed_ingest_reporting_success_without_manifest_stays_queued() -> None:
    # Recording "succeeded" with no result would lose the manifest; the poll fetches it.
    answer = ok({"job_id": JOB_ID, "status": "succeeded", "message": "exists"}, status=200)
    job = make(Script(answer))[0].submit(url_submission())
    assert job.status is JobStatus.QUEUED
    assert job.replayed is True


def _multipart_parts(request: httpx.Request) -> dict[str, Any]:
    raw = b"Content-Type: " + request.headers["Content-Type"].encode() + b"\r\n\r\n"
    message = BytesParser(policy=HTTP).parsebytes(raw + request.content)
    assert message.is_multipart()
    parts: dict[str, Any] = {}
    for part in message.iter_parts():
        parts[str(part.get_param("name", header="content-disposition"))] = part
    return parts


def test_multipart_submit_carries_the_file_and_fields() -> None:
    script = Script(ingest_ok(202))
    client, _ = make(script)

    job = client.submit(upload_submission("job-2"))

    assert job.status is JobStatus.QUEUED and job.replayed is False
    (request,) = script.requests
    assert request.headers["Content-Type"].startswith("multipart/form-data; boundary=")
    assert request.headers["Idempotency-Key"] == "job-2"
    parts = _multipart_parts(request)
    assert set(parts) == {"image", "idempotency_key", "extras"}
    image = parts["image"]
    assert image.get_filename() == "receipt.png"
    assert image.get_content_type() == "image/png"
    assert image.get_payload(decode=True) == PNG
    assert parts["idempotency_key"].get_payload(decode=True) == b"job-2"
    assert json.loads(parts["extras"].get_payload(decode=True)) == {"tenant": "acme"}


def test_multipart_retry_resends_the_whole_file() -> None:
    script = Script(envelope(503), ingest_ok(202))
    client, _ = make(script)
    client.submit(upload_submission())
    assert script.calls == 2
    for request in script.requests:
        assert _multipart_parts(request)["image"].get_payload(decode=True) == PNG


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("http://127.0.0.1:8787", "http://127.0.0.1:8787"),
        ("http://127.0.0.1:8787/", "http://127.0.0.1:8787"),
        ("https://img-go.com/api", "https://img-go.com"),
        ("https://img-go.com/api/", "https://img-go.com"),
        ("https://gw.example/imggo/api", "https://gw.example/imggo"),
    ],
)
def test_base_url_is_normalised(given: str, expected: str) -> None:
    assert normalise_base_url(given) == expected


def test_base_url_with_trailing_api_does_not_double_the_prefix() -> None:
    script = Script(ok(job_body("running")))
    client, _ = make(script, base_url="https://gw.example/imggo/api/")
    client.get_job(JOB_ID)
    assert str(script.requests[0].url) == f"https://gw.example/imggo/api/jobs/{JOB_ID}"


@pytest.mark.parametrize("bad", ["ftp://x", "not a url", "http://", "https://u:p@host"])
def test_bad_base_urls_are_refused(bad: str) -> None:
    with pytest.raises(ValueError):
        ImggoClient(bad, KEY)


@pytest.mark.parametrize(
    ("remote", "status"),
    [
        ("queued", JobStatus.QUEUED),
        ("running", JobStatus.RUNNING),
        ("succeeded", JobStatus.SUCCEEDED),
        ("failed", JobStatus.FAILED),
    ],
)
def test_get_job_maps_the_job_schema(remote: str, status: JobStatus) -> None:
    script = Script(ok(job_body(remote)))
    client, _ = make(script)

    job = client.get_job(JOB_ID)

    assert job.id == JOB_ID and job.status is status
    assert job.manifest == ({"total": 12.5} if remote == "succeeded" else None)
    assert job.error == ("could not read the image" if remote == "failed" else None)
    assert job.replayed is False
    request = script.requests[0]
    assert request.method == "GET" and request.url.path == f"/api/jobs/{JOB_ID}"
    assert request.headers["Authorization"] == f"Bearer {KEY}"


def test_get_job_with_unknown_status_is_an_invalid_response() -> None:
    client, _ = make(Script(ok(job_body("exploded"))))
    with pytest.raises(ImageApiError) as caught:
        client.get_job(JOB_ID)
    assert caught.value.code == "invalid_response"


def test_ids_are_percent_encoded_into_one_path_segment() -> None:
    script = Script(ok(job_body("queued", id="x")))
    client, _ = make(script)
    client.get_job("../patterns/x?y=1")
    assert script.requests[0].url.raw_path == b"/api/jobs/..%2Fpatterns%2Fx%3Fy%3D1"


def test_export_returns_content_type_and_bytes() -> None:
    body = b"total\n12.5\n"
    script = Script(httpx.Response(200, content=body, headers={"Content-Type": "text/csv"}))
    client, _ = make(script)

    assert client.export(JOB_ID, "csv") == ("text/csv", body)
    request = script.requests[0]
    assert request.url.path == f"/api/jobs/{JOB_ID}"
    assert request.url.params["format"] == "csv"


def test_list_patterns_follows_pagination() -> None:
    def page(request: httpx.Request) -> httpx.Response:
        number = int(request.url.params["page"])
        items = [{"id": f"p{number}a"}, {"id": f"p{number}b"}]
        pagination = {"page": number, "per_page": 2, "total": 4, "total_pages": 2}
        return ok({"data": items, "pagination": pagination})

    script = Script(page)
    client, _ = make(script)
    assert [p["id"] for p in client.list_patterns()] == ["p1a", "p1b", "p2a", "p2b"]
    assert script.calls == 2


def test_list_patterns_accepts_a_bare_list() -> None:
    client, _ = make(Script(ok([{"id": "invoice"}])))
    assert client.list_patterns() == [{"id": "invoice"}]


def test_ping_needs_no_key_and_does_not_retry() -> None:
    script = Script(ok({"status": "healthy"}))
    client, _ = make(script)
    client.ping()
    assert "Authorization" not in script.requests[0].headers
    assert script.requests[0].url.path == "/api/_health"

    down = Script(httpx.Response(503, json={"status": "unhealthy"}))
    client, fake = make(down)
    with pytest.raises(ImageApiError) as caught:
        client.ping()
    assert caught.value.status == 503 and caught.value.retryable
    assert down.calls == 1 and fake.waits == []


# ------------------------------------------------------------------ retries
@pytest.mark.parametrize("status", RETRYABLE)
def test_each_retryable_status_is_retried_then_succeeds(status: int) -> None:
    script = Script(envelope(status), envelope(status), ingest_ok())
    client, fake = make(script)

    job = client.submit(url_submission())

    assert job.id == JOB_ID
    assert script.calls == 3
    assert len(fake.waits) == 2
    # The same key on every attempt: that is what makes the retries safe.
    assert {r.headers["Idempotency-Key"] for r in script.requests} == {"job-1"}


@pytest.mark.parametrize("status", NEVER_RETRIED)
def test_other_4xx_are_never_retried(status: int) -> None:
    script = Script(envelope(status, code="NOPE", message="not like this"), ingest_ok())
    client, fake = make(script)

    with pytest.raises(ImageApiError) as caught:
        client.submit(url_submission())

    assert script.calls == 1 and fake.waits == []
    error = caught.value
    assert (error.status, error.code, error.message) == (status, "NOPE", "not like this")
    assert error.retryable is False


def test_envelope_code_message_and_details_are_surfaced() -> None:
    answer = envelope(
        400, "INVALID_SCHEMA", "The provided JSON schema is invalid", {"field": "json_schema"}
    )
    client, _ = make(Script(answer))
    with pytest.raises(ImageApiError) as caught:
        client.submit(url_submission())
    error = caught.value
    assert error.code == "INVALID_SCHEMA"
    assert error.message == "The provided JSON schema is invalid"
    assert str(error) == "The provided JSON schema is invalid"
    assert error.details == {"field": "json_schema"}


def test_final_retryable_failure_carries_the_last_envelope() -> None:
    script = Script(envelope(500, "DB_DOWN", "database unavailable"))
    client, fake = make(script, max_attempts=4)
    with pytest.raises(ImageApiError) as caught:
        client.get_job(JOB_ID)
    error = caught.value
    assert (error.status, error.code, error.message) == (500, "DB_DOWN", "database unavailable")
    assert error.retryable is True
    assert script.calls == 4 and len(fake.waits) == 3


@pytest.mark.parametrize("status", [400, 502])
def test_non_json_error_body_still_gives_a_clean_error(status: int) -> None:
    html = b"<html><body><h1>Bad Gateway</h1>\n  nginx</body></html>"
    script = Script(httpx.Response(status, content=html, headers={"Content-Type": "text/html"}))
    client, _ = make(script, max_attempts=2)
    with pytest.raises(ImageApiError) as caught:
        client.submit(url_submission())
    error = caught.value
    assert error.status == status
    assert error.code == f"http_{status}"
    assert error.message == f"ImgGo answered HTTP {status}"
    assert error.retryable is (status == 502)
    assert "Bad Gateway" in error.details["body"]


def test_non_json_success_body_is_an_invalid_response() -> None:
    client, _ = make(Script(httpx.Response(202, content=b"queued!")))
    with pytest.raises(ImageApiError) as caught:
        client.submit(url_submission())
    assert caught.value.code == "invalid_response"


@pytest.mark.parametrize(
    "exc",
    [
        httpx.ConnectError("connection refused"),
        httpx.ConnectTimeout("connect timed out"),
        httpx.ReadTimeout("read timed out"),
        httpx.WriteTimeout("write timed out"),
        httpx.PoolTimeout("pool exhausted"),
        httpx.RemoteProtocolError("server disconnected"),
    ],
)
def test_transport_errors_are_retried(exc: Exception) -> None:
    script = Script(exc, ingest_ok(200))
    client, fake = make(script)
    job = client.submit(url_submission())
    assert job.replayed is True  # the lost first answer had created the job
    assert script.calls == 2 and len(fake.waits) == 1


def test_persistent_connect_error_ends_retryable() -> None:
    script = Script(httpx.ConnectError("connection refused"))
    client, _ = make(script, max_attempts=3)
    with pytest.raises(ImageApiError) as caught:
        client.get_job(JOB_ID)
    error = caught.value
    assert error.code == "connect_error" and error.retryable and error.status is None
    assert "connection refused" in error.message
    assert script.calls == 3


def test_timeouts_end_with_a_timeout_code() -> None:
    client, _ = make(Script(httpx.ReadTimeout("slow")), max_attempts=2)
    with pytest.raises(ImageApiError) as caught:
        client.get_job(JOB_ID)
    assert caught.value.code == "timeout" and caught.value.retryable


@pytest.mark.parametrize("attempts", [1, 2, 5, 7])
def test_max_attempts_is_respected(attempts: int) -> None:
    script = Script(envelope(503))
    client, fake = make(script, max_attempts=attempts)
    with pytest.raises(ImageApiError):
        client.submit(url_submission())
    assert script.calls == attempts
    assert len(fake.waits) == attempts - 1


def test_full_jitter_stays_within_the_exponential_window() -> None:
    base, cap, attempts = 0.2, 1.0, 7
    per_slot: list[list[float]] = [[] for _ in range(attempts - 1)]
    for _ in range(150):
        client, fake = make(
            Script(envelope(500)), max_attempts=attempts, backoff_base_s=base, backoff_cap_s=cap
        )
        with pytest.raises(ImageApiError):
            client.get_job(JOB_ID)
        assert len(fake.waits) == attempts - 1
        for n, wait in enumerate(fake.waits):
            assert 0.0 <= wait <= min(cap, base * 2**n) + 1e-9
            per_slot[n].append(wait)
    # Full jitter, not a fixed schedule: every slot spreads over most of its window.
    for n, waits in enumerate(per_slot):
        window = min(cap, base * 2**n)
        assert max(waits) > 0.8 * window
        assert min(waits) < 0.2 * window


@pytest.mark.parametrize("status", [429, 503])
def test_retry_after_seconds_replaces_the_jitter(status: int) -> None:
    script = Script(envelope(status, headers={"Retry-After": "3"}), ingest_ok())
    client, fake = make(script, backoff_base_s=0.01, backoff_cap_s=0.01)
    client.submit(url_submission())
    assert fake.waits == [3.0]


def test_retry_after_is_capped() -> None:
    script = Script(envelope(429, headers={"Retry-After": "3600"}), ingest_ok())
    client, fake = make(script, retry_after_cap_s=30.0)
    client.submit(url_submission())
    assert fake.waits == [30.0]


def test_retry_after_http_date_is_understood() -> None:
    wall = 1_736_935_200.0  # 2025-01-15T10:00:00Z
    script = Script(
        envelope(503, headers={"Retry-After": "Wed, 15 Jan 2025 10:00:07 GMT"}), ingest_ok()
    )
    client, fake = make(script, wall_clock=lambda: wall)
    client.submit(url_submission())
    assert fake.waits == [pytest.approx(7.0)]


def test_retry_after_on_500_is_not_promised_so_jitter_applies() -> None:
    script = Script(envelope(500, headers={"Retry-After": "20"}), ingest_ok())
    client, fake = make(script, backoff_base_s=0.2, backoff_cap_s=5.0)
    client.submit(url_submission())
    assert len(fake.waits) == 1 and fake.waits[0] <= 0.2


def test_unreadable_retry_after_falls_back_to_jitter() -> None:
    script = Script(envelope(429, headers={"Retry-After": "soon"}), ingest_ok())
    client, fake = make(script, backoff_base_s=0.2)
    client.submit(url_submission())
    assert len(fake.waits) == 1 and fake.waits[0] <= 0.2


# ------------------------------------------------------------------ deadlines
def test_deadline_is_never_slept_past_and_ends_the_retries() -> None:
    script = Script(envelope(503, "BUSY", "try later"))
    client, fake = make(script, max_attempts=50, backoff_base_s=0.4, backoff_cap_s=5.0)
    deadline = fake.now + 2.0
    with pytest.raises(ImageApiError) as caught:
        client.submit(url_submission(), deadline=deadline)
    assert caught.value.code == "BUSY" and caught.value.retryable
    assert fake.woke_at and all(t < deadline for t in fake.woke_at)
    assert fake.now < deadline
    assert script.calls < 50


def test_per_request_timeout_shrinks_to_the_time_left() -> None:
    seen: list[float] = []

    def slow(request: httpx.Request) -> httpx.Response:
        seen.append(request.extensions["timeout"]["read"])
        return envelope(503, headers={"Retry-After": "0.5"})

    client, fake = make(Script(slow), timeout_s=10.0, max_attempts=10)
    deadline = fake.now + 1.8
    with pytest.raises(ImageApiError):
        client.get_job(JOB_ID, deadline=deadline)
    assert seen[0] == pytest.approx(1.8)
    assert seen == sorted(seen, reverse=True)  # each attempt gets what is left
    assert all(0 < t <= 1.8 for t in seen)
    assert len(seen) == 4  # at 0, 0.5, 1.0, 1.5; a fifth could not start before 1.8


def test_retry_after_beyond_the_deadline_stops_without_sleeping() -> None:
    script = Script(envelope(429, "RATE_LIMITED", "slow down", headers={"Retry-After": "10"}))
    client, fake = make(script)
    with pytest.raises(ImageApiError) as caught:
        client.submit(url_submission(), deadline=fake.now + 5.0)
    assert script.calls == 1 and fake.waits == []
    assert caught.value.retry_after_s == 10.0
    assert caught.value.code == "RATE_LIMITED" and caught.value.retryable


def test_a_deadline_already_passed_makes_no_call() -> None:
    script = Script(ingest_ok())
    client, fake = make(script)
    with pytest.raises(ImageApiError) as caught:
        client.submit(url_submission(), deadline=fake.now - 1)
    assert caught.value.code == "deadline_exceeded" and caught.value.retryable
    assert script.calls == 0


# ------------------------------------------------------------------ validation
@pytest.mark.parametrize(
    "submission",
    [
        Submission("invoice", "k", image_url=None, upload=None),
        Submission(
            "invoice",
            "k",
            image_url="https://x/a.png",
            upload=ImageUpload(b"x", "a.png", "image/png"),
        ),
        Submission("invoice", "bad key with spaces", image_url="https://x/a.png"),
        Submission("invoice", "k" * 256, image_url="https://x/a.png"),
        Submission("invoice", "k", image_url="https://x/a.png", extras={"x": object()}),
        Submission("", "k", image_url="https://x/a.png"),
    ],
)
def test_invalid_submissions_are_refused_without_a_call(submission: Submission) -> None:
    script = Script(ingest_ok())
    client, _ = make(script)
    with pytest.raises(ImageApiError) as caught:
        client.submit(submission)
    assert caught.value.retryable is False
    assert script.calls == 0


@pytest.mark.parametrize("bad", ["", "has space", "line\nbreak", "ünïcode"])
def test_malformed_api_keys_are_refused_without_echoing_them(bad: str) -> None:
    with pytest.raises(ValueError) as caught:
        ImggoClient(BASE, bad)
    if bad:
        assert bad not in str(caught.value)


# ------------------------------------------------------------------ secrets
def test_api_key_never_reaches_logs_repr_or_errors(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    echo = envelope(401, "UNAUTHORIZED", f"invalid key {KEY}", {"key": KEY, "n": [KEY]})
    script = Script(
        envelope(503),
        httpx.ConnectError(f"could not connect with {KEY}"),
        ingest_ok(),
        ok(job_body("succeeded")),
        echo,
    )
    client, _ = make(script)
    client.submit(url_submission())
    client.get_job(JOB_ID)
    with pytest.raises(ImageApiError) as caught:
        client.get_job(JOB_ID)

    assert caplog.records, "the client should log its retries"
    assert any("retrying" in r.getMessage() for r in caplog.records)
    logged = "\n".join(r.getMessage() + repr(r.args) for r in caplog.records)
    assert KEY not in logged
    assert KEY not in caplog.text
    assert KEY not in repr(client) and KEY not in str(client)
    assert "imggo_test_***" in repr(client)
    error = caught.value
    assert KEY not in error.message and KEY not in json.dumps(error.details)
    assert error.code == "UNAUTHORIZED" and error.retryable is False


def test_retry_logs_say_attempt_status_and_wait(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="imggo.client")
    script = Script(envelope(429, "RATE_LIMITED", headers={"Retry-After": "2"}), ingest_ok())
    client, _ = make(script)
    client.submit(url_submission())
    (record,) = [r for r in caplog.records if "retrying" in r.getMessage()]
    assert record.name == "imggo.client"
    message = record.getMessage()
    assert "HTTP 429" in message and "attempt 1/5" in message and "2.000s" in message


# ------------------------------------------------------------------ rate limits
def test_rate_limit_headers_are_kept() -> None:
    headers = {
        "X-RateLimit-Limit": "60",
        "X-RateLimit-Remaining": "59",
        "X-RateLimit-Reset": "1736935260",
    }
    client, _ = make(Script(ok(job_body("running"), headers=headers), ok(job_body("running"))))
    seen = [client.last_rate_limit]
    client.get_job(JOB_ID)
    seen.append(client.last_rate_limit)
    client.get_job(JOB_ID)  # an answer without the headers keeps the last known state
    seen.append(client.last_rate_limit)
    expected = RateLimit(limit=60, remaining=59, reset_at=1736935260.0)
    assert seen == [None, expected, expected]


def test_rate_limit_is_recorded_from_a_429_too() -> None:
    headers = {"X-RateLimit-Limit": "5", "X-RateLimit-Remaining": "0", "Retry-After": "1"}
    client, _ = make(Script(envelope(429, headers=headers)), max_attempts=1)
    with pytest.raises(ImageApiError):
        client.submit(url_submission())
    assert client.last_rate_limit == RateLimit(limit=5, remaining=0, reset_at=None)


# ------------------------------------------------------------------ the pooled client
class ClosingTransport(httpx.MockTransport):
    """A scripted transport that counts how often the client closed it."""

    def __init__(self, script: Script) -> None:
        super().__init__(script)
        self.closed = 0

    def close(self) -> None:
        self.closed += 1


@pytest.fixture
def sessions(monkeypatch: pytest.MonkeyPatch) -> list[HttpSession]:
    """Every HttpSession the client opens, in order."""
    opened: list[HttpSession] = []

    class Counted(HttpSession):
        def __init__(self, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            opened.append(self)

    monkeypatch.setattr(client_module, "HttpSession", Counted)
    return opened


def test_the_pool_opens_on_first_use_is_kept_and_reopens_after_close(sessions) -> None:
    transport = ClosingTransport(Script(ok(job_body("running"))))
    client = ImggoClient(BASE, KEY, transport=transport)
    assert sessions == []  # nothing opened before the first call

    client.get_job(JOB_ID)
    client.get_job(JOB_ID)
    assert (len(sessions), transport.closed) == (1, 0)
    client.close()
    assert transport.closed == 1  # close() closed the connections

    client.get_job(JOB_ID)
    assert len(sessions) == 2
    client.close()
    client.close()  # idempotent
    assert transport.closed == 2


def test_concurrent_first_calls_share_one_pool(sessions) -> None:
    client, _ = make(Script(ok(job_body("running"))))
    barrier = threading.Barrier(8)

    def work() -> None:
        barrier.wait()
        client.get_job(JOB_ID)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(sessions) == 1
    client.close()


def test_a_client_dropped_without_close_closes_its_pool() -> None:
    transport = ClosingTransport(Script(ok(job_body("running"))))
    client = ImggoClient(BASE, KEY, transport=transport)
    client.get_job(JOB_ID)
    del client
    gc.collect()
    assert transport.closed == 1


def test_a_call_that_races_close_gets_a_retryable_error() -> None:
    session = HttpSession(
        transport=httpx.MockTransport(Script(ok({}))),
        max_connections=1,
        max_response_bytes=1000,
        user_agent="test",
    )
    url = httpx.URL(f"{BASE}/api/_health")
    assert session.exchange("GET", url, time_left=1.0).status == 200
    session.close()
    with pytest.raises(ImageApiError) as caught:
        session.exchange("GET", url, time_left=1.0)
    assert (caught.value.code, caught.value.retryable) == ("client_closed", True)
    session.close()  # idempotent


def test_a_process_exits_without_closing_its_client() -> None:
    # Nothing an unclosed client leaves behind (its pool, its finalizer) holds the
    # process open or fails at exit.
    root = Path(__file__).resolve().parents[2]
    code = (
        "import httpx; from core.adapters.imggo.client import ImggoClient; "
        "answer = httpx.Response(200, json={'success': True, 'data': {}}); "
        "kept = ImggoClient('http://imggo.test', 'imggo_test_k', "
        "transport=httpx.MockTransport(lambda request: answer)); kept.ping()"
    )
    subprocess.run([sys.executable, "-c", code], cwd=root, check=True, timeout=30)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_child_opens_its_own_pool() -> None:
    # The child inherits the client and the parent's pooled connections: it opens its own.
    script = Script(ok({"status": "healthy"}))
    client, _ = make(script, timeout_s=2.0)
    client.ping()
    pid = os.fork()
    if pid == 0:  # the child: report through the exit status, never return into pytest
        try:
            client.ping()
        except BaseException:
            os._exit(1)
        os._exit(0)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    client.ping()  # and the parent's pool still works
    client.close()


def test_tenacity_loads_at_the_first_retry_and_not_before() -> None:
    root = Path(__file__).resolve().parents[2]
    code = (
        "import sys, httpx; from core.adapters.imggo.client import ImggoClient; "
        f"job = httpx.Response(200, json={{'success': True, 'data': {job_body()!r}}}); "
        "busy = httpx.Response(503, json={'success': False, 'error': 'busy'}); "
        "answers = [job, busy, job]; "
        "imggo = ImggoClient('http://imggo.test', 'imggo_test_k', sleep=lambda s: None, "
        "transport=httpx.MockTransport(lambda request: answers.pop(0))); "
        f"imggo.get_job({JOB_ID!r}); assert 'tenacity' not in sys.modules; "
        f"imggo.get_job({JOB_ID!r}); assert 'tenacity' in sys.modules and answers == []"
    )
    subprocess.run([sys.executable, "-c", code], cwd=root, check=True, timeout=30)


def test_importing_the_package_does_not_import_httpx() -> None:
    root = Path(__file__).resolve().parents[2]
    code = (
        "import sys, core.adapters.imggo as m; "
        "assert 'httpx' not in sys.modules and 'tenacity' not in sys.modules; "
        "m.ImggoClient; assert 'httpx' in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], cwd=root, check=True)


# ------------------------------------------------------------------ properties
_retryable = st.sampled_from([*RETRYABLE, "connect", "timeout"])
_outcomes = st.one_of(_retryable, st.sampled_from([*NEVER_RETRIED, 202, 200]))


@settings(max_examples=200, deadline=None)
@given(outcomes=st.lists(_outcomes, min_size=1, max_size=12), max_attempts=st.integers(1, 6))
def test_call_count_never_exceeds_max_attempts_and_4xx_stops_at_once(
    outcomes: list[int | str], max_attempts: int
) -> None:
    steps: list[Step] = []
    for outcome in outcomes:
        if outcome == "connect":
            steps.append(httpx.ConnectError("refused"))
        elif outcome == "timeout":
            steps.append(httpx.ReadTimeout("slow"))
        elif outcome in (200, 202):
            steps.append(ingest_ok(int(outcome)))
        else:
            steps.append(envelope(int(outcome), headers={"Retry-After": "1"}))
    script = Script(*steps)
    client, fake = make(script, max_attempts=max_attempts)

    # Where the first non-retryable outcome is, the script stops being asked.
    first_final = next(
        (i for i, o in enumerate(outcomes) if o not in (*RETRYABLE, "connect", "timeout")), None
    )
    expected_calls = min(max_attempts, (first_final + 1) if first_final is not None else 10**6)
    try:
        job = client.submit(url_submission())
    except ImageApiError as error:
        last = outcomes[min(script.calls, len(outcomes)) - 1]
        assert error.retryable is (last in (*RETRYABLE, "connect", "timeout"))
    else:
        assert job.replayed is (outcomes[script.calls - 1] == 200)
    assert script.calls == expected_calls
    assert script.calls <= max_attempts
    assert len(fake.waits) == script.calls - 1


def test_give_up_log_counts_every_attempt(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="imggo.client")
    client, _ = make(Script(envelope(503), envelope(400, "BAD", "no")))
    with pytest.raises(ImageApiError):
        client.submit(url_submission())
    (record,) = caplog.records
    assert "gave up after 2 attempt(s)" in record.getMessage()
    assert "400 BAD" in record.getMessage()
