"""The JobStore on Azure Table Storage: one table, conditional writes on ETags.

    azuretables://TABLE[?pending_shards=N]

The account comes from core.adapters.azure.clients (a connection string for Azurite,
else the app's managed identity). `pending_shards` (default 4) spreads the pending index
and the manifest leases over N partitions (as the DynamoDB store does; a table in use
keeps its N: rows in a partition beyond a smaller N are never read). The entities and
their keys are core.adapters.azure.table_layout's; what every store decides is
core.adapters.stores._base's. This module is the primitives, each a few SDK calls.

Why it looks the way it does:
- The job entity is the truth; each write that depends on what is stored is one
  conditional operation on it: create-if-absent is `create_entity` (409 when it exists;
  an expired one is then replaced If-Match its ETag, as if swept: _base.create_unless_live),
  compare-and-set is a REPLACE If-Match the ETag of the version the caller read (412 when
  anyone wrote since). Table Storage evaluates the condition and the write atomically.
  The ETag is the compare-and-set token (`cas_needs_token`): the base remembers it for
  the version it last read or wrote, so a compare-and-set after a get reads nothing more.
- Tables has no secondary indexes and no transaction across partitions, so the listing,
  the status listing and the cross-tenant pending scan are index rows in other
  partitions. WHICH WRITE GOES FIRST: the index rows of the state about to be written
  are upserted BEFORE the job entity is written. A crash between the two leaves index
  rows pointing at a state the job does not have (never a job state without its rows),
  and readers tolerate that: every index row is checked against the job entity it points
  at (one point read each), and one that does not describe it is skipped. So a crash
  can add a dangling row, never hide a job.
- Dangling rows are pruned by the readers that meet them, with a delete If-Match the
  row's ETag, and only once the job has reached the version the row was written for: a
  row written for a write still in flight (ahead of the job) is left alone, and a writer
  re-upserting a row changes its ETag, so a prune never removes a row a write relies on.
- Tables has no TTL: reads hide what expired (`is_live`) and the sweep deletes it, kind
  by kind (a PartitionKey range each, on `exp`), each delete If-Match the ETag read, so
  an entity written again since stays. An expired index row is deleted only if it does
  not describe a live job: a create that lost to a live job has upserted that job's rows
  with its own expiry (same id, same created_at: same keys), and such a row is given the
  job's expiry back instead. Manifest leases are not the sweep's but _manifests'.
- Listings and the pending scan read one page of index rows per primitive call, resumed
  by the SDK's continuation token; callers only ever see the shared opaque cursor
  (core.adapters.stores._common), cut from a row's own sort key.
- Limits: documents are split over string properties and a job document longer than
  one entity keeps its manifest in the blob store (`max_doc_bytes`, see table_layout). A
  transaction takes at most 100 operations of one partition: index writes are split so.
- Every SDK call is bounded (clients.call_options) and a transient failure is raised as
  `store_unavailable` (core.adapters.azure.errors).
"""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import Iterable, Sequence
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import ResourceExistsError, ResourceModifiedError, ResourceNotFoundError
from azure.data.tables import TableClient, TableEntity, TableServiceClient, UpdateMode

from core.adapters.azure import clients
from core.adapters.azure.errors import unavailable_on_outage
from core.adapters.azure.table_layout import (
    BATCHES,
    BUDGETS,
    JOBS,
    KEYS,
    LEASES,
    MAX_DOC_BYTES,
    PENDING,
    TENANTS,
    Entity,
    Kind,
    batch_entity,
    budget_entity,
    describes,
    exp_of,
    index_rows,
    job_entity,
    key_entity,
    lease_address,
    lease_entity,
    listing_bounds,
    pending_bound,
    scan_order,
    stored_doc,
    superseded,
    with_expiry,
)
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
    create_unless_live,
)
from core.adapters.stores._common import STORE_LIMITS, is_live, parse_store_url
from core.domain.errors import UnavailableError
from core.domain.job import Job
from core.ports import BlobStore, Clock, StoredBudget, Sweep

