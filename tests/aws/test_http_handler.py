"""The HTTP entry point fed with AWS's own event shapes (HTTP API 2.0, REST 1.0, Function
URL), against DynamoDB/S3/SQS/SSM on moto and the ImgGo simulator."""

from __future__ import annotations

import base64
import json

from core.api.http import Headers, Response
from handlers_aws.http_events import parse_event, to_event_response
from tests.aws import lambda_events
from tests.aws.conftest import API_KEY, TENANT, AwsStack, call_api
from tests.support.images import png


def auth() -> dict[str, str]:
    return {"Authorization": f"Bearer {API_KEY}"}


def test_health_answers_without_building_services(stack: AwsStack) -> None:
    from handlers_aws.runtime import host

    result = call_api(lambda_events.http_v2("GET", "/health"))
    assert result.status == 200 and result.json()["status"] == "ok"
    assert result.raw["isBase64Encoded"] is False
    assert not host().runtime.built  # no store, no secrets fetched for /health


def test_binary_image_upload_through_http_api_v2(stack: AwsStack) -> None:
    image = png(11)
    event = lambda_events.http_v2(
        "POST",
        "/v1/jobs",
        headers={**auth(), "Content-Type": "image/png"},
        query="pattern_id=image-facts&filename=cat.png",
        body=image,
        binary=True,
    )
    result = call_api(event)
    assert result.status == 202, result.body
    job = result.json()
    assert result.headers["location"] == f"/v1/jobs/{job['id']}"
    # The request id API Gateway assigned is the response's (and the logs') id.
    assert result.headers["x-request-id"] == event["requestContext"]["requestId"]
    done = stack.wait_for(job["id"])
    assert done["status"] == "succeeded", done
    assert done["manifest"]["width"] == 24
    stored = stack.store.get(job["id"])
    assert stored is not None and stored.tenant == TENANT
    assert stored.source.blob_key is not None
    # The bytes went to S3 (the simulator fetched them through a presigned GET URL).
    assert stack.simulator.ingest_count() == 1


def test_rest_api_v1_multi_value_query_and_json_body(stack: AwsStack, image_host) -> None:
    created = call_api(
        lambda_events.rest_v1(
            "POST",
            "/v1/jobs",
            headers={**auth(), "Content-Type": "application/json"},
            body=json.dumps({"pattern_id": "image-facts", "image_url": image_host.url(3)}),
        )
    )
    assert created.status == 202, created.body
    stack.wait_for(created.json()["id"])
    listed = call_api(
        lambda_events.rest_v1(
            "GET",
            "/v1/jobs",
            headers=auth(),
            query=[("status", "succeeded"), ("status", "failed"), ("limit", "5")],
        )
    )
    assert listed.status == 200, listed.body
    # First value wins for a repeated name, as the core's one rule says.
    assert [j["id"] for j in listed.json()["items"]] == [created.json()["id"]]


def test_rest_api_v1_base64_body(stack: AwsStack) -> None:
    result = call_api(
        lambda_events.rest_v1(
            "POST",
            "/v1/jobs",
            headers={**auth(), "Content-Type": "image/png"},
            query=[("pattern_id", "image-facts")],
            body=png(12),
            binary=True,
        )
    )
    assert result.status == 202, result.body


def test_function_url_event(stack: AwsStack) -> None:
    result = call_api(
        lambda_events.function_url("GET", "/v1/jobs", headers=auth(), query="limit=2")
    )
    assert result.status == 200, result.body
    assert result.json() == {"items": [], "next_cursor": None, "skipped": 0}


def test_named_stage_prefix_is_stripped(stack: AwsStack) -> None:
    result = call_api(lambda_events.http_v2("GET", "/health", stage="prod"))
    assert result.status == 200


def test_errors_come_back_as_the_core_envelope(stack: AwsStack) -> None:
    unauthorised = call_api(lambda_events.http_v2("GET", "/v1/jobs"))
    assert unauthorised.status == 401
    assert unauthorised.json()["error"]["code"] == "missing_credentials"
    missing = stack.api("GET", "/v1/jobs/00000000-0000-0000-0000-000000000000")
    assert missing.status == 404


def test_cookies_and_repeated_headers_reach_the_core() -> None:
    event = lambda_events.load("apigw_http_v2.json")  # as generated: cookies, base64 body
    parsed = parse_event(event)
    assert parsed.request.headers.get("cookie") == "cookie1; cookie2"
    assert parsed.request.headers.get("header2") == "value1,value2"
    assert parsed.request.query == {"parameter1": "value1", "parameter2": "value"}
    assert parsed.request.body == b'{"test":"body"}'
    assert parsed.version == "2.0" and parsed.request.method == "POST"
    rest = parse_event(lambda_events.load("apigw_rest_v1.json"))
    assert rest.version == "1.0" and rest.request.path == "/path/to/resource"
    assert rest.request.query == {"foo": "bar"}
    assert rest.request.body == b'{"test":"body"}'


def test_responses_are_base64_only_when_not_text() -> None:
    binary = to_event_response(
        Response(200, b"\x89PNG\r\n", Headers({"Content-Type": "image/png"}))
    )
    assert binary["isBase64Encoded"] is True
    assert base64.b64decode(binary["body"]) == b"\x89PNG\r\n"
    csv = to_event_response(
        Response(200, b"a,b\n", Headers({"Content-Type": "text/csv; charset=utf-8"}))
    )
    assert csv == {
        "statusCode": 200,
        "headers": {"Content-Type": "text/csv; charset=utf-8"},
        "body": "a,b\n",
        "isBase64Encoded": False,
    }
    problem = to_event_response(
        Response(200, b"{}", Headers({"Content-Type": "application/problem+json"}))
    )
    assert problem["isBase64Encoded"] is False


def test_a_non_http_event_is_an_error() -> None:
    import pytest

    from handlers_aws.http_events import NotAnHttpEventError

    with pytest.raises(NotAnHttpEventError):
        parse_event(lambda_events.scheduled())
