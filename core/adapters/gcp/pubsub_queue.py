"""Queue on Google Cloud Pub/Sub: `pubsub://projects/P/topics/T`.

Each WorkItem is one message whose data is the core wire format
(core.service.messages); the job id is also an attribute, for filtering and logs. A
push subscription (the Pub/Sub trigger of the worker function, via Eventarc) delivers
each message as a CloudEvent; handlers_gcp acknowledges or lets it be redelivered.

The publisher client is built on the first send, not when the adapter is built: the
HTTP function's cold start pays for importing google-cloud-pubsub (~0.5 s) only when a
batch actually needs the queue. With PUBSUB_EMULATOR_HOST set, the client talks to the
emulator without credentials.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from core.domain.errors import UnavailableError
from core.ports import WorkItem
from core.service.messages import encode_work_item

if TYPE_CHECKING:
    # pubsub_v1 ships no type information.
    from google.cloud import pubsub_v1  # type: ignore[attr-defined]

_TOPIC_RE = re.compile(r"projects/[a-z][a-z0-9.:-]{3,62}/topics/[A-Za-z][A-Za-z0-9._~+%-]{2,254}")
PUBLISH_TIMEOUT_S = 30.0


def parse_url(url: str) -> str:
    """`pubsub://projects/P/topics/T` -> the topic path `projects/P/topics/T`."""
    scheme, sep, rest = url.partition("://")
    if scheme != "pubsub" or not sep or not _TOPIC_RE.fullmatch(rest):
        raise ValueError("a Pub/Sub queue URL is pubsub://projects/PROJECT/topics/TOPIC")
    return rest


class PubSubQueue:
    def __init__(
        self,
        topic: str,
        *,
        publisher: pubsub_v1.PublisherClient | None = None,
        timeout_s: float = PUBLISH_TIMEOUT_S,
    ) -> None:
        self.topic = topic
        self._publisher = publisher
        self._timeout_s = timeout_s
        self._lock = threading.Lock()

    @classmethod
    def from_url(cls, url: str) -> PubSubQueue:
        return cls(parse_url(url))

    def send(self, items: Sequence[WorkItem]) -> None:
        """Publish every item and wait until Pub/Sub has them all. The client batches
        the messages into few requests; a failure is UnavailableError (the jobs stay
        accepted and the reconciler dispatches them)."""
        if not items:
            return
        publisher = self._client()
        futures = [
            publisher.publish(self.topic, encode_work_item(item).encode(), job_id=item.job_id)
            for item in items
        ]
        failed = 0
        first: BaseException | None = None
        for future in futures:
            try:
                future.result(timeout=self._timeout_s)
            except Exception as exc:
                failed += 1
                first = first or exc
        if failed:
            raise UnavailableError(
                f"{failed} of {len(items)} work items could not be queued; "
                "they will be dispatched by the reconciler",
                code="queue_unavailable",
                details={"reason": type(first).__name__},
            )

    def close(self) -> None:
        with self._lock:
            publisher, self._publisher = self._publisher, None
        if publisher is not None:
            publisher.stop()  # flushes anything still batched

    def _client(self) -> Any:
        if self._publisher is None:
            with self._lock:
                if self._publisher is None:
                    from google.cloud import pubsub_v1  # type: ignore[attr-defined]

                    self._publisher = pubsub_v1.PublisherClient()
        return self._publisher


def from_url(url: str) -> PubSubQueue:
    """What core.bootstrap calls for `pubsub://` queue URLs."""
    return PubSubQueue.from_url(url)


__all__ = ["PubSubQueue", "from_url", "parse_url"]
