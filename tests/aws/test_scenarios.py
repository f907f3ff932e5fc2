"""The cloud scenario suite on AWS: the real Lambda handlers (API Gateway HTTP API
events, the SQS worker with partial batch responses, S3 ObjectCreated, the EventBridge
schedule) against moto server (DynamoDB, SQS, S3, SSM) and the ImgGo simulator."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import pytest

from core.adapters.aws import clients
from core.domain.job import Job
from imggo_simulator import SimulatorConfig, SimulatorServer
from tests.aws import lambda_events
from tests.aws.conftest import TENANT, ApiGatewayShim, AwsStack, register_webhook
from tests.scenarios.suite import Answer, CloudScenarios, Delivery, put_signed
from tests.support.images import ImageHost
from tests.support.loopback import Blackhole

SCENARIO_ENV = {
    "IMGGO_FN_POLL_AFTER_S": "3600",  # only webhooks (and reconcile) move jobs
    "IMGGO_FN_SECRETS_TTL_S": "1",
    "IMGGO_FN_RECONCILE_AGE_S": "0",
}


def _ctx() -> lambda_events.LambdaContext:
    return lambda_events.LambdaContext()


@dataclass
class AwsDriver:
    stack: AwsStack
    images: ImageHost
    make: Any
    tenant: str = TENANT
    outage_budget_s: float = 10.0
    queue_can_delay: bool = True

    @property
    def simulator(self) -> SimulatorServer:
        return self.stack.simulator

    def api(self, method: str, path: str, **kw: Any) -> Answer:
        result = self.stack.api(method, path, **kw)
        return Answer(result.status, result.headers, result.body)

    def stored(self, job_id: str) -> Job | None:
        return self.stack.store.get(job_id)

    def image_url(self, n: int) -> str:
        return self.images.url(n)

    def publish_raw(self, body: bytes) -> None:
        clients.client("sqs").send_message(QueueUrl=self.stack.queue_url, MessageBody=body.decode())

    def _receive(self, limit: int) -> list[dict[str, Any]]:
        sqs = clients.client("sqs")
        got: list[dict[str, Any]] = []
        for _ in range(3 if limit else 1):
            batch = sqs.receive_message(
                QueueUrl=self.stack.queue_url,
                MaxNumberOfMessages=min(10, max(1, limit - len(got))),
                WaitTimeSeconds=0,
                AttributeNames=["All"],
            ).get("Messages", [])
            got += batch
            if len(got) >= limit:
                break
        return got

    def drain(self) -> None:
        sqs = clients.client("sqs")
        while messages := self._receive(10):
            for m in messages:
                sqs.delete_message(QueueUrl=self.stack.queue_url, ReceiptHandle=m["ReceiptHandle"])

    def deliver_work(self, expect: int) -> list[Delivery]:
        from handlers_aws.worker import handler as worker

        messages = self._receive(expect)
        if not messages:
            return []
        arn = f"arn:aws:sqs:us-east-1:123456789012:{self.stack.queue_name}"
        event = lambda_events.sqs(
            [
                lambda_events.SqsMessage(
                    m["MessageId"], m["ReceiptHandle"], m["Body"], dict(m.get("Attributes", {}))
                )
                for m in messages
            ],
            arn,
        )
        failed = {f["itemIdentifier"] for f in worker(event, _ctx())["batchItemFailures"]}
        sqs = clients.client("sqs")
        for m in messages:  # what the event source mapping does with the answer
            if m["MessageId"] in failed:
                sqs.change_message_visibility(
                    QueueUrl=self.stack.queue_url,
                    ReceiptHandle=m["ReceiptHandle"],
                    VisibilityTimeout=0,
                )
            else:
                sqs.delete_message(QueueUrl=self.stack.queue_url, ReceiptHandle=m["ReceiptHandle"])
        return [Delivery(m["Body"].encode(), m["MessageId"] not in failed) for m in messages]

    def object_landed(self, job_id: str, tenant: str, data: bytes, upload: dict[str, Any]) -> bool:
        from handlers_aws.uploads import handler as on_upload

        put_signed(upload, data)
        try:
            on_upload(
                lambda_events.s3_put(self.stack.bucket, f"incoming/{tenant}/{job_id}", len(data)),
                _ctx(),
            )
        except Exception:
            return False  # Lambda's asynchronous invocation retries a raised event
        return True

    def tick(self) -> None:
        from handlers_aws.schedule import handler as scheduled

        scheduled(lambda_events.scheduled(), _ctx())

    def rotate_imggo_key(self, new_key: str) -> None:
        clients.client("ssm").put_parameter(
            Name=self.stack.env["IMGGO_API_KEY_SECRET_REF"],
            Value=new_key,
            Type="SecureString",
            Overwrite=True,
        )

    @contextmanager
    def store_outage(self) -> Iterator[AwsDriver]:
        hole = Blackhole()
        try:
            broken = self.make(
                IMGGO_FN_STORE_URL=f"dynamodb://{self.stack.table}?endpoint={hole.url}",
                **SCENARIO_ENV,
            )
            yield AwsDriver(broken, self.images, self.make)
        finally:
            hole.close()


class TestAwsScenarios(CloudScenarios):
    @pytest.fixture
    def cloud(self, make_stack, image_host: ImageHost, api_gateway: ApiGatewayShim) -> AwsDriver:
        stack = make_stack(SimulatorConfig(processing_s=0.05), max_receive_count=5, **SCENARIO_ENV)
        register_webhook(stack, api_gateway.url)
        return AwsDriver(stack, image_host, make_stack)
