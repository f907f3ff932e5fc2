"""What the Table Storage job store writes and how it reads it back: its kinds of entity,
row keys that sort as the port's orders, documents split over properties, index rows and
whether one still describes its job. No SDK here: an entity is a dict.

    PartitionKey   RowKey                what it holds
    j|<job id>     ""                    a job: doc (split), id, v, tenant, st, ca, ua, [exp]
    k|<key>        ""                    a lookup key: job, [exp]
    b|<batch id>   ""                    a batch: doc (split), [exp]
    t|<tenant>     a|<newest first>      index: every job of the tenant: job, v, ca, [exp]
    t|<tenant>     s|<status>|<newest>   index: the tenant's jobs by status: + st
    p|<shard>      <oldest first>        index: non-terminal jobs by updated_at: job, v, ua, [exp]
    l|<shard>      <blob key>            the lease of a manifest blob (_manifests): key, exp

Every entity also names its `kind` (job, key, batch, ix, lease), for people reading the
table. A new kind of entity is a `Kind` with a prefix of its own and its entity here,
and its primitives in the store, made of the store's one-call steps (`_read`,
`_create_unless_live`, `_replace`, `_delete`); if it expires, it joins the sweep's kinds.

- A name holding a character no key may (/ \\ # ?, control characters) is `~` and its
  URL-safe base64 (`key_part`): every name has one key, and no two names share one.
- Row keys sort as the orders the port promises. (value, id) is the float's sortable hex
  (core.adapters.stores._common.sortable) and then the id's UTF-8 as hex, which sorts as
  Python compares the strings; newest first complements every hex digit and closes the
  key with `~`, so a shorter id still sorts after the longer ids it begins. Keyset
  pagination is then a RowKey range.
- An index row holds a pointer (the job id), the facts its listing sorts and filters on,
  the version it was written for (`v`) and the expiry of that job state. Tables has no
  secondary index: the store writes these rows itself (core.adapters.azure.table_store
  says in which order, and why a crash cannot hide a job); `describes` is how a reader
  tells a row that is the job's from one a crash or a lost race left behind.
- Tables has no TTL: every entity that can expire carries `exp`, by which the sweep
  finds it.
- A string property holds 64 KiB (32 Ki UTF-16 units), an entity 1 MiB: a document is
  split over `doc`, `doc1`, ... of CHUNK characters (documents are ASCII, the codec
  escapes the rest), MAX_DOC_BYTES at most (15 chunks, 900 KB as UTF-16, leaving the other
  properties and keys about 140 KiB); the store keeps a longer job's manifest in the blob store.
"""

from __future__ import annotations

import base64
import re
import zlib
from dataclasses import dataclass
from typing import Any

from core.adapters.stores._base import BatchRow, JobRow
from core.adapters.stores._common import SortKey, sortable
from core.domain.job import JobStatus

Entity = dict[str, Any]

CHUNK = 30_000  # characters per string property: 60 000 bytes of UTF-16, under 64 KiB
MAX_DOC_BYTES = 15 * CHUNK
_PLAIN_KEY = re.compile(r"[A-Za-z0-9_.:=@-]{1,256}")
_COMPLEMENT = str.maketrans("0123456789abcdef", "fedcba9876543210")
_TERMINAL = frozenset(s.value for s in JobStatus if s.terminal)
_EVERY = "a|"


# ---------------------------------------------------------------------------- keys
def key_part(name: str) -> str:
    """`name` as legal in a PartitionKey or RowKey: itself when plain, else `~` and its
    URL-safe base64."""
    if _PLAIN_KEY.fullmatch(name):
        return name
    raw = name.encode("utf-8", "surrogatepass")
    return "~" + base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def oldest_first(value: float, item_id: str) -> str:
    """A row key sorting ascending as (value, id)."""
    return sortable(value) + item_id.encode("utf-8", "surrogatepass").hex()


