"""The payloads of the CloudEvents our functions receive, as Google sends them.

- `google.cloud.pubsub.topic.v1.messagePublished` (Eventarc, Pub/Sub trigger): data is
  `{"message": {"data": base64, "attributes": {...}, "messageId": "...",
  "publishTime": "..."}, "subscription": "projects/P/subscriptions/S"}`.
- `google.cloud.storage.object.v1.finalized` (Eventarc, Cloud Storage trigger): data is
  the object's JSON API resource: `bucket`, `name`, `size` (a decimal *string*, as the
  JSON API writes uint64), `contentType`, `generation`, ...

Parsing only; what to do with them is the caller's business.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

PUBSUB_PUBLISHED = "google.cloud.pubsub.topic.v1.messagePublished"
STORAGE_FINALIZED = "google.cloud.storage.object.v1.finalized"


class BadEventError(ValueError):
    """The event is not shaped as Google sends it: retrying cannot fix it."""


@dataclass(frozen=True)
class PubSubMessage:
    """A Pub/Sub push or CloudEvent message, read from its envelope."""

    message_id: str
    data: bytes
    attributes: dict[str, str] = field(default_factory=dict)
    publish_time: str | None = None
    subscription: str | None = None
    # Pub/Sub's count of this message's deliveries, this one included; sent only where
    # the subscription has a dead-letter policy (ours has: deploy/gcp.sh).
    delivery_attempt: int | None = None


@dataclass(frozen=True)
class StorageObject:
    """A Cloud Storage object event: which object, of what size and type."""

    bucket: str
    name: str
    size: int
    content_type: str | None = None
    generation: str | None = None


def _as_mapping(data: Any) -> Mapping[str, Any]:
    # The SDK decodes a JSON body to a dict; a body it did not recognise as JSON arrives
    # as bytes or str.
    if isinstance(data, bytes | str):
        try:
            data = json.loads(data)
        except ValueError:
            raise BadEventError("event data is not JSON") from None
    if not isinstance(data, Mapping):
        raise BadEventError("event data is not a JSON object")
    return data


def pubsub_message(data: Any) -> PubSubMessage:
    envelope = _as_mapping(data)
    message = envelope.get("message")
    if not isinstance(message, Mapping):
        raise BadEventError("Pub/Sub event has no message")
    raw = message.get("data", "")
    if not isinstance(raw, str):
        raise BadEventError("Pub/Sub message data is not base64 text")
    try:
        body = base64.b64decode(raw, validate=True)
    except (binascii.Error, ValueError):
        raise BadEventError("Pub/Sub message data is not valid base64") from None
    attributes = message.get("attributes") or {}
    if not isinstance(attributes, Mapping):
        attributes = {}
    message_id = message.get("messageId") or message.get("message_id") or ""
    publish_time = message.get("publishTime") or message.get("publish_time")
    subscription = envelope.get("subscription")
    attempt = envelope.get("deliveryAttempt")
    if isinstance(attempt, bool) or not isinstance(attempt, int) or attempt < 1:
        attempt = None  # absent or not a count: as if the subscription had no bound
    return PubSubMessage(
        message_id=str(message_id),
        data=body,
        attributes={str(k): str(v) for k, v in attributes.items()},
        publish_time=str(publish_time) if publish_time else None,
        subscription=str(subscription) if subscription else None,
        delivery_attempt=attempt,
    )


def storage_object(data: Any) -> StorageObject:
    resource = _as_mapping(data)
    bucket, name, size = resource.get("bucket"), resource.get("name"), resource.get("size")
    if not isinstance(bucket, str) or not bucket or not isinstance(name, str) or not name:
        raise BadEventError("storage event has no bucket or object name")
    if isinstance(size, bool) or not isinstance(size, int | str):
        raise BadEventError("storage event has no object size")
    try:
        size_bytes = int(size)
    except ValueError:
        raise BadEventError("storage event object size is not a number") from None
    content_type = resource.get("contentType")
    generation = resource.get("generation")
    return StorageObject(
        bucket=bucket,
        name=name,
        size=size_bytes,
        content_type=content_type if isinstance(content_type, str) else None,
        generation=str(generation) if generation is not None else None,
    )
