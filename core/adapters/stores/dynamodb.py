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
    L#<blob key>  the lease of a manifest kept in the blob store: exp, pq, uk

Why it looks the way it does (what every store decides is core.adapters.stores._base's):
- Every write that depends on what is stored is ONE conditional PutItem: create-if-
  absent is `attribute_not_exists(pk) OR exp <= :now` (an expired item counts as
  absent, as in every store), compare-and-set is `v = :expected AND <live>`. DynamoDB
  evaluates the condition and the write atomically, so racing writers cannot both win.
  A lost create reads the winner from the same call (ReturnValuesOnConditionCheckFailure).
- The job itself is one JSON document (`doc`, the form every store keeps, see _records);
  the other attributes are copies of what indexes sort and filter on.
- Three GSIs, all projecting ALL so a listing never reads the table a second time:
    by_tenant          tn = tenant,             ck = created_at|id  (newest first)
    by_tenant_status   ts = status#tenant,      ck                   (status filter)
    pending            pq = P#<shard>,          uk = updated_at|id  (SPARSE: only
                       non-terminal jobs carry pq/uk, so terminal ones cost nothing)
  `ck` and `uk` are _common's order keys: strings that sort like the (float, id) pair
  they encode, so keyset pagination is a KeyCondition range (`ck < :cursor`), exact even
  for equal times.
- The pending index is sharded because one partition key value would take every
  write of every pending job in the account; reconcile queries all shards and merges.
  It is overloaded (one GSI, two kinds of items) for manifest leases: pq = L#<shard>,
  uk = expires_at|blob key, so the sweep finds expired leases by a key range, without
  a fourth index in the template. Leases carry no TTL attribute: TTL would delete a
  lease before the sweep could delete its blob.
- Expiry: `expires_at` is the table's TTL attribute (integer epoch seconds, rounded
  up, as DynamoDB TTL requires); `exp` keeps the exact float. TTL deletes lazily
  (within days), so every read also filters with `is_live(exp, now)`, and the sweep
  leaves jobs, keys and batches to TTL. TTL never reads `doc`: unreadable items expire too.
- Scans page and cut on the key attributes (`ck`, `uk`), never on the decoded document,
  so an item whose `doc` cannot be decoded is stepped over and named, not fatal.
- GSI reads are eventually consistent (milliseconds behind); `get`, keys and batches
  use consistent reads. A listing may briefly miss a job just created; reconcile may
  see a job that just finished (and then finds nothing to do).
- An item holds at most 400 KB: a job whose document would not fit keeps its manifest
  in the blob store (core.adapters.stores._manifests).
- Every call is bounded by the store's CallLimits (timeouts, attempts); what botocore
  still cannot do is raised as `store_unavailable` (core.adapters.aws.errors).
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from core.adapters.aws import clients
from core.adapters.aws.errors import unavailable_on_outage
from core.adapters.outages import CallLimits, unavailable
from core.adapters.stores._base import (
    BaseJobStore,
    BatchRow,
    JobRow,
    Listing,
    Query,
    ScanRow,
    Seen,
    StoredBatch,
    StoredJob,
    StoredKey,
    Written,
)
from core.adapters.stores._common import (
    STORE_LIMITS,
    is_live,
    order_key,
    parse_order_key,
    parse_store_url,
    sortable,
)
from core.ports import BlobStore, Clock, StoredBudget, Sweep

Item = dict[str, dict[str, Any]]

BACKEND = "DynamoDB"
BY_TENANT = "by_tenant"
BY_TENANT_STATUS = "by_tenant_status"
PENDING = "pending"
TTL_ATTRIBUTE = "expires_at"
DEFAULT_PENDING_SHARDS = 4
# 400 KB an item (names and values), less room for the attributes beside the document.
MAX_DOC_BYTES = 400 * 1024 - 8 * 1024

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


