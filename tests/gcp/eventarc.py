"""What Eventarc does between Google's services and our functions, played by the tests:
pull from a Pub/Sub subscription, wrap each message (or a GCS object) in a CloudEvent of
the exact Google type and shape, POST it in binary or structured content mode, and ack
on a 2xx / nack otherwise, so Pub/Sub redelivers."""

from __future__ import annotations

import base64
import time
import uuid
from datetime import UTC, datetime
from typing import Any, Literal

import httpx
from cloudevents.conversion import to_binary, to_structured
from cloudevents.http import CloudEvent

from handlers_gcp.events import PUBSUB_PUBLISHED, STORAGE_FINALIZED
from tests.gcp.emulators import PROJECT

Mode = Literal["binary", "structured"]


def pubsub_event(
    topic: str,
    data: bytes,
    *,
    message_id: str | None = None,
    attributes: dict[str, str] | None = None,
    subscription: str | None = None,
    publish_time: str | None = None,
    traceparent: str | None = None,
    delivery_attempt: int | None = None,
) -> CloudEvent:
    message_id = message_id or str(uuid.uuid4().int % 10**16)
    publish_time = publish_time or datetime.now(UTC).isoformat().replace("+00:00", "Z")
    attrs: dict[str, Any] = {
        "id": message_id,
        "type": PUBSUB_PUBLISHED,
        "source": f"//pubsub.googleapis.com/{topic}",
        "specversion": "1.0",
        "time": publish_time,
        "datacontenttype": "application/json",
    }
    if traceparent:
        attrs["traceparent"] = traceparent
    payload = {
        "message": {
            "data": base64.b64encode(data).decode(),
            "attributes": attributes or {},
            "messageId": message_id,
            "message_id": message_id,
            "publishTime": publish_time,
            "publish_time": publish_time,
        },
        "subscription": subscription or f"projects/{PROJECT}/subscriptions/eventarc-test",
    }
    if delivery_attempt is not None:  # Pub/Sub sends it where there is a dead-letter policy
        payload["deliveryAttempt"] = delivery_attempt
    return CloudEvent(attrs, payload)


def storage_event(resource: dict[str, Any]) -> CloudEvent:
    bucket, name = resource["bucket"], resource["name"]
    attrs = {
        "id": str(uuid.uuid4().int % 10**16),
        "type": STORAGE_FINALIZED,
        "source": f"//storage.googleapis.com/projects/_/buckets/{bucket}",
        "subject": f"objects/{name}",
        "specversion": "1.0",
        "time": resource.get("updated") or datetime.now(UTC).isoformat(),
        "datacontenttype": "application/json",
    }
    return CloudEvent(attrs, resource)


def deliver(url: str, event: CloudEvent, mode: Mode = "binary") -> httpx.Response:
    headers, body = to_binary(event) if mode == "binary" else to_structured(event)
    return httpx.post(url, headers=dict(headers), content=body, timeout=30)


def pull_and_deliver(
    subscriber: Any,
    subscription_path: str,
    topic: str,
    url: str,
    *,
    expect: int,
    timeout: float = 20.0,
    modes: tuple[Mode, ...] = ("binary", "structured"),
    delivery_attempt: int | None = None,
) -> list[tuple[bytes, int]]:
    """Pull `expect` messages and push each to the function; (data, HTTP status) each.
    `delivery_attempt`: the count to push them with (the emulator keeps none: it has no
    dead-letter policies)."""
    outcomes: list[tuple[bytes, int]] = []
    deadline = time.monotonic() + timeout
    while len(outcomes) < expect and time.monotonic() < deadline:
        response = subscriber.pull(
            subscription=subscription_path, max_messages=expect - len(outcomes), timeout=5
        )
        for received in response.received_messages:
            msg = received.message
            event = pubsub_event(
                topic,
                bytes(msg.data),
                message_id=msg.message_id,
                attributes=dict(msg.attributes),
                subscription=subscription_path,
                publish_time=msg.publish_time.isoformat().replace("+00:00", "Z"),
                delivery_attempt=delivery_attempt,
            )
            status = deliver(url, event, modes[len(outcomes) % len(modes)]).status_code
            if 200 <= status < 300:
                subscriber.acknowledge(subscription=subscription_path, ack_ids=[received.ack_id])
            else:  # nack: Pub/Sub redelivers it at once
                subscriber.modify_ack_deadline(
                    subscription=subscription_path,
                    ack_ids=[received.ack_id],
                    ack_deadline_seconds=0,
                )
            outcomes.append((bytes(msg.data), status))
    assert len(outcomes) == expect, f"pulled {len(outcomes)} of {expect} messages"
    return outcomes