log = logging.getLogger("imggo.store.azure")

BACKEND = "Table Storage"
DEFAULT_PENDING_SHARDS = 4
TRANSACTION_MAX = 100  # operations per entity group transaction
_PAGE_MAX = 1000  # entities per query request, the service's own cap
_SWEEP_MAX = 1000  # entities looked at per sweep: reconcile stays bounded
_CONTENTION_ATTEMPTS = 16
_TABLE_NAME = re.compile(r"[A-Za-z][A-Za-z0-9]{2,62}")
_OPTIONS = {"pending_shards": "partitions of the pending index, default 4"}
# What the sweep deletes on expiry: the kinds it counts, then the index rows.
_SWEPT = (JOBS, KEYS, BATCHES)
_INDEXES = (TENANTS, PENDING)


def parse_url(url: str) -> tuple[str, int]:
    """`azuretables://table[?pending_shards=N]` -> (table, shards)."""
    table, options = parse_store_url(url, "azuretables", _OPTIONS)
    if not _TABLE_NAME.fullmatch(table):
        raise ValueError(
            "an azuretables URL names one table (a letter, then 2-62 letters or digits): "
            "azuretables://jobs[?pending_shards=N]"
        )
    shards = options.get("pending_shards", str(DEFAULT_PENDING_SHARDS))
    if not shards.isdigit() or int(shards) < 1:
        raise ValueError("pending_shards must be a positive integer")
    return table, int(shards)


def _etag(entity: TableEntity) -> str:
    """The ETag of an entity as read: the token of "this very entity" for If-Match."""
    return str(entity.metadata["etag"])


def _stored_job(job_id: str, entity: TableEntity) -> StoredJob:
    return StoredJob(
        job_id,
        stored_doc(entity),
        exp_of(entity),
        version=entity.get("v"),
        tenant=entity.get("tenant"),
        created_at=entity.get("ca"),
        token=_etag(entity),
    )


