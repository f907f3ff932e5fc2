"""The JobStore on Azure Table Storage: one table, conditional writes on ETags.

    azuretables://TABLE[?pending_shards=N]

The account comes from core.adapters.azure.clients (a connection string for Azurite,
else the app's managed identity). `pending_shards` (default 4) spreads the pending scan
over N partitions.

Entities (PartitionKey | RowKey; `~`-prefixed keys are the base64 of names that hold
characters a key may not):

    j|<job id>    | ""                   the job: doc (chunked), v, tenant, st, ca, ua, [exp]
    k|<key>       | ""                   a lookup key: job, [exp]
    b|<batch id>  | ""                   a batch: doc (chunked), [exp]
    t|<tenant>    | a|<newest-first key> index: every job of the tenant (job, ca, v, [exp])
    t|<tenant>    | s|<status>|<key>     index: the tenant's jobs by status (+ st)
    p|<shard>     | <oldest-first key>   index: non-terminal jobs by updated_at (+ ua)

Why it looks the way it does:
- The job entity is the truth; each write that depends on what is stored is one
  conditional operation on it: create-if-absent is `create_entity` (409 when it exists;
  an expired one is then replaced If-Match its ETag, as if swept), compare-and-set is a
  REPLACE If-Match the ETag of the version the caller read (412 when someone wrote
  since). Table Storage evaluates the condition and the write atomically.
- Tables has no secondary indexes and no transaction across partitions, so the listing,
  the status listing and the cross-tenant pending scan are index entities in other
  partitions, holding only a pointer (the job id) and the facts they sort or filter on.
  WHICH WRITE GOES FIRST: the index entities for the state about to be written are
  upserted BEFORE the job entity is written. A crash between the two leaves an index row
  pointing at a state the job does not have (never a job state without its index row),
  and readers tolerate that: every index row is checked against the job entity it
  points at (one point read each), and one that does not match is skipped. So a crash
  can add a dangling row, never hide a job.
- Dangling rows are pruned by the readers that meet them and by the sweep, with a delete
  If-Match the row's ETag, and only when the job's version has reached the version the
  row was written for (the `v` it carries): a row written for a write still in flight
  (version ahead of the job's) is left alone, and a writer re-upserting a row changes
  its ETag, so a prune can never remove a row a write just relied on.
- Row keys sort as the orders the port promises: the float's IEEE-754 bits as 16 hex
  digits, sign-flipped (the DynamoDB store's trick), then the id's UTF-8 as hex; for
  newest first every hex digit is complemented and a `~` closes the key, so a shorter id
  still sorts after the longer ids it prefixes. Keyset pagination is then `RowKey gt`,
  the cursor is the shared opaque one (core.adapters.stores._common), and the SDK's own
  continuation tokens are followed inside one call.
- Tables has no TTL: reads hide what expired (`is_live`) and `delete_expired` removes
  it (entities carry `exp`; index rows the expiry of the job they point at).
- Limits: a string property holds at most 64 KiB (32 Ki UTF-16 units) and an entity 1
  MiB, so a job document is split over properties `doc`, `doc1`, ... of 30 000
  characters each (documents are ASCII: the codec escapes the rest); one over
  _MAX_DOC_CHARS is refused with ValueError before anything is written. A transaction
  takes at most 100 operations of one partition: bulk index writes are split so.
"""

from __future__ import annotations

import base64
import contextlib
import logging
import re
import struct
import threading
import zlib
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from azure.core import MatchConditions
from azure.core.exceptions import ResourceExistsError, ResourceModifiedError, ResourceNotFoundError
from azure.data.tables import TableClient, TableServiceClient, UpdateMode

from core.adapters.azure import clients
from core.adapters.azure.errors import unavailable_on_outage
from core.adapters.clock import SystemClock
from core.adapters.stores._common import (
    STORE_LIMITS,
    check_limit,
    decode_cursor,
    encode_cursor,
    is_live,
)
from core.adapters.stores._records import (
    dump_batch,
    dump_job,
    load_batch,
    unreadable_stand_in,
)
from core.adapters.stores._records import load_job as load_record
from core.domain.errors import UnavailableError
from core.domain.job import Job, JobStatus
from core.ports import Batch, BlobStore, Clock, Page, Sweep, UnreadableRecordError

log = logging.getLogger("imggo.store")


# This store predates core.adapters.stores._base.BaseJobStore (it keeps its own index
# rows) and writes every manifest inline: a record naming a manifest blob is not ours.
def load_job(job_id: str, doc: object) -> Job:
    job, blob = load_record(job_id, doc)
    if blob is not None:
        raise UnreadableRecordError("job", job_id, "manifest blob in a table row")
    return job


