"""The JobStore on DynamoDB: one table, single-table design, conditional writes only.

    dynamodb://TABLE[?endpoint=URL&region=NAME&pending_shards=N]

`endpoint` and `region` are for local stacks (moto, DynamoDB Local); on Lambda leave
them out: the region comes from AWS_REGION, and botocore also honours the standard
AWS_ENDPOINT_URL_DYNAMODB / AWS_ENDPOINT_URL variables. `pending_shards` (default 4)
spreads the pending-jobs index over N partition keys (see below).

Items (attribute `pk` is the only table key):

    J#<job id>    a job:    doc, v (version), tn, ts, ck, [pq, uk], [exp, expires_at]
    K#<key>       a lookup key (idempotency, dedupe, ImgGo id): job, [exp, expires_at]
    B#<batch id>  a batch:  doc, [exp, expires_at]

Why it looks the way it does:
- Every write that depends on what is stored is ONE conditional PutItem: create-if-
  absent is `attribute_not_exists(pk) OR exp <= :now` (an expired item counts as
  absent, as in every store), compare-and-set is `v = :expected AND <live>`. DynamoDB
  evaluates the condition and the write atomically, so racing writers cannot both win.
  A lost create reads the winner from the same call (ReturnValuesOnConditionCheckFailure).
- The job itself is one JSON document (`doc`, the form every store keeps, see _common);
  the other attributes are copies of what indexes sort and filter on.
- Three GSIs, all projecting ALL so a listing never reads the table a second time:
    by_tenant          tn = tenant,             ck = created_at|id  (newest first)
    by_tenant_status   ts = status#tenant,      ck                   (status filter)
    pending            pq = P#<shard>,          uk = updated_at|id  (SPARSE: only
                       non-terminal jobs carry pq/uk, so terminal ones cost nothing)
  `ck` and `uk` are strings that sort like the (float, id) pair they encode: the
  float's IEEE-754 bits, sign-flipped, as 16 hex digits, then the id. So keyset
  pagination is a KeyCondition range (`ck < :cursor`), exact even for equal times.
- The pending index is sharded because one partition key value would take every
  write of every pending job in the account; reconcile queries all shards and merges.
- Expiry: `expires_at` is the table's TTL attribute (integer epoch seconds, rounded
  up, as DynamoDB TTL requires); `exp` keeps the exact float. TTL deletes lazily
  (within days), so every read also filters with `is_live(exp, now)` and
  `delete_expired` has nothing to do. TTL never reads `doc`: unreadable items expire too.
- Scans page and cut on the key attributes (`ck`, `uk`), never on the decoded document,
  so an item whose `doc` cannot be decoded is stepped over and named, not fatal.
- GSI reads are eventually consistent (milliseconds behind); `get`, keys and batches
  use consistent reads. A listing may briefly miss a job just created; reconcile may
  see a job that just finished (and then finds nothing to do).
- Item size limit is 400 KB: a manifest must fit in that.
"""

from __future__ import annotations

import math
import struct
import zlib
from decimal import Decimal
from typing import Any
from urllib.parse import unquote, urlsplit

from core.adapters.aws import clients
from core.adapters.clock import SystemClock
from core.adapters.stores._common import check_limit, decode_cursor, encode_cursor, is_live
from core.adapters.stores._records import (
    dump_batch,
    dump_job,
    is_readable_job,
    load_batch,
    load_job,
    page_of,
    read_row,
    unreadable_stand_in,
)
from core.domain.job import Job, JobStatus
from core.ports import Batch, Clock, Page, Sweep

Item = dict[str, dict[str, Any]]

BY_TENANT = "by_tenant"
BY_TENANT_STATUS = "by_tenant_status"
PENDING = "pending"
TTL_ATTRIBUTE = "expires_at"
DEFAULT_PENDING_SHARDS = 4

