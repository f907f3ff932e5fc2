"""Queue on SQS: work items become messages in the core's wire format.

    sqs://ACCOUNT_ID/QUEUE_NAME[?endpoint=URL&region=NAME]   (no lookup call)
    sqs://QUEUE_NAME[?endpoint=URL&region=NAME]              (GetQueueUrl once)

With the account id the queue URL is built from the client's endpoint
(`https://sqs.<region>.amazonaws.com/<account>/<name>`, or the moto server's), so a
cold start spends no call on finding it and the function needs only sqs:SendMessage.

Batching is the adapter's: messages go out in SendMessageBatch requests of 10 (the SQS
maximum; a work item's body is ~60 bytes, far below the request's size limit).
Entries SQS refuses are retried a few times. What still fails - refused entries, or a
connection failure, timeout, throttling or 5xx left after the client's `limits` - is
UnavailableError `store_unavailable`: the jobs stay `accepted`, and reconcile
dispatches them later, so nothing is lost.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Sequence
from typing import Any
from urllib.parse import unquote, urlsplit

from core.adapters.aws import clients
from core.adapters.aws.errors import unavailable_on_outage
from core.adapters.outages import DEFAULT_LIMITS, CallLimits, unavailable
from core.ports import WorkItem, check_delay
from core.service.messages import encode_work_item

_OPTIONS = {
    "endpoint": "endpoint URL, e.g. http://127.0.0.1:5000 for moto",
    "region": "AWS region, default from AWS_REGION",
}
SEND_BATCH = 10  # SendMessageBatch takes at most 10 entries
SEND_ATTEMPTS = 3  # for entries SQS refused inside a batch that was itself accepted
_BACKEND = "SQS"


def parse_url(url: str) -> tuple[str | None, str, dict[str, str]]:
    """`sqs://[account/]name?options` -> (account or None, queue name, options)."""
    parts = urlsplit(url)
    if parts.scheme != "sqs":
        raise ValueError(f"not an sqs URL: {parts.scheme}://")
    path = unquote(parts.path).strip("/")
    if not parts.netloc or parts.fragment or "/" in path:
        raise ValueError("an sqs URL looks like sqs://account-id/queue-name or sqs://queue-name")
    account, name = (parts.netloc, path) if path else (None, parts.netloc)
    if account is not None and not account.isdigit():
        raise ValueError("the account id in sqs://account-id/queue-name must be digits")
    return account, name, clients.parse_options(parts.query, _OPTIONS)


class SqsQueue:
    def __init__(
        self,
        name: str,
        *,
        account: str | None = None,
        endpoint_url: str | None = None,
        region: str | None = None,
        limits: CallLimits = DEFAULT_LIMITS,
        client: Any = None,
    ) -> None:
        self.name = name
        self._account = account
        self._endpoint_url = endpoint_url
        self._region = region
        self._limits = limits
        self._client = client
        self._url: str | None = None
        self._lock = threading.Lock()

    @classmethod
    def from_url(cls, url: str) -> SqsQueue:
        account, name, options = parse_url(url)
        return cls(
            name,
            account=account,
            endpoint_url=options.get("endpoint"),
            region=options.get("region"),
        )

    @property
    def client(self) -> Any:
        """The SQS client, made on first send: most cold starts never send."""
        with self._lock:
            if self._client is None:
                self._client = clients.client(
                    "sqs", endpoint_url=self._endpoint_url, region=self._region, limits=self._limits
                )
            return self._client

    @property
    def queue_url(self) -> str:
        client = self.client
        with self._lock:
            if self._url is None:
                if self._account is not None:
                    endpoint = str(client.meta.endpoint_url).rstrip("/")
                    self._url = f"{endpoint}/{self._account}/{self.name}"
                else:
                    with unavailable_on_outage(_BACKEND):
                        found = client.get_queue_url(QueueName=self.name)
                    self._url = str(found["QueueUrl"])
            return self._url

    max_delay_s = 900.0  # SQS's DelaySeconds

    def send(self, items: Sequence[WorkItem], *, delay_s: float = 0.0) -> None:
        check_delay(self, delay_s)
        for start in range(0, len(items), SEND_BATCH):
            self._send_batch(items[start : start + SEND_BATCH], math.ceil(delay_s))

    def _send_batch(self, items: Sequence[WorkItem], delay_s: int) -> None:
        pending = {str(i): encode_work_item(item) for i, item in enumerate(items)}
        failed: list[dict[str, Any]] = []
        for attempt in range(SEND_ATTEMPTS):
            entries = [
                {"Id": entry_id, "MessageBody": body, "DelaySeconds": delay_s}
                for entry_id, body in pending.items()
            ]
            with unavailable_on_outage(_BACKEND):
                response = self.client.send_message_batch(QueueUrl=self.queue_url, Entries=entries)
            failed = response.get("Failed") or []
            # A sender fault (bad message) will not get better by retrying.
            if not failed or any(f.get("SenderFault") for f in failed):
                break
            pending = {f["Id"]: pending[f["Id"]] for f in failed}
            time.sleep(0.05 * 2**attempt)
        if failed:
            codes = sorted({str(f.get("Code")) for f in failed})
            raise unavailable(_BACKEND, reason=f"{len(failed)} entries refused: {', '.join(codes)}")

    def close(self) -> None:
        if self._client is not None:
            self._client.close()


def from_url(url: str) -> SqsQueue:
    return SqsQueue.from_url(url)


__all__ = ["SqsQueue", "from_url", "parse_url"]
