"""The wire form of queue messages (SQS bodies, Pub/Sub data), shared by every cloud."""

from __future__ import annotations

import json

from core.domain import json_input
from core.domain.errors import ValidationError
from core.ports import WorkItem

MESSAGE_VERSION = 1


def encode_work_item(item: WorkItem) -> str:
    return json.dumps({"v": MESSAGE_VERSION, "job_id": item.job_id}, separators=(",", ":"))


def decode_work_item(body: str | bytes) -> WorkItem:
    """Raise ValidationError (a poison message: do not retry it) for anything we did not
    write ourselves."""
    try:
        payload = json_input.loads(body)
    except json_input.JsonInputError:
        raise ValidationError("queue message is not JSON", code="bad_message") from None
    if not isinstance(payload, dict) or payload.get("v") != MESSAGE_VERSION:
        raise ValidationError("queue message has an unknown shape", code="bad_message")
    job_id = payload.get("job_id")
    if not isinstance(job_id, str) or not 1 <= len(job_id) <= 128:
        raise ValidationError("queue message has no job_id", code="bad_message")
    return WorkItem(job_id)
