"""Queue on Google Cloud Pub/Sub: `pubsub://projects/P/topics/T`.

Each WorkItem is one message whose data is the core wire format
(core.service.messages); the job id is also an attribute, for filtering and logs. A
push subscription (the Pub/Sub trigger of the worker function, via Eventarc) delivers
each message as a CloudEvent; handlers_gcp acknowledges or lets it be redelivered.

Batching is the client library's: it packs the messages into few Publish requests
(100 messages or 1 MB each by default, within the API's 1000 / 10 MB). Each request has
`limits`' timeout and a retry policy that stops after `limits.retry_s` (the library's
default retries for 600 s); `send` waits at most `limits.worst_case_s` (plus the
batching delay) for them all. What is still transient then is UnavailableError
`store_unavailable`: the jobs stay accepted and the reconciler dispatches them. A
missing topic or a denied permission is raised as it is: a deployment mistake.

The publisher client is built on the first send, not when the adapter is built: the
HTTP function's cold start pays for importing google-cloud-pubsub (~0.5 s) only when a
batch actually needs the queue. With PUBSUB_EMULATOR_HOST set, the client talks to the
emulator without credentials.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from core.adapters.gcp.errors import is_transient, retry_policy
from core.adapters.outages import DEFAULT_LIMITS, CallLimits, unavailable
from core.ports import WorkItem, check_delay
from core.service.messages import encode_work_item

if TYPE_CHECKING:
    # pubsub_v1 ships no type information.
    from google.cloud import pubsub_v1  # type: ignore[attr-defined]

_TOPIC_RE = re.compile(r"projects/[a-z][a-z0-9.:-]{3,62}/topics/[A-Za-z][A-Za-z0-9._~+%-]{2,254}")
_BACKEND = "Pub/Sub"
_BATCHING_S = 1.0  # headroom for the client's batching delay (10 ms) and its threads


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
        limits: CallLimits = DEFAULT_LIMITS,
    ) -> None:
        self.topic = topic
        self._publisher = publisher
        self._limits = limits
        self._lock = threading.Lock()

    @classmethod
    def from_url(cls, url: str) -> PubSubQueue:
        return cls(parse_url(url))

    # Pub/Sub delivers what is published at once: a deferral is the subscription's
    # retry backoff on the nacked message instead (core.platform).
    max_delay_s = 0.0

    def send(self, items: Sequence[WorkItem], *, delay_s: float = 0.0) -> None:
        """Publish every item and wait until Pub/Sub has them all."""
        check_delay(self, delay_s)
        if not items:
            return
        publisher = self._client()
        futures = [
            publisher.publish(self.topic, encode_work_item(item).encode(), job_id=item.job_id)
            for item in items
        ]
        # One deadline for them all: the futures of one send fail together in an outage.
        deadline = time.monotonic() + self._limits.worst_case_s + _BATCHING_S
        failures: list[BaseException] = []
        for future in futures:
            try:
                future.result(timeout=max(0.0, deadline - time.monotonic()))
            except Exception as exc:
                failures.append(exc)
        if not failures:
            return
        permanent = [f for f in failures if not is_transient(f)]
        if permanent:
            raise permanent[0]
        raise unavailable(
            _BACKEND,
            failures[0],
            reason=f"{len(failures)} of {len(items)} not published: {type(failures[0]).__name__}",
        ) from failures[0]

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

                    options = pubsub_v1.types.PublisherOptions(
                        retry=retry_policy(self._limits), timeout=self._limits.per_try_s
                    )
                    self._publisher = pubsub_v1.PublisherClient(publisher_options=options)
        return self._publisher


def from_url(url: str) -> PubSubQueue:
    """What core.bootstrap calls for `pubsub://` queue URLs."""
    return PubSubQueue.from_url(url)


__all__ = ["PubSubQueue", "from_url", "parse_url"]
