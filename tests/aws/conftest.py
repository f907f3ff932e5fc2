"""The AWS side on loopback: moto's real server (DynamoDB, S3, SQS, SSM, Secrets Manager)
on 127.0.0.1 (tests.aws.moto_server: with DynamoDB's conditional writes atomic), fake
credentials, and nothing that could reach a real AWS endpoint.

The environment is set before any test of this folder runs: every boto3 client made
anywhere (our adapters, powertools' providers) finds the moto server through the
standard AWS_ENDPOINT_URL variable, and credentials that can only ever sign for moto.
IMDS is switched off so botocore never probes 169.254.169.254 for credentials.
"""

from __future__ import annotations

import base64
import itertools
import json
import os
import secrets
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from core.adapters.aws import clients
from core.adapters.stores.dynamodb import DynamoDbJobStore
from core.api.auth import hash_key
from handlers_aws import runtime as aws_runtime
from imggo_simulator import DEMO_API_KEY, SimulatorConfig, SimulatorServer
from tests.aws import lambda_events
from tests.integration.conftest import ImageHost
from tests.support.loopback import base_url, serve_on_loopback, stop

REGION = "us-east-1"
ACCOUNT = "123456789012"  # moto's default account

FAKE_AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",  # moto's fake credentials
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": REGION,
    "AWS_REGION": REGION,
    "AWS_EC2_METADATA_DISABLED": "true",
    "AWS_CONFIG_FILE": os.devnull,
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    "POWERTOOLS_METRICS_NAMESPACE": "ImgGoTests",
    "POWERTOOLS_SERVICE_NAME": "imggo-functions-tests",
    "POWERTOOLS_DEV": "false",
}
_DROPPED = ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_ROLE_ARN", "AWS_WEB_IDENTITY_TOKEN_FILE")

_names = itertools.count()


def unique(prefix: str) -> str:
    """A fresh resource name (tables, buckets, queues): tests never share state."""
    return f"{prefix}-{next(_names)}-{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="session")
def moto_url() -> Iterator[str]:
    from tests.aws.moto_server import MotoServer  # moto loads only for AWS tests

    saved = {name: os.environ.get(name) for name in [*FAKE_AWS_ENV, *_DROPPED, "AWS_ENDPOINT_URL"]}
    for name in _DROPPED:
        os.environ.pop(name, None)
    os.environ.update(FAKE_AWS_ENV)
    server = MotoServer()  # DynamoDB's conditional writes atomic, as in AWS
    server.start()
    url = server.url
    os.environ["AWS_ENDPOINT_URL"] = url
    try:
        yield url
    finally:
        server.stop()
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


# --------------------------------------------------------------------------- the stack
API_KEY = "aws-test-key-acme"
TENANT = "acme corp"  # a space: S3 event keys arrive URL-encoded and must be decoded


@dataclass
class ApiResult:
    status: int
    headers: dict[str, str]
    body: bytes
    raw: dict[str, Any]

    def json(self) -> Any:
        return json.loads(self.body)


def call_api(event: dict[str, Any]) -> ApiResult:
    from handlers_aws.api import handler

    raw = handler(event, lambda_events.LambdaContext())
    body = raw.get("body") or ""
    data = base64.b64decode(body) if raw.get("isBase64Encoded") else body.encode()
    headers = {k.lower(): v for k, v in (raw.get("headers") or {}).items()}
    return ApiResult(raw["statusCode"], headers, data, raw)


@dataclass
class AwsStack:
    moto_url: str
    simulator: SimulatorServer
    table: str
    bucket: str
    queue_name: str
    queue_url: str
    dlq_url: str
    webhook_secret: str
    env: dict[str, str]
    store: DynamoDbJobStore
    extra: dict[str, Any] = field(default_factory=dict)

    def api(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        body: bytes | None = None,
        content_type: str | None = None,
        query: str = "",
        headers: dict[str, str] | None = None,
        key: str | None = API_KEY,
    ) -> ApiResult:
        hdrs = dict(headers or {})
        if key is not None:
            hdrs["Authorization"] = f"Bearer {key}"
        binary = False
        if json_body is not None:
            body, content_type = json.dumps(json_body).encode(), "application/json"
        elif body is not None:
            binary = True
        if content_type:
            hdrs["Content-Type"] = content_type
        return call_api(
            lambda_events.http_v2(method, path, headers=hdrs, query=query, body=body, binary=binary)
        )

    def wait_for(self, job_id: str, *, timeout: float = 10.0) -> dict[str, Any]:
        """Poll GET /v1/jobs/{id} through the handler until the job is terminal."""
        import time

        deadline = time.monotonic() + timeout
        while True:
            job = self.api("GET", f"/v1/jobs/{job_id}").json()
            if job["status"] in ("succeeded", "failed", "rejected") or time.monotonic() > deadline:
                return job
            time.sleep(0.05)


