"""Plant a job item straight into a DynamoDbJobStore's table with a boto3 client alone:
the item layout the store's module docstring describes, but with any document at all."""

from __future__ import annotations

import math
from typing import Any

from core.adapters.stores._common import order_key


def plant_item(
    client: Any,
    table: str,
    *,
    job_id: str,
    tenant: str,
    raw: str,
    created_at: float,
    updated_at: float,
    status: str = "running",
    expires_at: float | None = None,
) -> None:
    item: dict[str, Any] = {
        "pk": {"S": f"J#{job_id}"},
        "v": {"N": "1"},
        "doc": {"S": raw},
        "tn": {"S": tenant},
        "ts": {"S": f"{status}#{tenant}"},
        "ck": {"S": order_key(created_at, job_id)},
    }
    if status not in ("succeeded", "failed", "rejected"):
        item["pq"] = {"S": "P#0"}  # any shard: reconcile queries them all
        item["uk"] = {"S": order_key(updated_at, job_id)}
    if expires_at is not None:
        item["exp"] = {"N": repr(expires_at)}
        item["expires_at"] = {"N": str(math.ceil(expires_at))}
    client.put_item(TableName=table, Item=item)