def newest_first(value: float, item_id: str) -> str:
    """A row key sorting ascending as (value, id) sorts descending."""
    return oldest_first(value, item_id).translate(_COMPLEMENT) + "~"


def shard_of(name: str, shards: int) -> int:
    return zlib.crc32(name.encode("utf-8", "surrogatepass")) % shards


@dataclass(frozen=True)
class Kind:
    """One kind of entity: the partitions whose keys begin with `prefix`."""

    prefix: str

    def key(self, name: str) -> str:
        return self.prefix + key_part(name)

    @property
    def span(self) -> tuple[str, str]:
        """(low, high): low <= every PartitionKey of this kind < high ('}' sorts after '|')."""
        return self.prefix, self.prefix[:-1] + "}"


JOBS, KEYS, BATCHES = Kind("j|"), Kind("k|"), Kind("b|")
TENANTS, PENDING = Kind("t|"), Kind("p|")  # index rows
LEASES = Kind("l|")
BUDGETS = Kind("r|")


def listing_bounds(status: str | None, after: SortKey | None) -> tuple[str, str]:
    """(low, high), exclusive: the RowKeys of a tenant's listing (of one status or any),
    newest first, strictly after the sort key `after` when given."""
    prefix = _EVERY if status is None else f"s|{status}|"
    low = prefix + (newest_first(*after) if after is not None else "")
    return low, prefix[:-1] + "}"


def pending_bound(updated_before: float) -> str:
    """The RowKeys of the pending index below this one are of jobs updated before
    `updated_before` (one updated exactly then is `<bound><id hex>`, above it)."""
    return sortable(updated_before)


# ---------------------------------------------------------------------------- values
def expiry(expires_at: float | None) -> Entity:
    return {} if expires_at is None else {"exp": float(expires_at)}