_OPTIONS = {
    "endpoint": "endpoint URL, e.g. http://127.0.0.1:8000 for a local emulator",
    "region": "AWS region, default from AWS_REGION",
    "pending_shards": "partition keys of the pending index, default 4",
}
_NOT_PRESENT = "attribute_not_exists(pk) OR exp <= :now"
_LIVE = "(attribute_not_exists(exp) OR exp > :now)"
_CONDITION_FAILED = "ConditionalCheckFailedException"


# ---------------------------------------------------------------------------- encoding
def _num(value: float | int) -> dict[str, str]:
    """A DynamoDB number. repr() is the shortest text that reads back as the same float,
    and Decimal formatting keeps it out of exponent notation."""
    if isinstance(value, int):
        return {"N": str(value)}
    return {"N": format(Decimal(repr(float(value))), "f")}


def _sortable(value: float) -> str:
    """16 hex digits that sort as strings exactly as the floats sort as numbers."""
    value += 0.0  # -0.0 == 0.0 as numbers, so they must encode alike
    bits: int = struct.unpack(">Q", struct.pack(">d", value))[0]
    bits = bits ^ 0xFFFF_FFFF_FFFF_FFFF if bits >> 63 else bits | (1 << 63)
    return f"{bits:016x}"


def _unsortable(key: str) -> float:
    """The inverse of _sortable."""
    bits = int(key, 16)
    bits = bits ^ (1 << 63) if bits >> 63 else bits ^ 0xFFFF_FFFF_FFFF_FFFF
    value: float = struct.unpack(">d", struct.pack(">Q", bits))[0]
    return value


def order_key(value: float, item_id: str) -> str:
    """(value, id) as one string key: equal values fall back to comparing ids."""
    return f"{_sortable(value)}|{item_id}"


def parse_order_key(key: str) -> tuple[float, str]:
    """The inverse of order_key (the hex part holds no '|'; the id may)."""
    value, _, item_id = key.partition("|")
    return _unsortable(value), item_id


def _expiry(expires_at: float | None) -> Item:
    if expires_at is None:
        return {}
    return {"exp": _num(expires_at), TTL_ATTRIBUTE: _num(math.ceil(expires_at))}


def _exp_of(item: Item) -> float | None:
    exp = item.get("exp")
    return None if exp is None else float(exp["N"])


def _doc(item: Item) -> object:
    """The stored document as it is (None if absent or not a string): the codec judges."""
    return item.get("doc", {}).get("S")


def _job_id(item: Item) -> str:
    return str(item["pk"]["S"]).removeprefix("J#")


def table_definition(name: str) -> dict[str, Any]:
    """The CreateTable request for a store table (template.yaml declares the same)."""

    def gsi(index: str, hash_key: str, range_key: str) -> dict[str, Any]:
        return {
            "IndexName": index,
            "KeySchema": [
                {"AttributeName": hash_key, "KeyType": "HASH"},
                {"AttributeName": range_key, "KeyType": "RANGE"},
            ],
            "Projection": {"ProjectionType": "ALL"},
        }

    return {
        "TableName": name,
        "BillingMode": "PAY_PER_REQUEST",
        "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
        "AttributeDefinitions": [
            {"AttributeName": attr, "AttributeType": "S"}
            for attr in ("pk", "tn", "ts", "ck", "pq", "uk")
        ],
        "GlobalSecondaryIndexes": [
            gsi(BY_TENANT, "tn", "ck"),
            gsi(BY_TENANT_STATUS, "ts", "ck"),
            gsi(PENDING, "pq", "uk"),
        ],
    }


def parse_url(url: str) -> tuple[str, dict[str, str]]:
    """`dynamodb://table?options` -> (table, options)."""
    parts = urlsplit(url)
    if parts.scheme != "dynamodb":
        raise ValueError(f"not a dynamodb URL: {parts.scheme}://")
    table = unquote(parts.netloc)
    if not table or parts.path not in ("", "/") or parts.fragment:
        raise ValueError("a dynamodb URL names one table: dynamodb://table-name[?options]")
    options = clients.parse_options(parts.query, _OPTIONS)
    if "pending_shards" in options and not options["pending_shards"].isdigit():
        raise ValueError("pending_shards must be a positive integer")
    return table, options