def _stored_job(item: Item) -> StoredJob:
    try:
        created_at: float | None = parse_order_key(item["ck"]["S"])[0]
    except (KeyError, ValueError):
        created_at = None
    version = item.get("v", {}).get("N")
    return StoredJob(
        _job_id(item),
        _doc(item),
        _exp_of(item),
        version=int(version) if isinstance(version, str) and version.isdigit() else None,
        tenant=item.get("tn", {}).get("S"),
        created_at=created_at,
        token=item.get("doc"),  # "this very item": its document attribute, exactly
    )


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
    table, options = parse_store_url(url, "dynamodb", _OPTIONS)
    if "pending_shards" in options and not options["pending_shards"].isdigit():
        raise ValueError("pending_shards must be a positive integer")
    return table, options


class DynamoDbJobStore(BaseJobStore):
    def __init__(
        self,
        table: str,
        *,
        clock: Clock | None = None,
        blobs: BlobStore | None = None,
        endpoint_url: str | None = None,
        region: str | None = None,
        pending_shards: int = DEFAULT_PENDING_SHARDS,
        limits: CallLimits = STORE_LIMITS,
        client: Any = None,
    ) -> None:
        if pending_shards < 1:
            raise ValueError("pending_shards must be at least 1")
        super().__init__(clock=clock, blobs=blobs, max_doc_bytes=MAX_DOC_BYTES)
        self.table = table
        self.pending_partitions = pending_shards
        self._owns_client = client is None
        # Many threads of one warm instance (batch fan-out, the contract's races) share
        # this client: botocore clients are thread-safe, their pool must be big enough.
        self._client = client or clients.client(
            "dynamodb",
            endpoint_url=endpoint_url,
            region=region,
            limits=limits,
            max_pool_connections=50,
        )

    @classmethod
    def from_url(
        cls, url: str, *, clock: Clock | None = None, blobs: BlobStore | None = None
    ) -> DynamoDbJobStore:
        table, options = parse_url(url)
        return cls(
            table,
            clock=clock,
            blobs=blobs,
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
    def _get_job(self, job_id: str) -> StoredJob | None:
        item = self._get(f"J#{job_id}")
        return None if item is None else _stored_job(item)

    def _put_job_if_absent(self, row: JobRow, now: float) -> Written | StoredJob:
        old = self._put_if_absent(self._job_item(row), now)
        return Written() if old is None else _stored_job(old)

    def _put_job_if_version(
        self, row: JobRow, *, expected: int, seen: Seen | None, now: float
    ) -> Written | None:
        done, _ = self._conditional(
            "put_item",
            Item=self._job_item(row),
            ConditionExpression=f"v = :expected AND {_LIVE}",
            ExpressionAttributeValues={":expected": _num(expected), ":now": _num(now)},
        )
        return Written() if done else None

    def _replace_job(self, old: StoredJob, row: JobRow, now: float) -> Written | None:
        values: Item = {":now": _num(now)}
        if old.token is None:
            same = "attribute_not_exists(doc)"
        else:
            same, values[":old"] = "doc = :old", old.token
        done, _ = self._conditional(
            "put_item",
            Item=self._job_item(row),
            ConditionExpression=f"attribute_exists(pk) AND {same} AND {_LIVE}",
            ExpressionAttributeValues=values,
        )
        return Written() if done else None

    def _query_page(
        self, query: Query, resume: object | None, limit: int, now: float
    ) -> tuple[Sequence[ScanRow], object | None]:
        if isinstance(query, Listing):
            order = "ck"
            if query.status is None:
                index, condition, hash_value = BY_TENANT, "tn = :h", query.tenant
            else:
                index, condition = BY_TENANT_STATUS, "ts = :h"
                hash_value = f"{query.status}#{query.tenant}"
            values: Item = {":h": {"S": hash_value}}
            if query.after is not None:
                condition += " AND ck < :after"
                values[":after"] = {"S": order_key(*query.after)}
            forward = False
        else:
            # `uk` of a job updated exactly at the bound is "<bound>|id", greater than the
            # bare "<bound>": so `uk < :bound` is updated_at < updated_before.
            order, index, condition, forward = "uk", PENDING, "pq = :h AND uk < :bound", True
            values = {
                ":h": {"S": f"P#{query.partition}"},
                ":bound": {"S": sortable(query.updated_before)},
            }
        items, last = self._query(index, condition, values, forward, resume, limit)
        rows = [
            ScanRow(_job_id(item), _doc(item), _exp_of(item), parse_order_key(item[order]["S"]))
            for item in items
        ]
        return rows, last

    # ------------------------------------------------------------------ lookup keys
    def _claim_key(self, key: str, job_id: str, expires_at: float | None, now: float) -> str:
        item: Item = {"pk": {"S": f"K#{key}"}, "job": {"S": job_id}, **_expiry(expires_at)}
        old = self._put_if_absent(item, now)
        return job_id if old is None else str(old["job"]["S"])

    def _get_key(self, key: str) -> StoredKey | None:
        item = self._get(f"K#{key}")
        return None if item is None else StoredKey(str(item["job"]["S"]), _exp_of(item))

    def _release_key(self, key: str, job_id: str) -> None:
        self._conditional(
            "delete_item",
            Key={"pk": {"S": f"K#{key}"}},
            ConditionExpression="job = :job",
            ExpressionAttributeValues={":job": {"S": job_id}},
        )

    # ------------------------------------------------------------------ batches
    def _put_batch_if_absent(self, row: BatchRow, now: float) -> StoredBatch | None:
        item: Item = {"pk": {"S": f"B#{row.id}"}, "doc": {"S": row.doc}, **_expiry(row.expires_at)}
        old = self._put_if_absent(item, now)
        return None if old is None else StoredBatch(_doc(old), _exp_of(old))

    def _get_batch(self, batch_id: str) -> StoredBatch | None:
        item = self._get(f"B#{batch_id}")
        return None if item is None else StoredBatch(_doc(item), _exp_of(item))

    # ------------------------------------------------------------------ budgets
    # One item per ImgGo key, `R#<bucket>`, outside every index and without `exp`: no
    # listing, scan or sweep ever meets it, and TTL never removes it.
    def _get_budget(self, bucket: str) -> StoredBudget | None:
        item = self._get(f"R#{bucket}")
        if item is None:
            return None
        return StoredBudget(str(item["doc"]["S"]), int(item["v"]["N"]))

    def _put_budget_if_version(self, bucket: str, doc: str, expected: int) -> bool:
        item: Item = {"pk": {"S": f"R#{bucket}"}, "v": _num(expected + 1), "doc": {"S": doc}}
        if expected == 0:
            done, _ = self._conditional(
                "put_item", Item=item, ConditionExpression="attribute_not_exists(pk)"
            )
        else:
            done, _ = self._conditional(
                "put_item",
                Item=item,
                ConditionExpression="v = :v",
                ExpressionAttributeValues={":v": _num(expected)},
            )
        return done

    # ------------------------------------------------------------------ leases
    def _put_lease(self, key: str, expires_at: float) -> None:
        shard = zlib.crc32(key.encode()) % self.pending_partitions
        item: Item = {
            "pk": {"S": f"L#{key}"},
            "exp": _num(expires_at),
            "pq": {"S": f"L#{shard}"},
            "uk": {"S": order_key(expires_at, key)},
        }
        self._call("put_item", TableName=self.table, Item=item)

    def _expired_leases(self, now: float, limit: int) -> list[str]:
        # "<now>|key" < "<now>~" ('|' sorts before '~'): a lease expiring at `now` is in.
        bound = {"S": f"{sortable(now)}~"}
        keys: list[str] = []
        for shard in range(self.pending_partitions):
            resume: object | None = None
            while len(keys) < limit:
                items, resume = self._query(
                    PENDING,
                    "pq = :h AND uk < :bound",
                    {":h": {"S": f"L#{shard}"}, ":bound": bound},
                    True,
                    resume,
                    limit - len(keys),
                )
                keys += (str(item["pk"]["S"]).removeprefix("L#") for item in items)
                if resume is None:
                    break
        return keys[:limit]

    def _drop_lease(self, key: str) -> None:
        self._call("delete_item", TableName=self.table, Key={"pk": {"S": f"L#{key}"}})

    # ------------------------------------------------------------------ housekeeping
    def _delete_expired(self, now: float) -> Sweep:
        """DynamoDB's TTL deletes expired items on its own; reads already hide them."""
        return Sweep()

    def ping(self) -> None:
        # GetItem, not DescribeTable: it needs no extra IAM permission.
        self._call("get_item", TableName=self.table, Key={"pk": {"S": "ping"}})

    def close(self) -> None:
        if self._owns_client:
            self._client.close()

    # ------------------------------------------------------------------ plumbing
    def _call(self, operation: str, **params: Any) -> dict[str, Any]:
        """One API call; a transient failure (after the client's bounded attempts) is
        `store_unavailable`."""
        with unavailable_on_outage(BACKEND):
            response: dict[str, Any] = getattr(self._client, operation)(**params)
        return response

    def _conditional(self, operation: str, **params: Any) -> tuple[bool, dict[str, Any]]:
        """A conditional write: (True, its response), or (False, the failure's response)
        when its condition did not hold and nothing was written."""
        try:
            return True, self._call(operation, TableName=self.table, **params)
        except clients.ClientError as exc:
            if clients.error_code(exc) != _CONDITION_FAILED:
                raise
            return False, dict(exc.response)

    def _job_item(self, row: JobRow) -> Item:
        item: Item = {
            "pk": {"S": f"J#{row.id}"},
            "v": _num(row.version),
            "doc": {"S": row.doc},
            "tn": {"S": row.tenant},
            "ts": {"S": f"{row.status}#{row.tenant}"},
            "ck": {"S": order_key(row.created_at, row.id)},
            **_expiry(row.expires_at),
        }
        if row.pending:  # the sparse pending index holds only these
            shard = zlib.crc32(row.id.encode()) % self.pending_partitions
            item["pq"] = {"S": f"P#{shard}"}
            item["uk"] = {"S": order_key(row.updated_at, row.id)}
        return item

    def _put_if_absent(self, item: Item, now: float) -> Item | None:
        """Write `item` unless a live item has its key. None when written, else the live
        item that is there (read atomically with the failed condition)."""
        for _ in range(16):
            done, failure = self._conditional(
                "put_item",
                Item=item,
                ConditionExpression=_NOT_PRESENT,
                ExpressionAttributeValues={":now": _num(now)},
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
            if done:
                return None
            returned = failure.get("Item")
            old: Item | None = returned if isinstance(returned, dict) else None
            if old is None:  # an emulator without ALL_OLD: read it
                old = self._get(item["pk"]["S"])
            if old is not None and is_live(_exp_of(old), now):
                return old
            # It was deleted, or expired, between the failed write and the read: again.
        raise unavailable(BACKEND)  # contended beyond reason: the caller retries later

    def _get(self, pk: str) -> Item | None:
        found: Item | None = self._call(
            "get_item", TableName=self.table, Key={"pk": {"S": pk}}, ConsistentRead=True
        ).get("Item")
        return found

    def _query(
        self,
        index: str,
        condition: str,
        values: Item,
        forward: bool,
        resume: object | None,
        limit: int,
    ) -> tuple[list[Item], object | None]:
        """One page of a GSI query: its items, and where the next page starts (None: done)."""
        request: dict[str, Any] = {
            "TableName": self.table,
            "IndexName": index,
            "KeyConditionExpression": condition,
            "ExpressionAttributeValues": values,
            "ScanIndexForward": forward,
            "Limit": limit,
        }
        if resume is not None:
            request["ExclusiveStartKey"] = resume
        response = self._call("query", **request)
        return list(response.get("Items", [])), response.get("LastEvaluatedKey") or None


__all__ = ["MAX_DOC_BYTES", "DynamoDbJobStore", "parse_url", "table_definition"]