def is_readable_job(job_id: str, doc: object) -> bool:
    try:
        load_job(job_id, doc)
    except UnreadableRecordError:
        return False
    return True


def read_row(job_id: str, doc: object) -> Job | None:
    """One row of a scan: its job, or None when it cannot be decoded (logged by id and
    reason, never content)."""
    try:
        return load_job(job_id, doc)
    except UnreadableRecordError as exc:
        log.warning("stored job %s cannot be read (%s); left out of the scan", job_id, exc.reason)
        return None


Entity = dict[str, Any]

BACKEND = "Table Storage"
DEFAULT_PENDING_SHARDS = 4
TRANSACTION_MAX = 100  # operations per entity group transaction
_CHUNK = 30_000  # characters per string property (64 KiB of UTF-16)
_MAX_DOC_CHARS = 15 * _CHUNK  # with the other properties, well inside the 1 MiB entity
_SEEN_MAX = 4096  # ETags remembered for compare-and-set, per store
_CREATE_ATTEMPTS = 16
_SWEEP_MAX = 1000  # entities looked at per sweep call
_TABLE_NAME = re.compile(r"[A-Za-z][A-Za-z0-9]{2,62}")
_PLAIN_KEY = re.compile(r"[A-Za-z0-9_.:=@-]{1,256}")
_TERMINAL = frozenset(s.value for s in JobStatus if s.terminal)


# ---------------------------------------------------------------------------- keys
def key_part(name: str) -> str:
    """`name` as legal in a PartitionKey or RowKey (no / \\ # ? or control characters,
    at most 1 KiB): itself when plain, else `~` and its URL-safe base64."""
    if _PLAIN_KEY.fullmatch(name):
        return name
    raw = name.encode("utf-8", "surrogatepass")
    return "~" + base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _bits(value: float) -> str:
    value += 0.0  # -0.0 == 0.0 as numbers, so they must encode alike
    bits: int = struct.unpack(">Q", struct.pack(">d", value))[0]
    bits = bits ^ 0xFFFF_FFFF_FFFF_FFFF if bits >> 63 else bits | (1 << 63)
    return f"{bits:016x}"


_COMPLEMENT = str.maketrans("0123456789abcdef", "fedcba9876543210")


def oldest_first(value: float, item_id: str) -> str:
    """A row key sorting ascending as (value, id)."""
    return _bits(value) + item_id.encode("utf-8", "surrogatepass").hex()


def newest_first(value: float, item_id: str) -> str:
    """A row key sorting ascending as (value, id) sorts descending."""
    return oldest_first(value, item_id).translate(_COMPLEMENT) + "~"


def _job_pk(job_id: str) -> str:
    return "j|" + key_part(job_id)


def _tenant_pk(tenant: str) -> str:
    return "t|" + key_part(tenant)


def _status_prefix(status: str) -> str:
    return f"s|{status}|"


def parse_url(url: str) -> tuple[str, int]:
    """`azuretables://table?pending_shards=N` -> (table, shards)."""
    parts = urlsplit(url)
    if parts.scheme != "azuretables":
        raise ValueError(f"not an azuretables URL: {parts.scheme}://")
    if not _TABLE_NAME.fullmatch(parts.netloc) or parts.path not in ("", "/") or parts.fragment:
        raise ValueError(
            "an azuretables URL names one table (a letter, then 2-62 letters or digits): "
            "azuretables://jobs[?pending_shards=N]"
        )
    shards = DEFAULT_PENDING_SHARDS
    for name, value in parse_qsl(parts.query):
        if name != "pending_shards":
            raise ValueError(f"unknown option {name!r}; known options: pending_shards")
        if not value.isdigit() or int(value) < 1:
            raise ValueError("pending_shards must be a positive integer")
        shards = int(value)
    return parts.netloc, shards


# ---------------------------------------------------------------------------- documents
def _doc_properties(kind: str, record_id: str, doc: str) -> Entity:
    if len(doc) > _MAX_DOC_CHARS:
        raise ValueError(
            f"{kind} {record_id}: its stored form is {len(doc)} characters, more than a "
            f"Table Storage entity holds ({_MAX_DOC_CHARS})"
        )
    chunks = [doc[i : i + _CHUNK] for i in range(0, len(doc), _CHUNK)] or [""]
    props: Entity = {"doc": chunks[0]}
    for n, chunk in enumerate(chunks[1:], start=1):
        props[f"doc{n}"] = chunk
    return props


