"""AWS's event shapes (the SAM-generated fixtures in events/) filled in for a test."""

from __future__ import annotations

import base64
import copy
import json
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote_plus, urlencode

EVENTS = Path(__file__).parent / "events"


def load(name: str) -> dict[str, Any]:
    return json.loads((EVENTS / name).read_text())


def _body(body: bytes | str | None, binary: bool) -> tuple[str | None, bool]:
    if body is None:
        return None, False
    raw = body.encode() if isinstance(body, str) else body
    if binary:
        return base64.b64encode(raw).decode(), True
    return raw.decode(), False


def http_v2(
    method: str,
    path: str,
    *,
    headers: dict[str, str] | None = None,
    query: str = "",
    body: bytes | str | None = None,
    binary: bool = False,
    stage: str = "$default",
) -> dict[str, Any]:
    """An HTTP API (payload 2.0) event. `binary` sends the body base64-encoded, as HTTP
    API does for every non-text body."""
    event = load("apigw_http_v2.json")
    raw_path = path if stage == "$default" else f"/{stage}{path}"
    event["rawPath"] = raw_path
    event["rawQueryString"] = query
    event["queryStringParameters"] = None
    event["cookies"] = None
    event["pathParameters"] = None
    event["headers"] = {k.lower(): v for k, v in (headers or {}).items()}
    event["body"], event["isBase64Encoded"] = _body(body, binary)
    context = event["requestContext"]
    context["http"]["method"] = method
    context["http"]["path"] = raw_path
    context["requestId"] = uuid.uuid4().hex
    context["stage"] = stage
    return event


def function_url(method: str, path: str, **kw: Any) -> dict[str, Any]:
    event = http_v2(method, path, **kw)
    event["routeKey"] = "$default"
    context = event["requestContext"]
    context["domainName"] = "abcdefghij.lambda-url.us-east-1.on.aws"
    context["domainPrefix"] = "abcdefghij"
    context.pop("authentication", None)
    context["authorizer"] = None
    event.pop("stageVariables", None)
    return event


def rest_v1(
    method: str,
    path: str,
    *,
    headers: dict[str, str] | None = None,
    query: list[tuple[str, str]] | None = None,
    body: bytes | str | None = None,
    binary: bool = False,
) -> dict[str, Any]:
    """A REST API proxy (payload 1.0) event, with the multi-value maps filled as API
    Gateway fills them."""
    event = load("apigw_rest_v1.json")
    event["httpMethod"] = method
    event["path"] = path
    event["pathParameters"] = {"proxy": path.lstrip("/")}
    hdrs = headers or {}
    event["headers"] = dict(hdrs)
    event["multiValueHeaders"] = {k: [v] for k, v in hdrs.items()}
    pairs = query or []
    single: dict[str, str] = {}
    multi: dict[str, list[str]] = {}
    for name, value in pairs:
        single[name] = value  # API Gateway keeps the LAST value in the single map
        multi.setdefault(name, []).append(value)
    event["queryStringParameters"] = single or None
    event["multiValueQueryStringParameters"] = multi or None
    event["body"], event["isBase64Encoded"] = _body(body, binary)
    event["requestContext"]["httpMethod"] = method
    event["requestContext"]["path"] = f"/prod{path}"
    event["requestContext"]["requestId"] = str(uuid.uuid4())
    return event


def json_body(payload: Any) -> str:
    return json.dumps(payload)


def query_string(params: dict[str, str]) -> str:
    return urlencode(params)


@dataclass
class SqsMessage:
    message_id: str
    receipt_handle: str
    body: str
    attributes: dict[str, str] = field(default_factory=dict)


def sqs(messages: list[SqsMessage], queue_arn: str) -> dict[str, Any]:
    template = load("sqs_receive.json")["Records"][0]
    records = []
    for message in messages:
        record = copy.deepcopy(template)
        record.update(
            messageId=message.message_id,
            receiptHandle=message.receipt_handle,
            body=message.body,
            eventSourceARN=queue_arn,
            md5OfBody="",
        )
        record["attributes"].update(message.attributes)
        records.append(record)
    return {"Records": records}


def s3_put(bucket: str, key: str, size: int) -> dict[str, Any]:
    """An ObjectCreated:Put event; the key URL-encoded the way S3 puts it in events."""
    event = load("s3_put.json")
    record = event["Records"][0]
    record["eventTime"] = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())
    record["s3"]["bucket"]["name"] = bucket
    record["s3"]["bucket"]["arn"] = f"arn:aws:s3:::{bucket}"
    record["s3"]["object"]["key"] = quote_plus(key, safe="/")
    record["s3"]["object"]["size"] = size
    return event


def scheduled() -> dict[str, Any]:
    event = load("scheduled.json")
    event["time"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    event["id"] = str(uuid.uuid4())
    return event


@dataclass
class LambdaContext:
    """What the Lambda runtime passes as `context` (the attributes Powertools reads)."""

    function_name: str = "imggo-test"
    function_version: str = "$LATEST"
    memory_limit_in_mb: int = 512
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:imggo-test"
    log_group_name: str = "/aws/lambda/imggo-test"
    log_stream_name: str = "2026/01/01/[$LATEST]abc"

    def get_remaining_time_in_millis(self) -> int:
        return 30_000
