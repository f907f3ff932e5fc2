"""End to end through the other triggers: S3 uploads, SQS batches, webhooks, schedule."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx

from core.adapters.aws import clients
from core.domain.job import JobStatus
from core.ports import WorkItem
from core.service.messages import encode_work_item
from imggo_simulator import SimulatorConfig
from tests.aws import lambda_events
from tests.aws.conftest import TENANT, ApiGatewayShim, AwsStack, register_webhook
from tests.aws.plant import plant_item
from tests.support.images import png
from tests.support.unreadable import SECRET, job_record, unreadable_doc


def _ctx() -> lambda_events.LambdaContext:
    return lambda_events.LambdaContext()


# --------------------------------------------------------------------------- S3 uploads
def test_presigned_upload_lands_and_the_job_succeeds(stack: AwsStack) -> None:
    from handlers_aws.uploads import handler as on_upload

    image = png(21, size=40)
    created = stack.api(
        "POST",
        "/v1/uploads",
        json_body={
            "pattern_id": "image-facts",
            "content_type": "image/png",
            "size": len(image),
            "filename": "scan 1.png",
        },
    )
    assert created.status == 201, created.body
    ticket = created.json()
    job_id, upload = ticket["job"]["id"], ticket["upload"]
    assert upload["method"] == "PUT" and upload["url"].startswith(stack.moto_url)
    assert upload["headers"] == {"Content-Type": "image/png", "Content-Length": str(len(image))}
    key = f"incoming/{TENANT}/{job_id}"

    put = httpx.put(upload["url"], content=image, headers=upload["headers"])
    assert put.status_code == 200, put.text
    assert stack.store.get(job_id).status is JobStatus.ACCEPTED  # nothing moves before S3 says so

    result = on_upload(lambda_events.s3_put(stack.bucket, key, len(image)), _ctx())
    [record] = result["records"]
    assert record["key"] == key  # "acme+corp" in the event, decoded
    assert record["job_id"] == job_id and record["status"] == "queued", record
    job = stack.wait_for(job_id)
    assert job["status"] == "succeeded", job
    assert (job["manifest"]["width"], job["manifest"]["height"]) == (40, 40)
    assert stack.store.get(job_id).tenant == TENANT
    # A repeated event (S3 delivers at least once) changes nothing.
    again = on_upload(lambda_events.s3_put(stack.bucket, key, len(image)), _ctx())
    assert again["records"][0]["status"] == "succeeded"
    assert stack.simulator.ingest_count() == 1


def test_an_upload_that_does_not_match_its_declaration_is_rejected(stack: AwsStack) -> None:
    from handlers_aws.uploads import handler as on_upload

    created = stack.api(
        "POST",
        "/v1/uploads",
        json_body={"pattern_id": "image-facts", "content_type": "image/png", "size": 10},
    ).json()
    job_id = created["job"]["id"]
    key = f"incoming/{TENANT}/{job_id}"
    # moto does not enforce the signed Content-Length; real S3 would refuse this PUT.
    clients.client("s3").put_object(
        Bucket=stack.bucket, Key=key, Body=png(3), ContentType="image/png"
    )
    result = on_upload(lambda_events.s3_put(stack.bucket, key, 10), _ctx())
    assert result["records"][0]["status"] == "rejected"
    assert stack.store.get(job_id).error.code == "upload_mismatch"
    # Objects that are not uploads are ignored.
    other = on_upload(lambda_events.s3_put(stack.bucket, "uploads/x/y", 3), _ctx())
    assert other["records"][0]["code"] == "skipped"
    assert stack.simulator.ingest_count() == 0


# --------------------------------------------------------------------------- SQS worker
def _receive_all(queue_url: str, expected: int) -> list[dict[str, Any]]:
    sqs = clients.client("sqs")
    messages: list[dict[str, Any]] = []
    deadline = time.monotonic() + 10
    while len(messages) < expected and time.monotonic() < deadline:
        got = sqs.receive_message(
            QueueUrl=queue_url,
            MaxNumberOfMessages=10,
            WaitTimeSeconds=0,
            AttributeNames=["All"],
        ).get("Messages", [])
        messages += got
    return messages


def _as_event(stack: AwsStack, messages: list[dict[str, Any]]) -> dict[str, Any]:
    arn = f"arn:aws:sqs:us-east-1:123456789012:{stack.queue_name}"
    return lambda_events.sqs(
        [
            lambda_events.SqsMessage(
                m["MessageId"], m["ReceiptHandle"], m["Body"], dict(m.get("Attributes", {}))
            )
            for m in messages
        ],
        arn,
    )


def test_batch_goes_through_sqs_and_only_the_bad_items_fail(stack: AwsStack, image_host) -> None:
    from handlers_aws.worker import handler as worker

    items = [{"image_url": image_host.url(i)} for i in range(30, 34)]
    created = stack.api(
        "POST", "/v1/batches", json_body={"pattern_id": "image-facts", "items": items}
    )
    assert created.status == 202, created.body
    job_ids = [item["job_id"] for item in created.json()["items"]]
    assert all(stack.store.get(j).status is JobStatus.ACCEPTED for j in job_ids)
    assert stack.simulator.ingest_count() == 0  # nothing dispatched before the worker runs

    # Poison next to the good ones: not ours, and a well-formed item whose job is gone.
    sqs = clients.client("sqs")
    sqs.send_message(QueueUrl=stack.queue_url, MessageBody="not a work item")
    sqs.send_message(
        QueueUrl=stack.queue_url,
        MessageBody=encode_work_item(WorkItem("00000000-0000-0000-0000-00000000dead")),
    )
    messages = _receive_all(stack.queue_url, len(job_ids) + 2)
    assert len(messages) == len(job_ids) + 2
    poison = {m["MessageId"] for m in messages if not any(j in m["Body"] for j in job_ids)}

    response = worker(_as_event(stack, messages), _ctx())
    # Poison is acknowledged (the core logged and counted it): redelivering it would
    # only walk it into the dead-letter queue. Nothing here is transient.
    assert response["batchItemFailures"] == []
    for job_id in job_ids:
        assert stack.wait_for(job_id)["status"] == "succeeded"
    assert stack.simulator.ingest_count() == len(job_ids)
    assert len(poison) == 2


def test_a_worker_with_no_time_left_hands_records_back_untouched(stack: AwsStack, image_host):
    from handlers_aws.worker import handler as worker

    created = stack.api(
        "POST",
        "/v1/batches",
        json_body={"pattern_id": "image-facts", "items": [{"image_url": image_host.url(35)}]},
    )
    job_id = created.json()["items"][0]["job_id"]
    messages = _receive_all(stack.queue_url, 1)
    short = lambda_events.LambdaContext()
    short.get_remaining_time_in_millis = lambda: 3_000  # type: ignore[method-assign]
    response = worker(_as_event(stack, messages), short)
    assert [f["itemIdentifier"] for f in response["batchItemFailures"]] == [
        messages[0]["MessageId"]
    ]
    assert stack.store.get(job_id).attempts == 0  # not started: no ImgGo call was cut off
    assert stack.simulator.ingest_count() == 0


def test_an_unavailable_imggo_is_retried_not_lost(make_stack) -> None:
    from handlers_aws.worker import handler as worker

    stack = make_stack(SimulatorConfig(processing_s=0.05, error_rate=1.0))
    created = stack.api(
        "POST",
        "/v1/batches",
        json_body={
            "pattern_id": "image-facts",
            "items": [{"image_url": "http://127.0.0.1:9/a.png"}],
        },
    )
    job_id = created.json()["items"][0]["job_id"]
    messages = _receive_all(stack.queue_url, 1)
    response = worker(_as_event(stack, messages), _ctx())
    assert [f["itemIdentifier"] for f in response["batchItemFailures"]] == [
        messages[0]["MessageId"]
    ]
    assert stack.store.get(job_id).status is JobStatus.ACCEPTED


# --------------------------------------------------------------------------- webhook, schedule
def test_webhook_through_api_gateway_updates_dynamodb(
    make_stack, api_gateway: ApiGatewayShim
) -> None:
    # Poll-through off: only ImgGo's signed webhook can move the job.
    stack = make_stack(IMGGO_FN_POLL_AFTER_S="3600")
    register_webhook(stack, api_gateway.url)
    created = stack.api(
        "POST", "/v1/jobs", body=png(41), content_type="image/png", query="pattern_id=receipt"
    )
    assert created.status == 202, created.body
    job_id = created.json()["id"]
    deadline = time.monotonic() + 10
    while stack.store.get(job_id).status is not JobStatus.SUCCEEDED and time.monotonic() < deadline:
        time.sleep(0.05)
    job = stack.store.get(job_id)
    assert job.status is JobStatus.SUCCEEDED and job.manifest is not None
    assert stack.simulator.webhook_stats().get("sent", 0) >= 1


def test_scheduled_reconcile_recovers_a_dropped_webhook(make_stack) -> None:
    from handlers_aws.schedule import handler as scheduled

    stack = make_stack(
        SimulatorConfig(processing_s=0.02, webhook_drop_rate=1.0),
        IMGGO_FN_POLL_AFTER_S="3600",
        IMGGO_FN_RECONCILE_AGE_S="0",
    )
    created = stack.api(
        "POST", "/v1/jobs", body=png(42), content_type="image/png", query="pattern_id=receipt"
    )
    job_id = created.json()["id"]
    time.sleep(0.3)  # ImgGo finished; its webhook was lost
    assert stack.store.get(job_id).status is JobStatus.QUEUED
    report = scheduled(lambda_events.scheduled(), _ctx())
    assert report["advanced"] == 1, report
    assert stack.store.get(job_id).status is JobStatus.SUCCEEDED
    assert json.loads(json.dumps(report)) == report


def test_scheduled_reconcile_goes_on_past_an_unreadable_job(make_stack, capsys) -> None:
    from handlers_aws.schedule import handler as scheduled

    stack = make_stack(
        SimulatorConfig(processing_s=0.02, webhook_drop_rate=1.0),
        IMGGO_FN_POLL_AFTER_S="3600",
        IMGGO_FN_RECONCILE_AGE_S="0",
    )
    created = stack.api(
        "POST", "/v1/jobs", body=png(43), content_type="image/png", query="pattern_id=receipt"
    )
    job_id = created.json()["id"]
    # Another tenant's job, stored with a document no reader can decode: older, so the
    # pending scan meets it first.
    then = time.time() - 60
    record = job_record("bad-1", "other", created_at=then, updated_at=then)
    plant_item(
        stack.store.client,
        stack.table,
        job_id="bad-1",
        tenant="other",
        raw=unreadable_doc("not_json", record),
        created_at=then,
        updated_at=then,
    )
    time.sleep(0.3)  # ImgGo finished; its webhook was lost
    report = scheduled(lambda_events.scheduled(), _ctx())
    assert (report["advanced"], report["unreadable"], report["set_aside"]) == (1, 1, 1), report
    assert stack.store.get(job_id).status is JobStatus.SUCCEEDED
    failed = stack.store.get("bad-1")
    assert failed.status is JobStatus.FAILED and failed.error.code == "unreadable_record"
    emitted = capsys.readouterr().out
    assert '"ReconcileUnreadable"' in emitted and SECRET not in emitted