def stored_doc(entity: Entity) -> object:
    """The document as stored (the chunks joined), or what is there if it is not text:
    the codec judges."""
    first = entity.get("doc")
    if not isinstance(first, str):
        return first
    parts = [first]
    n = 1
    while isinstance(entity.get(f"doc{n}"), str):
        parts.append(entity[f"doc{n}"])
        n += 1
    return "".join(parts)


def _number(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _exp(entity: Entity) -> float | None:
    return _number(entity.get("exp"))


def _expiry(expires_at: float | None) -> Entity:
    return {} if expires_at is None else {"exp": float(expires_at)}


@dataclass(frozen=True)
class _Seen:
    version: int
    etag: str
    exp: float | None


# ---------------------------------------------------------------------------- the store
class AzureTableJobStore:
    def __init__(
        self,
        table: str,
        *,
        clock: Clock | None = None,
        pending_shards: int = DEFAULT_PENDING_SHARDS,
        client: TableClient | None = None,
    ) -> None:
        if pending_shards < 1:
            raise ValueError("pending_shards must be at least 1")
        self.table = table
        self._clock: Clock = clock or SystemClock()
        self._shards = pending_shards
        self._client = client or _table_client(table)
        self._seen: OrderedDict[str, _Seen] = OrderedDict()
        self._seen_lock = threading.Lock()

    @classmethod
    def from_url(
        cls, url: str, *, clock: Clock | None = None, blobs: BlobStore | None = None
    ) -> AzureTableJobStore:
        # `blobs` is not used yet: this store predates BaseJobStore's large-manifest
        # offload and refuses a document past its own limit instead (see _MAX_DOC_CHARS).
        table, shards = parse_url(url)
        return cls(table, clock=clock, pending_shards=shards)

    @property
    def client(self) -> TableClient:
        return self._client

    def create_table(self) -> None:
        """Create the table if missing (tests and local stacks; on Azure the Bicep does)."""
        with unavailable_on_outage(BACKEND), contextlib.suppress(ResourceExistsError):
            self._client.create_table()

    # ------------------------------------------------------------------ jobs
    def create(self, job: Job) -> tuple[Job, bool]:
        stored = job.replace(version=1)
        entity = self._job_entity(stored)
        self._write_index(self._index_rows(stored))
        return self._create_job(entity)

    def get(self, job_id: str) -> Job | None:
        entity = self._read(_job_pk(job_id))
        if entity is None or not is_live(_exp(entity), self._clock.now()):
            return None
        return load_job(job_id, stored_doc(entity))

    def compare_and_set(self, job: Job) -> Job | None:
        seen = self._recall(job.id)
        if seen is None or seen.version != job.version:
            self._read(_job_pk(job.id))  # remembers its version and ETag
            seen = self._recall(job.id)
        if seen is None or seen.version != job.version or not is_live(seen.exp, self._clock.now()):
            return None
        written = job.replace(version=job.version + 1)
        entity = self._job_entity(written)
        self._write_index(self._index_rows(written))
        if not self._replace_if_unchanged(job.id, entity, seen.etag):
            return None
        return load_job(job.id, stored_doc(entity))  # a fresh copy: the caller may mutate

    def fail_unreadable(self, job_id: str, *, now: float) -> Job | None:
        entity = self._read(_job_pk(job_id))
        if entity is None or not is_live(_exp(entity), now):
            return None
        if is_readable_job(job_id, stored_doc(entity)):
            return None
        version = entity.get("v")
        failed = unreadable_stand_in(
            job_id,
            tenant=entity.get("tenant"),
            created_at=entity.get("ca"),
            expires_at=_exp(entity),
            version=version,
            now=now,
        )
        new = self._job_entity(failed)
        self._write_index(self._index_rows(failed))
        # If-Match the entity just read: any good write since has changed its ETag.
        if not self._replace_if_unchanged(job_id, new, entity.metadata["etag"]):
            return None
        return load_job(job_id, stored_doc(new))

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
        prefix = "a|" if status is None else _status_prefix(status.value)
        low = prefix + (newest_first(*after) if after is not None else "")
        rows = self._query(
            "PartitionKey eq @pk and RowKey gt @low and RowKey lt @high",
            {"pk": _tenant_pk(tenant), "low": low, "high": prefix[:-1] + "}"},
            page_size=limit + 1,
        )
        want = status.value if status is not None else None
        found = self._valid(rows, lambda e, r: _lists(e, r, tenant, want), want=limit + 1)
        page = found[:limit]
        more = len(found) > limit
        next_cursor = None
        if more:
            last_row = page[-1][1]
            next_cursor = encode_cursor((float(last_row["ca"]), str(last_row["job"])))
        return _page(page, next_cursor)

    def list_pending(self, *, updated_before: float, limit: int) -> Page:
        check_limit(limit)
        merged: list[tuple[Entity, Entity]] = []
        for shard in range(self._shards):
            rows = self._query(
                "PartitionKey eq @pk and RowKey lt @bound",
                {"pk": f"p|{shard}", "bound": _bits(updated_before)},
                page_size=limit,
            )
            merged += self._valid(rows, _pending, want=limit)
        merged.sort(key=lambda pair: str(pair[1]["RowKey"]))  # sorts as (updated_at, id)
        return _page(merged[:limit], None)

    # ------------------------------------------------------------------ lookup keys
    def claim_key(self, key: str, job_id: str, *, expires_at: float | None, now: float) -> str:
        entity: Entity = {"PartitionKey": "k|" + key_part(key), "RowKey": ""}
        entity.update({"kind": "key", "job": job_id, **_expiry(expires_at)})
        holder, _ = self._create_if_absent(entity, now)
        return str(holder["job"])

    def lookup_key(self, key: str, *, now: float) -> str | None:
        entity = self._read("k|" + key_part(key))
        if entity is None or not is_live(_exp(entity), now):
            return None
        return str(entity["job"])

    def release_key(self, key: str, job_id: str) -> None:
        entity = self._read("k|" + key_part(key))
        if entity is None or entity.get("job") != job_id:
            return
        # If-Match: a key that changed hands since we read it is not ours to drop.
        self._delete_if_unchanged(entity)

    # ------------------------------------------------------------------ batches
    def create_batch(self, batch: Batch) -> tuple[Batch, bool]:
        entity: Entity = {"PartitionKey": "b|" + key_part(batch.id), "RowKey": "", "kind": "batch"}
        entity.update(_doc_properties("batch", batch.id, dump_batch(batch)))
        entity.update(_expiry(batch.expires_at))
        stored, created = self._create_if_absent(entity, self._clock.now())
        return load_batch(batch.id, stored_doc(stored)), created

    def get_batch(self, batch_id: str) -> Batch | None:
        entity = self._read("b|" + key_part(batch_id))
        if entity is None or not is_live(_exp(entity), self._clock.now()):
            return None
        return load_batch(batch_id, stored_doc(entity))

    # ------------------------------------------------------------------ bulk
    def create_many(self, jobs: Sequence[Job]) -> list[tuple[Job, bool]]:
        """`create` for each job in order; their index rows go first, in transactions of
        at most 100 operations per partition, instead of one round trip each."""
        stored = [job.replace(version=1) for job in jobs]
        self._write_index(row for job in stored for row in self._index_rows(job))
        return [self._create_job(self._job_entity(job)) for job in stored]

    def claim_many(
        self, claims: Sequence[tuple[str, str, float | None]], *, now: float
    ) -> list[str]:
        return [self.claim_key(k, j, expires_at=e, now=now) for k, j, e in claims]

    # ------------------------------------------------------------------ housekeeping
    def delete_expired(self, *, now: float) -> Sweep:
        """Remove what expired by `now` (at most _SWEEP_MAX entities per call), judged on
        `exp` alone, so an undecodable job goes too; index rows of expired jobs go with
        them (not counted). Each delete is If-Match the ETag read, so an entity written
        again since is kept. One that cannot be deleted for a reason of its own is
        skipped; an unreachable service ends the sweep (UnavailableError)."""
        removed = skipped = 0
        rows = self._query("exp le @now", {"now": float(now)}, page_size=_SWEEP_MAX)
        for n, entity in enumerate(rows):
            if n >= _SWEEP_MAX:
                break
            try:
                deleted = self._delete_if_unchanged(entity)
            except ResourceModifiedError:
                continue
            except UnavailableError:
                raise
            except Exception as exc:  # this entity's trouble, not the sweep's
                skipped += 1
                log.warning(
                    "sweep: could not delete %s/%s (%s); left for the next sweep",
                    entity.get("PartitionKey"),
                    entity.get("RowKey"),
                    type(exc).__name__,
                )
                continue
            if deleted and entity.get("kind") in ("job", "key", "batch"):
                removed += 1
        return Sweep(removed=removed, skipped=skipped)

    def ping(self) -> None:
        """One cheap read (an entity that never exists) proves the table answers."""
        self._read("ping")

    def close(self) -> None:
        self._client.close()

    # ------------------------------------------------------------------ entities
    def _job_entity(self, job: Job) -> Entity:
        entity: Entity = {
            "PartitionKey": _job_pk(job.id),
            "RowKey": "",
            "kind": "job",
            "id": job.id,
            "v": job.version,
            "tenant": job.tenant,
            "st": job.status.value,
            "ca": float(job.created_at),
            "ua": float(job.updated_at),
            **_expiry(job.expires_at),
        }
        entity.update(_doc_properties("job", job.id, dump_job(job)))
        return entity

    def _index_rows(self, job: Job) -> list[Entity]:
        """The index entities of `job`'s state: written before the job entity itself."""
        common: Entity = {"kind": "ix", "job": job.id, "v": job.version, **_expiry(job.expires_at)}
        order = newest_first(job.created_at, job.id)
        tenant = _tenant_pk(job.tenant)
        rows: list[Entity] = [
            {"PartitionKey": tenant, "RowKey": "a|" + order, "ca": float(job.created_at)},
            {
                "PartitionKey": tenant,
                "RowKey": _status_prefix(job.status.value) + order,
                "ca": float(job.created_at),
                "st": job.status.value,
            },
        ]
        if not job.terminal:
            shard = zlib.crc32(job.id.encode("utf-8", "surrogatepass")) % self._shards
            rows.append(
                {
                    "PartitionKey": f"p|{shard}",
                    "RowKey": oldest_first(job.updated_at, job.id),
                    "ua": float(job.updated_at),
                }
            )
        return [{**row, **common} for row in rows]

    # ------------------------------------------------------------------ plumbing
    def _write_index(self, rows: Iterable[Entity]) -> None:
        """Upsert index rows: one transaction per partition and 100 operations (a row
        repeated in one call is written once: a transaction may not name it twice)."""
        by_partition: dict[str, dict[str, Entity]] = {}
        for row in rows:
            by_partition.setdefault(row["PartitionKey"], {}).setdefault(row["RowKey"], row)
        for partition in by_partition.values():
            ops = [("upsert", row, {"mode": UpdateMode.REPLACE}) for row in partition.values()]
            for start in range(0, len(ops), TRANSACTION_MAX):
                chunk = ops[start : start + TRANSACTION_MAX]
                with unavailable_on_outage(BACKEND):
                    if len(chunk) == 1:
                        self._client.upsert_entity(chunk[0][1], mode=UpdateMode.REPLACE)
                    else:
                        self._client.submit_transaction(chunk)

    def _create_job(self, entity: Entity) -> tuple[Job, bool]:
        job_id = str(entity["id"])
        stored, created = self._create_if_absent(entity, self._clock.now())
        return load_job(job_id, stored_doc(stored)), created

    def _create_if_absent(self, entity: Entity, now: float) -> tuple[Entity, bool]:
        """Create `entity` unless a live one has its key. An expired one counts as absent
        (as if already swept) and is replaced If-Match its ETag. Returns (the stored
        entity, created?)."""
        for _ in range(_CREATE_ATTEMPTS):
            try:
                with unavailable_on_outage(BACKEND):
                    meta = self._client.create_entity(entity)
                self._remember_job(entity, meta["etag"])
                return entity, True
            except ResourceExistsError:
                pass
            existing = self._read(entity["PartitionKey"], entity["RowKey"])
            if existing is None:
                continue  # swept between our create and our read: create again
            if is_live(_exp(existing), now):
                return existing, False
            try:
                with unavailable_on_outage(BACKEND):
                    meta = self._client.update_entity(
                        entity,
                        mode=UpdateMode.REPLACE,
                        etag=existing.metadata["etag"],
                        match_condition=MatchConditions.IfNotModified,
                    )
                self._remember_job(entity, meta["etag"])
                return entity, True
            except (ResourceModifiedError, ResourceNotFoundError):
                continue  # someone else replaced or swept it: look again
        raise RuntimeError(f"{entity['PartitionKey']} kept changing under a conditional write")

    def _replace_if_unchanged(self, job_id: str, entity: Entity, etag: str) -> bool:
        try:
            with unavailable_on_outage(BACKEND):
                meta = self._client.update_entity(
                    entity,
                    mode=UpdateMode.REPLACE,
                    etag=etag,
                    match_condition=MatchConditions.IfNotModified,
                )
        except (ResourceModifiedError, ResourceNotFoundError):
            self._forget(job_id)
            return False
        self._remember(job_id, entity, meta["etag"])
        return True

    def _delete_if_unchanged(self, entity: Any) -> bool:
        try:
            with unavailable_on_outage(BACKEND):
                self._client.delete_entity(
                    entity["PartitionKey"],
                    entity["RowKey"],
                    etag=entity.metadata["etag"],
                    match_condition=MatchConditions.IfNotModified,
                )
        except ResourceNotFoundError:
            return False
        return True

    def _read(self, partition: str, row: str = "") -> Any:
        try:
            with unavailable_on_outage(BACKEND):
                entity = self._client.get_entity(partition, row)
        except ResourceNotFoundError:
            return None
        self._remember_job(entity, entity.metadata["etag"])
        return entity

    def _query(self, query: str, parameters: dict[str, Any], *, page_size: int) -> Iterator[Any]:
        """The entities of `query` in key order, following continuation tokens lazily."""
        pages = self._client.query_entities(
            query, parameters=parameters, results_per_page=min(page_size, 1000)
        )
        iterator = iter(pages)
        while True:
            try:
                with unavailable_on_outage(BACKEND):
                    entity = next(iterator)
            except StopIteration:
                return
            yield entity

    def _valid(
        self, rows: Iterator[Any], matches: Any, *, want: int
    ) -> list[tuple[Entity, Entity]]:
        """Up to `want` (job entity, index row) pairs of `rows` whose job is live and in
        the state the row was written for; a dangling row is skipped, and pruned when the
        job has reached the row's version (module docstring)."""
        now = self._clock.now()
        found: list[tuple[Entity, Entity]] = []
        for row in rows:
            if len(found) >= want:
                break
            entity = self._read(_job_pk(str(row.get("job"))))
            if entity is None or not is_live(_exp(entity), now):
                continue  # not created yet, or expired: hidden, the sweep removes the row
            if matches(entity, row):
                found.append((entity, row))
                continue
            version, row_version = entity.get("v"), row.get("v")
            if isinstance(version, int) and isinstance(row_version, int) and version >= row_version:
                with contextlib.suppress(ResourceModifiedError):
                    self._delete_if_unchanged(row)
        return found

    def _remember_job(self, entity: Entity, etag: str | None) -> None:
        if entity.get("kind") == "job" and etag:
            self._remember(str(entity.get("id")), entity, etag)

    def _remember(self, job_id: str, entity: Entity, etag: str) -> None:
        version = entity.get("v")
        if not isinstance(version, int):
            return
        with self._seen_lock:
            self._seen[job_id] = _Seen(version, etag, _exp(entity))
            self._seen.move_to_end(job_id)
            while len(self._seen) > _SEEN_MAX:
                self._seen.popitem(last=False)

    def _recall(self, job_id: str) -> _Seen | None:
        with self._seen_lock:
            return self._seen.get(job_id)

    def _forget(self, job_id: str) -> None:
        with self._seen_lock:
            self._seen.pop(job_id, None)


# ---------------------------------------------------------------------------- helpers
def _lists(entity: Entity, row: Entity, tenant: str, status: str | None) -> bool:
    """Whether a listing row still describes its job."""
    if entity.get("tenant") != tenant or _number(entity.get("ca")) != _number(row.get("ca")):
        return False
    return status is None or entity.get("st") == status


def _pending(entity: Entity, row: Entity) -> bool:
    return (
        entity.get("st") not in _TERMINAL
        and _number(entity.get("ua")) is not None
        and _number(entity.get("ua")) == _number(row.get("ua"))
    )


def _page(pairs: list[tuple[Entity, Entity]], next_cursor: str | None) -> Page:
    jobs: list[Job] = []
    unreadable: list[str] = []
    for entity, row in pairs:
        job_id = str(row["job"])
        job = read_row(job_id, stored_doc(entity))
        if job is None:
            unreadable.append(job_id)
        else:
            jobs.append(job)
    return Page(jobs, next_cursor, tuple(unreadable))


def _table_client(table: str) -> TableClient:
    address, credential = clients.account("table")
    options = clients.call_options(STORE_LIMITS)  # as every networked job store
    if credential is None:
        service = TableServiceClient.from_connection_string(address, **options)
    else:
        service = TableServiceClient(endpoint=address, credential=credential, **options)
    return service.get_table_client(table)


__all__ = ["AzureTableJobStore", "key_part", "newest_first", "oldest_first", "parse_url"]