def _setup_stack(
    moto_url: str, tmp_path: Path, config: SimulatorConfig, max_receive_count: int, **env: str
) -> AwsStack:
    simulator = SimulatorServer(config).start()
    table, bucket, queue = unique("jobs"), unique("uploads"), unique("work")
    store = DynamoDbJobStore(table)
    store.create_table()
    clients.client("s3").create_bucket(Bucket=bucket)
    sqs = clients.client("sqs")
    dlq_url = sqs.create_queue(QueueName=f"{queue}-dlq")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    queue_url = sqs.create_queue(
        QueueName=queue,
        Attributes={
            "RedrivePolicy": json.dumps(
                {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": str(max_receive_count)}
            ),
            "VisibilityTimeout": "30",
        },
    )["QueueUrl"]
    webhook_secret = secrets.token_urlsafe(24)
    prefix = f"/{unique('imggo')}"
    ssm = clients.client("ssm")
    values = {
        "api-key": DEMO_API_KEY,
        "webhook-secret": webhook_secret,
        "api-key-hashes": f"{TENANT}={hash_key(API_KEY)}",
    }
    for name, value in values.items():
        ssm.put_parameter(Name=f"{prefix}/{name}", Value=value, Type="SecureString")
    stack_env = {
        "IMGGO_FN_STORE_URL": f"dynamodb://{table}",
        "IMGGO_FN_BLOB_URL": f"s3://{bucket}",
        "IMGGO_FN_QUEUE_URL": f"sqs://{ACCOUNT}/{queue}",
        "IMGGO_BASE_URL": simulator.url,
        "IMGGO_API_KEY_SECRET_REF": f"{prefix}/api-key",
        "IMGGO_WEBHOOK_SECRET_SECRET_REF": f"{prefix}/webhook-secret",
        "IMGGO_FN_API_KEYS_SECRET_REF": f"{prefix}/api-key-hashes",
        "IMGGO_FN_SSRF_ALLOW": "127.0.0.1",
        "IMGGO_TIMEOUT_S": "5",
        "IMGGO_FN_POLL_AFTER_S": "0.1",
        "IMGGO_FN_DATA_DIR": str(tmp_path),
        **env,
    }
    return AwsStack(
        moto_url,
        simulator,
        table,
        bucket,
        queue,
        queue_url,
        dlq_url,
        webhook_secret,
        stack_env,
        store,
    )


@pytest.fixture
def make_stack(moto_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """make_stack(SimulatorConfig(...), ENV_NAME="value") -> AwsStack, with the
    process environment set as the functions' configuration would set it."""
    made: list[AwsStack] = []

    def make(
        config: SimulatorConfig | None = None, *, max_receive_count: int = 1, **env: str
    ) -> AwsStack:
        config = config or SimulatorConfig(processing_s=0.05)
        stack = _setup_stack(moto_url, tmp_path, config, max_receive_count, **env)
        for name, value in stack.env.items():
            monkeypatch.setenv(name, value)
        aws_runtime.reset_for_tests()  # a fresh "container" for this configuration
        made.append(stack)
        return stack

    yield make
    aws_runtime.reset_for_tests()
    for stack in made:
        stack.simulator.stop()
        stack.store.close()


@pytest.fixture
def stack(make_stack) -> AwsStack:
    return make_stack()


class ApiGatewayShim:
    """API Gateway on loopback: real HTTP requests in, HTTP API (2.0) events through the
    Lambda handler, its answers back out. ImgGo's webhooks reach the function this way."""

    def __init__(self) -> None:
        class Handler(BaseHTTPRequestHandler):
            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                split = urlsplit(self.path)
                event = lambda_events.http_v2(
                    self.command,
                    split.path,
                    headers=dict(self.headers.items()),
                    query=split.query,
                    body=body,
                    binary=False,
                )
                result = call_api(event)
                self.send_response(result.status)
                for name, value in result.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(result.body)))
                self.end_headers()
                self.wfile.write(result.body)

            do_GET = do_POST = _serve

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = serve_on_loopback(Handler)
        self.url = base_url(self.httpd)

    def close(self) -> None:
        stop(self.httpd)


@pytest.fixture
def api_gateway() -> Iterator[ApiGatewayShim]:
    shim = ApiGatewayShim()
    yield shim
    shim.close()


def register_webhook(stack: AwsStack, url: str) -> None:
    httpx.post(
        f"{stack.simulator.url}/api/webhooks",
        headers={"Authorization": f"Bearer {DEMO_API_KEY}"},
        json={
            "url": f"{url}/v1/webhooks/imggo",
            "events": ["job.succeeded", "job.failed"],
            "secret": stack.webhook_secret,
        },
    ).raise_for_status()


@pytest.fixture(scope="session")
def image_host() -> Iterator[ImageHost]:
    host = ImageHost()
    yield host
    host.close()