class DynamoDbJobStore:
    def __init__(
        self,
        table: str,
        *,
        clock: Clock | None = None,
        endpoint_url: str | None = None,
        region: str | None = None,
        pending_shards: int = DEFAULT_PENDING_SHARDS,
        client: Any = None,
    ) -> None:
        if pending_shards < 1:
            raise ValueError("pending_shards must be at least 1")
        self.table = table
        self._clock: Clock = clock or SystemClock()
        self._shards = pending_shards
        self._owns_client = client is None
        # Many threads of one warm instance (batch fan-out, the contract's races) share
        # this client: botocore clients are thread-safe, their pool must be big enough.
        self._client = client or clients.client(
            "dynamodb", endpoint_url=endpoint_url, region=region, max_pool_connections=50
        )

    @classmethod
    def from_url(cls, url: str, *, clock: Clock | None = None) -> DynamoDbJobStore:
        table, options = parse_url(url)
        return cls(
            table,
            clock=clock,
            endpoint_url=options.get("endpoint"),
            region=options.get("region"),
            pending_shards=int(options.get("pending_shards", DEFAULT_PENDING_SHARDS)),
        )

    @property
    def client(self) -> Any:
        return self._client

    def create_table(self) -> None:
        """Create the table with its indexes and TTL (tests and local stacks; on AWS the
        template owns the table)."""
        self._client.create_table(**table_definition(self.table))
        self._client.get_waiter("table_exists").wait(
            TableName=self.table, WaiterConfig={"Delay": 1, "MaxAttempts": 60}
        )
        self._client.update_time_to_live(
            TableName=self.table,
            TimeToLiveSpecification={"Enabled": True, "AttributeName": TTL_ATTRIBUTE},
        )

    # ------------------------------------------------------------------ jobs
    def create(self, job: Job) -> tuple[Job, bool]:
        stored = job.replace(version=1)
        item = self._job_item(stored)
        old = self._put_if_absent(item)
        if old is None:
            return load_job(job.id, item["doc"]["S"]), True
        return load_job(job.id, _doc(old)), False

    def get(self, job_id: str) -> Job | None:
        item = self._get(f"J#{job_id}", self._clock.now())
        return None if item is None else load_job(job_id, _doc(item))

    def compare_and_set(self, job: Job) -> Job | None:
        written = job.replace(version=job.version + 1)
        item = self._job_item(written)
        try:
            self._client.put_item(
                TableName=self.table,
                Item=item,
                ConditionExpression=f"v = :expected AND {_LIVE}",
                ExpressionAttributeValues={
                    ":expected": _num(job.version),
                    ":now": _num(self._clock.now()),
                },
            )
        except clients.ClientError as exc:
            if clients.error_code(exc) == _CONDITION_FAILED:
                return None
            raise
        return load_job(job.id, item["doc"]["S"])

    def fail_unreadable(self, job_id: str, *, now: float) -> Job | None:
        item = self._get(f"J#{job_id}", now)
        if item is None or is_readable_job(job_id, _doc(item)):
            return None
        try:
            created_at: float | None = parse_order_key(item["ck"]["S"])[0]
        except (KeyError, ValueError):
            created_at = None
        version = item.get("v", {}).get("N")
        failed = unreadable_stand_in(
            job_id,
            tenant=item.get("tn", {}).get("S"),
            created_at=created_at,
            expires_at=_exp_of(item),
            version=int(version) if isinstance(version, str) and version.isdigit() else None,
            now=now,
        )
        new = self._job_item(failed)
        # Only over the very item read above: any good write since has changed `doc`.
        values: Item = {":now": _num(now)}
        if "doc" in item:
            same, values[":old"] = "doc = :old", item["doc"]
        else:
            same = "attribute_not_exists(doc)"
        try:
            self._client.put_item(
                TableName=self.table,
                Item=new,
                ConditionExpression=f"attribute_exists(pk) AND {same} AND {_LIVE}",
                ExpressionAttributeValues=values,
            )
        except clients.ClientError as exc:
            if clients.error_code(exc) == _CONDITION_FAILED:
                return None
            raise
        return load_job(job_id, new["doc"]["S"])

    def list_jobs(
        self,
        tenant: str,
        *,
        status: JobStatus | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> Page:
        check_limit(limit)
        after = decode_cursor(cursor) if cursor is not None else None
        if status is None:
            index, hash_name, hash_value = BY_TENANT, "tn", tenant
        else:
            index, hash_name, hash_value = BY_TENANT_STATUS, "ts", f"{status.value}#{tenant}"
        condition = f"{hash_name} = :h"
        values: Item = {":h": {"S": hash_value}}
        if after is not None:
            condition += " AND ck < :after"
            values[":after"] = {"S": order_key(*after)}
        # One more than asked tells whether another page exists.
        items = self._query_live(index, condition, values, forward=False, want=limit + 1)
        page = items[:limit]
        more = len(items) > limit
        # From the key, not the document: the cursor may stop on an unreadable item.
        next_cursor = encode_cursor(parse_order_key(page[-1]["ck"]["S"])) if more else None
        return page_of(((_job_id(item), _doc(item)) for item in page), next_cursor)

    def list_pending(self, *, updated_before: float, limit: int) -> Page:
        check_limit(limit)
        # `uk` of a job updated exactly at the bound is "<bound>|id", greater than the
        # bare "<bound>": so `uk < :bound` is updated_at < updated_before.
        bound = {"S": _sortable(updated_before)}
        merged: list[Item] = []
        for shard in range(self._shards):
            merged += self._query_live(
                PENDING,
                "pq = :h AND uk < :bound",
                {":h": {"S": f"P#{shard}"}, ":bound": bound},
                forward=True,
                want=limit,
            )
        merged.sort(key=lambda item: str(item["uk"]["S"]))  # sorts as (updated_at, id)
        jobs: list[Job] = []
        unreadable: list[str] = []
        for item in merged:
            if len(jobs) + len(unreadable) == limit:
                break
            job_id = _job_id(item)
            job = read_row(job_id, _doc(item))
            if job is None:
                unreadable.append(job_id)
            elif not job.terminal:  # a GSI may lag a moment
                jobs.append(job)
        return Page(jobs, None, tuple(unreadable))

    # ------------------------------------------------------------------ lookup keys
    def claim_key(self, key: str, job_id: str, *, expires_at: float | None, now: float) -> str:
        item: Item = {"pk": {"S": f"K#{key}"}, "job": {"S": job_id}, **_expiry(expires_at)}
        old = self._put_if_absent(item, now=now)
        return job_id if old is None else str(old["job"]["S"])

    def lookup_key(self, key: str, *, now: float) -> str | None:
        item = self._get(f"K#{key}", now)
        return None if item is None else str(item["job"]["S"])

    def release_key(self, key: str, job_id: str) -> None:
        try:
            self._client.delete_item(
                TableName=self.table,
                Key={"pk": {"S": f"K#{key}"}},
                ConditionExpression="job = :job",
                ExpressionAttributeValues={":job": {"S": job_id}},
            )
        except clients.ClientError as exc:
            if clients.error_code(exc) != _CONDITION_FAILED:
                raise

    # ------------------------------------------------------------------ batches
    def create_batch(self, batch: Batch) -> tuple[Batch, bool]:
        item: Item = {
            "pk": {"S": f"B#{batch.id}"},
            "doc": {"S": dump_batch(batch)},
            **_expiry(batch.expires_at),
        }
        old = self._put_if_absent(item)
        if old is None:
            return load_batch(batch.id, item["doc"]["S"]), True
        return load_batch(batch.id, _doc(old)), False

    def get_batch(self, batch_id: str) -> Batch | None:
        item = self._get(f"B#{batch_id}", self._clock.now())
        return None if item is None else load_batch(batch_id, _doc(item))

    # ------------------------------------------------------------------ housekeeping
    def delete_expired(self, *, now: float) -> Sweep:
        """DynamoDB's TTL deletes expired items on its own; reads already hide them."""
        return Sweep()

    def ping(self) -> None:
        # GetItem, not DescribeTable: it needs no extra IAM permission.
        self._client.get_item(TableName=self.table, Key={"pk": {"S": "ping"}})

    def close(self) -> None:
        if self._owns_client:
            self._client.close()

    # ------------------------------------------------------------------ plumbing
    def _job_item(self, job: Job) -> Item:
        item: Item = {
            "pk": {"S": f"J#{job.id}"},
            "v": _num(job.version),
            "doc": {"S": dump_job(job)},
            "tn": {"S": job.tenant},
            "ts": {"S": f"{job.status.value}#{job.tenant}"},
            "ck": {"S": order_key(job.created_at, job.id)},
            **_expiry(job.expires_at),
        }
        if not job.terminal:  # the sparse pending index holds only these
            shard = zlib.crc32(job.id.encode()) % self._shards
            item["pq"] = {"S": f"P#{shard}"}
            item["uk"] = {"S": order_key(job.updated_at, job.id)}
        return item

    def _put_if_absent(self, item: Item, *, now: float | None = None) -> Item | None:
        """Write `item` unless a live item has its key. None when written, else the live
        item that is there (read atomically with the failed condition)."""
        when = self._clock.now() if now is None else now
        for _ in range(16):
            try:
                self._client.put_item(
                    TableName=self.table,
                    Item=item,
                    ConditionExpression=_NOT_PRESENT,
                    ExpressionAttributeValues={":now": _num(when)},
                    ReturnValuesOnConditionCheckFailure="ALL_OLD",
                )
                return None
            except clients.ClientError as exc:
                if clients.error_code(exc) != _CONDITION_FAILED:
                    raise
                returned = exc.response.get("Item")
                old: Item | None = returned if isinstance(returned, dict) else None
                if old is None:  # an emulator without ALL_OLD: read it
                    old = self._get(item["pk"]["S"], when)
                if old is not None:
                    return old
                # It was deleted between the failed write and the read: try again.
        raise RuntimeError(f"{item['pk']['S']} kept changing under a conditional write")

    def _get(self, pk: str, now: float) -> Item | None:
        found: Item | None = self._client.get_item(
            TableName=self.table, Key={"pk": {"S": pk}}, ConsistentRead=True
        ).get("Item")
        if found is None or not is_live(_exp_of(found), now):
            return None
        return found

    def _query_live(
        self, index: str, condition: str, values: Item, *, forward: bool, want: int
    ) -> list[Item]:
        """Up to `want` live job items from a GSI query, following pages past expired ones.
        Not decoded: the caller decodes each on its own."""
        now = self._clock.now()
        items: list[Item] = []
        request: dict[str, Any] = {
            "TableName": self.table,
            "IndexName": index,
            "KeyConditionExpression": condition,
            "ExpressionAttributeValues": values,
            "ScanIndexForward": forward,
        }
        while len(items) < want:
            # Ask for what is still missing; expired items (rare) cost another round.
            response = self._client.query(**request, Limit=want - len(items))
            items += (item for item in response.get("Items", []) if is_live(_exp_of(item), now))
            last = response.get("LastEvaluatedKey")
            if not last:
                break
            request["ExclusiveStartKey"] = last
        return items


__all__ = ["DynamoDbJobStore", "order_key", "parse_order_key", "parse_url", "table_definition"]