class AzureTableJobStore(BaseJobStore):
    cas_needs_token = True  # If-Match the ETag of the version read

    def __init__(
        self,
        table: str,
        *,
        clock: Clock | None = None,
        blobs: BlobStore | None = None,
        pending_shards: int = DEFAULT_PENDING_SHARDS,
        limits: CallLimits = STORE_LIMITS,  # as every networked job store
        client: TableClient | None = None,
    ) -> None:
        """`limits` bound each call of the client built here (tests pass tighter ones);
        `client`, a TableClient to use instead."""
        if pending_shards < 1:
            raise ValueError("pending_shards must be at least 1")
        super().__init__(clock=clock, blobs=blobs, max_doc_bytes=MAX_DOC_BYTES)
        self.table = table
        self.pending_partitions = pending_shards
        self._client = client or _table_client(table, limits)
        # Each budget's version and ETag as last read: the next write is If-Match that
        # ETag and needs no read of its own.
        self._budget_seen: dict[str, tuple[int, str]] = {}

    @classmethod
    def from_url(
        cls, url: str, *, clock: Clock | None = None, blobs: BlobStore | None = None
    ) -> AzureTableJobStore:
        table, shards = parse_url(url)
        return cls(table, clock=clock, blobs=blobs, pending_shards=shards)

    @property
    def client(self) -> TableClient:
        return self._client

    def create_table(self) -> None:
        """Create the table if missing (tests and local stacks; on Azure the Bicep does)."""
        with unavailable_on_outage(BACKEND), contextlib.suppress(ResourceExistsError):
            self._client.create_table()

    # ------------------------------------------------------------------ bulk
    def create_many(self, jobs: Sequence[Job]) -> list[tuple[Job, bool]]:
        """`create` for each job in order; their index rows go first, in transactions of
        at most 100 operations per partition, instead of a round trip or two each."""
        now = self._clock.now()
        encoded = [self._overflow.encode(job.replace(version=1)) for job in jobs]
        rows = [JobRow.of(e.job, e.doc) for e in encoded]
        self._write_index(ix for row in rows for ix in self._index_rows(row))
        return [
            self._created(e, self._create_job(row, now))
            for e, row in zip(encoded, rows, strict=True)
        ]

    def claim_many(
        self, claims: Sequence[tuple[str, str, float | None]], *, now: float
    ) -> list[str]:
        # Every key is its own partition: no transaction can take two.
        return [self.claim_key(k, j, expires_at=e, now=now) for k, j, e in claims]

    # ------------------------------------------------------------------ jobs
    def _get_job(self, job_id: str) -> StoredJob | None:
        entity = self._read(JOBS.key(job_id))
        return None if entity is None else _stored_job(job_id, entity)

    def _put_job_if_absent(self, row: JobRow, now: float) -> Written | StoredJob:
        self._write_index(self._index_rows(row))
        return self._create_job(row, now)

    def _put_job_if_version(
        self, row: JobRow, *, expected: int, seen: Seen | None, now: float
    ) -> Written | None:
        # `seen` is that version as read or written (cas_needs_token): its ETag is the
        # condition, so a write since, by anyone, makes this one fail. (The base has
        # judged it live; the ETag proves it is still that very entity, expiry and all.)
        assert seen is not None and seen.version == expected
        self._write_index(self._index_rows(row))
        return self._replace(job_entity(row), seen.token)

    def _replace_job(self, old: StoredJob, row: JobRow, now: float) -> Written | None:
        self._write_index(self._index_rows(row))
        return self._replace(job_entity(row), old.token)

    def _query_page(
        self, query: Query, resume: object | None, limit: int, now: float
    ) -> tuple[Sequence[ScanRow], object | None]:
        if isinstance(query, Listing):
            low, high = listing_bounds(query.status, query.after)
            where = "PartitionKey eq @pk and RowKey gt @low and RowKey lt @high"
            parameters: Entity = {"pk": TENANTS.key(query.tenant), "low": low, "high": high}
        else:
            where = "PartitionKey eq @pk and RowKey lt @bound"
            parameters = {
                "pk": PENDING.key(str(query.partition)),
                "bound": pending_bound(query.updated_before),
            }
        rows, resume = self._page(where, parameters, limit, resume)
        found = (self._follow(row, now) for row in rows)
        return [scan for scan in found if scan is not None], resume

    # ------------------------------------------------------------------ lookup keys
    def _claim_key(self, key: str, job_id: str, expires_at: float | None, now: float) -> str:
        found = self._create_unless_live(key_entity(key, job_id, expires_at), now)
        return job_id if isinstance(found, Written) else str(found.get("job"))

    def _get_key(self, key: str) -> StoredKey | None:
        entity = self._read(KEYS.key(key))
        return None if entity is None else StoredKey(str(entity.get("job")), exp_of(entity))

    def _release_key(self, key: str, job_id: str) -> None:
        for _ in range(_CONTENTION_ATTEMPTS):
            held = self._read(KEYS.key(key))
            if held is None or held.get("job") != job_id:
                return
            # If-Match: a key that changed hands since it was read is not ours to drop.
            if self._delete(held):
                return
        raise unavailable(BACKEND)  # contended beyond reason: the caller retries later

    # ------------------------------------------------------------------ batches
    def _put_batch_if_absent(self, row: BatchRow, now: float) -> StoredBatch | None:
        found = self._create_unless_live(batch_entity(row), now)
        return None if isinstance(found, Written) else StoredBatch(stored_doc(found), exp_of(found))

    def _get_batch(self, batch_id: str) -> StoredBatch | None:
        entity = self._read(BATCHES.key(batch_id))
        return None if entity is None else StoredBatch(stored_doc(entity), exp_of(entity))

    # ------------------------------------------------------------------ budgets
    def _get_budget(self, bucket: str) -> StoredBudget | None:
        entity = self._read(BUDGETS.key(bucket))
        if entity is None:
            return None
        stored = StoredBudget(str(entity["doc"]), int(entity["v"]))
        self._budget_seen[bucket] = (stored.version, _etag(entity))
        return stored

    def _put_budget_if_version(self, bucket: str, doc: str, expected: int) -> bool:
        entity = budget_entity(bucket, doc, expected + 1)
        if expected == 0:
            return self._create(entity) is not None
        # Written If-Match the ETag of the read that saw `expected` (the last one, or a
        # fresh one): a writer in between wins, and we write nothing.
        seen = self._budget_seen.get(bucket)
        if seen is None or seen[0] != expected:
            found = self._read(entity["PartitionKey"])
            if found is None or found.get("v") != expected:
                return False
            seen = (expected, _etag(found))
        return self._replace(entity, seen[1]) is not None

    # ------------------------------------------------------------------ leases
    def _put_lease(self, key: str, expires_at: float) -> None:
        entity = lease_entity(key, expires_at, self.pending_partitions)
        with unavailable_on_outage(BACKEND):
            self._client.upsert_entity(entity, mode=UpdateMode.REPLACE)

    def _expired_leases(self, now: float, limit: int) -> list[str]:
        keys: list[str] = []
        for shard in range(self.pending_partitions):
            parameters = {"pk": LEASES.key(str(shard)), "now": float(now)}
            resume: object | None = None
            while len(keys) < limit:
                leases, resume = self._page(
                    "PartitionKey eq @pk and exp le @now", parameters, limit - len(keys), resume
                )
                keys += (str(lease["key"]) for lease in leases)
                if resume is None:
                    break
        return keys[:limit]

    def _drop_lease(self, key: str) -> None:
        partition, row = lease_address(key, self.pending_partitions)
        with unavailable_on_outage(BACKEND), contextlib.suppress(ResourceNotFoundError):
            self._client.delete_entity(partition, row)

    # ------------------------------------------------------------------ housekeeping
    def _delete_expired(self, now: float) -> Sweep:
        """Delete what expired by `now` (at most _SWEEP_MAX entities looked at per call):
        jobs, keys and batches (counted), judged on `exp` alone, so an undecodable job
        goes too; then index rows, unless one still describes a live job (module
        docstring). One that cannot be deleted for a reason of its own is skipped and
        logged; an unreachable service ends the sweep (UnavailableError)."""
        budget, removed, skipped = _SWEEP_MAX, 0, 0
        for kind in (*_SWEPT, *_INDEXES):
            expired = self._expired(kind, now, budget)
            budget -= len(expired)
            for entity in expired:
                try:
                    deleted = self._sweep_one(kind, entity, now)
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
                if deleted and kind in _SWEPT:
                    removed += 1
        return Sweep(removed=removed, skipped=skipped)

    def ping(self) -> None:
        """One cheap read (an entity that never exists) proves the table answers."""
        self._read("ping")

    def close(self) -> None:
        self._client.close()

    # ------------------------------------------------------------------ steps
    def _index_rows(self, row: JobRow) -> list[Entity]:
        return index_rows(row, self.pending_partitions)

    def _create_job(self, row: JobRow, now: float) -> Written | StoredJob:
        """The job entity of `row`, created unless a live one is there (its index rows
        are already written)."""
        found = self._create_unless_live(job_entity(row), now)
        return found if isinstance(found, Written) else _stored_job(row.id, found)

    def _follow(self, row: TableEntity, now: float) -> ScanRow | None:
        """The job an index row points at, if the row describes it; a dangling row is
        skipped, and pruned once it is superseded (module docstring)."""
        job_id = str(row.get("job"))
        job = self._read(JOBS.key(job_id))
        if job is None:
            return None  # a create in flight, or swept: the row waits for either
        if describes(job, row):
            return ScanRow(job_id, stored_doc(job), exp_of(job), scan_order(row))
        if is_live(exp_of(job), now) and superseded(job, row):
            self._delete(row)
        return None

    def _sweep_one(self, kind: Kind, entity: TableEntity, now: float) -> bool:
        """Delete one expired entity (True), unless it was written again since or is an
        index row of a live job (given that job's expiry instead)."""
        if kind in _INDEXES:
            job = self._read(JOBS.key(str(entity.get("job"))))
            if job is not None and is_live(exp_of(job), now) and describes(job, entity):
                self._replace(with_expiry(entity, exp_of(job)), _etag(entity))
                return False
        return self._delete(entity)

    def _expired(self, kind: Kind, now: float, limit: int) -> list[TableEntity]:
        """Up to `limit` entities of `kind` expired by `now`."""
        low, high = kind.span
        where = "PartitionKey ge @low and PartitionKey lt @high and exp le @now"
        parameters = {"low": low, "high": high, "now": float(now)}
        found: list[TableEntity] = []
        resume: object | None = None
        while len(found) < limit:
            page, resume = self._page(where, parameters, limit - len(found), resume)
            found += page
            if resume is None:
                break
        return found[:limit]

    def _create_unless_live(self, entity: Entity, now: float) -> Written | TableEntity:
        """Create `entity` unless a live one has its key (an expired one is replaced):
        Written, or the live entity that is there."""
        return create_unless_live(
            lambda: self._create(entity),
            lambda: self._read(entity["PartitionKey"], entity["RowKey"]),
            exp_of,
            lambda existing: self._replace(entity, _etag(existing)),
            now=now,
            backend=BACKEND,
        )

    # ------------------------------------------------------------------ calls
    # One SDK call each, bounded by the client's limits; what is still transient after
    # them is `store_unavailable`. A condition that did not hold is an answer, not an error.
    def _read(self, partition: str, row: str = "") -> TableEntity | None:
        try:
            with unavailable_on_outage(BACKEND):
                return self._client.get_entity(partition, row)
        except ResourceNotFoundError:
            return None

    def _create(self, entity: Entity) -> Written | None:
        """None when an entity with its key exists (409)."""
        try:
            with unavailable_on_outage(BACKEND):
                meta = self._client.create_entity(entity)
        except ResourceExistsError:
            return None
        return Written(meta["etag"])

    def _replace(self, entity: Entity, etag: str) -> Written | None:
        """Replace the stored entity only if it is still the one with `etag`; None when it
        changed (412) or went (404)."""
        try:
            with unavailable_on_outage(BACKEND):
                meta = self._client.update_entity(
                    entity,
                    mode=UpdateMode.REPLACE,
                    etag=etag,
                    match_condition=MatchConditions.IfNotModified,
                )
        except (ResourceModifiedError, ResourceNotFoundError):
            return None
        return Written(meta["etag"])

    def _delete(self, entity: TableEntity) -> bool:
        """Delete `entity` only if it is still as it was read; False when it changed or
        went."""
        try:
            with unavailable_on_outage(BACKEND):
                self._client.delete_entity(
                    entity["PartitionKey"],
                    entity["RowKey"],
                    etag=_etag(entity),
                    match_condition=MatchConditions.IfNotModified,
                )
        except (ResourceModifiedError, ResourceNotFoundError):
            return False
        return True

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

    def _page(
        self, where: str, parameters: Entity, limit: int, resume: Any
    ) -> tuple[list[TableEntity], object | None]:
        """One request of a query: at most `limit` entities in key order, from the top or
        from the continuation token `resume`; and the token of the next request (None:
        nothing follows)."""
        with unavailable_on_outage(BACKEND):
            pages: Any = self._client.query_entities(
                where, parameters=parameters, results_per_page=min(limit, _PAGE_MAX)
            ).by_page(continuation_token=resume)
            entities = list(next(pages))
        return entities, pages.continuation_token


def _table_client(table: str, limits: CallLimits) -> TableClient:
    address, credential = clients.account("table")
    options = clients.call_options(limits)
    if credential is None:
        service = TableServiceClient.from_connection_string(address, **options)
    else:
        service = TableServiceClient(endpoint=address, credential=credential, **options)
    return service.get_table_client(table)


__all__ = ["BACKEND", "TRANSACTION_MAX", "AzureTableJobStore", "parse_url"]