def number(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def exp_of(entity: Entity) -> float | None:
    return number(entity.get("exp"))


def doc_properties(kind: str, record_id: str, doc: str) -> Entity:
    """`doc` split over as many properties as it takes."""
    if len(doc) > MAX_DOC_BYTES:
        raise ValueError(
            f"{kind} {record_id}: its stored form is {len(doc)} characters, more than a "
            f"Table Storage entity holds ({MAX_DOC_BYTES})"
        )
    chunks = [doc[i : i + CHUNK] for i in range(0, len(doc), CHUNK)] or [""]
    props: Entity = {"doc": chunks[0]}
    for n, chunk in enumerate(chunks[1:], start=1):
        props[f"doc{n}"] = chunk
    return props


def stored_doc(entity: Entity) -> object:
    """The document as stored (its parts joined), or whatever is there if it is not
    text: the codec judges."""
    first = entity.get("doc")
    if not isinstance(first, str):
        return first
    parts = [first]
    n = 1
    while isinstance(entity.get(f"doc{n}"), str):
        parts.append(entity[f"doc{n}"])
        n += 1
    return "".join(parts)


# ---------------------------------------------------------------------------- entities
def job_entity(row: JobRow) -> Entity:
    return {
        "PartitionKey": JOBS.key(row.id),
        "RowKey": "",
        "kind": "job",
        "id": row.id,
        "v": row.version,
        "tenant": row.tenant,
        "st": row.status,
        "ca": float(row.created_at),
        "ua": float(row.updated_at),
        **expiry(row.expires_at),
        **doc_properties("job", row.id, row.doc),
    }


def index_rows(row: JobRow, shards: int) -> list[Entity]:
    """The index rows of the job state `row`."""
    common: Entity = {"kind": "ix", "job": row.id, "v": row.version, **expiry(row.expires_at)}
    order = newest_first(row.created_at, row.id)
    listed: Entity = {
        **common,
        "PartitionKey": TENANTS.key(row.tenant),
        "ca": float(row.created_at),
    }
    rows = [
        {**listed, "RowKey": _EVERY + order},
        {**listed, "RowKey": f"s|{row.status}|{order}", "st": row.status},
    ]
    if row.pending:
        partition = PENDING.key(str(shard_of(row.id, shards)))
        rows.append(
            {
                **common,
                "PartitionKey": partition,
                "RowKey": oldest_first(row.updated_at, row.id),
                "ua": float(row.updated_at),
            }
        )
    return rows


def with_expiry(row: Entity, expires_at: float | None) -> Entity:
    """`row` carrying `expires_at` instead of its own expiry."""
    return {**{k: v for k, v in row.items() if k != "exp"}, **expiry(expires_at)}


def key_entity(key: str, job_id: str, expires_at: float | None) -> Entity:
    return {
        "PartitionKey": KEYS.key(key),
        "RowKey": "",
        "kind": "key",
        "job": job_id,
        **expiry(expires_at),
    }


def batch_entity(row: BatchRow) -> Entity:
    return {
        "PartitionKey": BATCHES.key(row.id),
        "RowKey": "",
        "kind": "batch",
        **expiry(row.expires_at),
        **doc_properties("batch", row.id, row.doc),
    }


def budget_entity(bucket: str, doc: str, version: int) -> Entity:
    """A rate budget record (core.domain.rate_budget): no `exp`, it never expires."""
    return {
        "PartitionKey": BUDGETS.key(bucket),
        "RowKey": "",
        "kind": "budget",
        "v": version,
        "doc": doc,
    }


def lease_address(key: str, shards: int) -> tuple[str, str]:
    return LEASES.key(str(shard_of(key, shards))), key_part(key)


def lease_entity(key: str, expires_at: float, shards: int) -> Entity:
    partition, row = lease_address(key, shards)
    return {
        "PartitionKey": partition,
        "RowKey": row,
        "kind": "lease",
        "key": key,
        "exp": float(expires_at),
    }


# ---------------------------------------------------------------------------- index reads
def describes(job: Entity, row: Entity) -> bool:
    """Whether index row `row` is one of the rows of the state job entity `job` holds."""
    partition = str(row.get("PartitionKey", ""))
    if partition.startswith(PENDING.prefix):
        ua = number(job.get("ua"))
        return job.get("st") not in _TERMINAL and ua is not None and ua == number(row.get("ua"))
    tenant, ca = job.get("tenant"), number(job.get("ca"))
    if not isinstance(tenant, str) or TENANTS.key(tenant) != partition:
        return False
    if ca is None or ca != number(row.get("ca")):
        return False
    status = row.get("st")  # only a status listing's row has one
    return status is None or job.get("st") == status


def scan_order(row: Entity) -> SortKey:
    """The sort key of a row that `describes` its job: (updated_at, id) in the pending
    index, (created_at, id) in a listing."""
    field = "ua" if str(row["PartitionKey"]).startswith(PENDING.prefix) else "ca"
    return float(row[field]), str(row["job"])


def superseded(job: Entity, row: Entity) -> bool:
    """Whether `row`, which does not describe `job`, can never come to: the job has
    reached the version the row was written for. A row ahead of the job is a write in
    flight, which may yet land."""
    version, written_for = job.get("v"), row.get("v")
    return type(version) is int and type(written_for) is int and version >= written_for


__all__ = [
    "BATCHES",
    "BUDGETS",
    "CHUNK",
    "JOBS",
    "KEYS",
    "LEASES",
    "MAX_DOC_BYTES",
    "PENDING",
    "TENANTS",
    "Entity",
    "Kind",
    "batch_entity",
    "budget_entity",
    "describes",
    "doc_properties",
    "exp_of",
    "index_rows",
    "job_entity",
    "key_entity",
    "key_part",
    "lease_address",
    "lease_entity",
    "listing_bounds",
    "newest_first",
    "number",
    "oldest_first",
    "pending_bound",
    "scan_order",
    "shard_of",
    "stored_doc",
    "superseded",
    "with_expiry",
]
