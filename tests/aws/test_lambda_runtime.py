"""The real Lambda runtime loop: awslambdaric (AWS's runtime interface client) in its own
process, polling a Runtime API served here, invoking our handler cold, warm, and with an
event it must refuse."""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.aws import lambda_events
from tests.aws.conftest import API_KEY, AwsStack
from tests.support.loopback import serve_on_loopback

ROOT = Path(__file__).resolve().parents[2]
PREFIX = "/2018-06-01/runtime"
FUNCTION_ARN = "arn:aws:lambda:us-east-1:123456789012:function:imggo-http"


def trace_id() -> str:
    return f"Root=1-{uuid.uuid4().hex[:8]}-{uuid.uuid4().hex[:24]};Sampled=0"


@dataclass
class Outcome:
    kind: str  # "response" or "error"
    body: Any
    headers: dict[str, str]


@dataclass
class RuntimeApi:
    """The part of the Lambda Runtime API a runtime client speaks: next, response, error
    (and init/error). `invoke()` queues an event and waits for its outcome."""

    events: queue.Queue[tuple[str, bytes]] = field(default_factory=queue.Queue)
    outcomes: dict[str, Outcome] = field(default_factory=dict)
    init_errors: list[Any] = field(default_factory=list)
    done: threading.Condition = field(default_factory=threading.Condition)

    def serve(self) -> ThreadingHTTPServer:
        api = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _reply(
                self, status: int, body: bytes = b"", headers: dict[str, str] | None = None
            ) -> None:
                self.send_response(status)
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:
                if self.path != f"{PREFIX}/invocation/next":
                    self._reply(404)
                    return
                request_id, body = api.events.get()  # long poll, as Lambda does
                deadline = int((time.time() + 30) * 1000)
                self._reply(
                    200,
                    body,
                    {
                        "Content-Type": "application/json",
                        "Lambda-Runtime-Aws-Request-Id": request_id,
                        "Lambda-Runtime-Deadline-Ms": str(deadline),
                        "Lambda-Runtime-Invoked-Function-Arn": FUNCTION_ARN,
                        "Lambda-Runtime-Trace-Id": trace_id(),
                    },
                )

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                payload = json.loads(raw) if raw else None
                parts = self.path.removeprefix(PREFIX).strip("/").split("/")
                if parts == ["init", "error"]:
                    api.init_errors.append(payload)
                elif (
                    len(parts) == 3
                    and parts[0] == "invocation"
                    and parts[2] in ("response", "error")
                ):
                    with api.done:
                        api.outcomes[parts[1]] = Outcome(
                            parts[2], payload, dict(self.headers.items())
                        )
                        api.done.notify_all()
                else:
                    self._reply(404)
                    return
                self._reply(202, b'{"status":"OK"}', {"Content-Type": "application/json"})

            def log_message(self, *args: object) -> None:
                pass

        return serve_on_loopback(Handler)

    def invoke(self, event: Any, *, timeout: float = 30.0) -> Outcome:
        request_id = str(uuid.uuid4())
        self.events.put((request_id, json.dumps(event).encode()))
        deadline = time.monotonic() + timeout
        with self.done:
            while request_id not in self.outcomes:
                left = deadline - time.monotonic()
                if left <= 0 or self.init_errors:
                    raise AssertionError(
                        f"no outcome for {request_id}; init errors: {self.init_errors}"
                    )
                self.done.wait(left)
        return self.outcomes[request_id]


@pytest.fixture
def lambda_process(
    stack: AwsStack, tmp_path: Path
) -> Iterator[tuple[RuntimeApi, subprocess.Popen[bytes]]]:
    api = RuntimeApi()
    server = api.serve()
    env = {
        **os.environ,
        **stack.env,
        "AWS_LAMBDA_RUNTIME_API": f"127.0.0.1:{server.server_address[1]}",
        "AWS_LAMBDA_FUNCTION_NAME": "imggo-http",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "512",
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "PYTHONPATH": str(ROOT),
    }
    log = (tmp_path / "lambda.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "awslambdaric", "tests.aws.lambda_probe.handler"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        yield api, proc
    finally:
        proc.kill()  # the runtime client loops forever, as on Lambda
        proc.wait(timeout=10)
        log.close()
        server.shutdown()
        server.server_close()


def test_cold_warm_and_error_invocations(lambda_process, stack: AwsStack, image_host) -> None:
    api, proc = lambda_process
    auth = {"Authorization": f"Bearer {API_KEY}", "Content-Type": "application/json"}

    cold = api.invoke(
        lambda_events.http_v2(
            "POST",
            "/v1/jobs",
            headers=auth,
            body=json.dumps({"pattern_id": "image-facts", "image_url": image_host.url(51)}),
        )
    )
    assert cold.kind == "response", cold.body
    assert cold.body["statusCode"] == 202, cold.body
    job_id = json.loads(cold.body["body"])["id"]
    first = cold.body["headers"]
    assert first["x-probe-builds"] == "1"
    assert first["x-probe-pid"] == str(proc.pid)

    warm = api.invoke(lambda_events.http_v2("GET", f"/v1/jobs/{job_id}", headers=auth))
    assert warm.kind == "response" and warm.body["statusCode"] == 200, warm.body
    second = warm.body["headers"]
    # Same process, services built once, the same store / DynamoDB client / HTTP pool.
    for name in (
        "x-probe-pid",
        "x-probe-builds",
        "x-probe-store",
        "x-probe-dynamodb-client",
        "x-probe-imggo-http",
    ):
        assert second[name] == first[name], name
    assert second["x-probe-request-id"] != first["x-probe-request-id"]

    error = api.invoke(lambda_events.scheduled())  # not an HTTP event
    assert error.kind == "error"
    assert error.body["errorType"] == "NotAnHttpEventError"
    assert "API Gateway" in error.body["errorMessage"]

    after = api.invoke(lambda_events.http_v2("GET", "/health"))
    assert after.kind == "response" and after.body["statusCode"] == 200
    assert after.body["headers"]["x-probe-pid"] == first["x-probe-pid"]  # it survived the error
    assert proc.poll() is None
    assert stack.store.get(job_id) is not None
