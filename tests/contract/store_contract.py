"""The JobStore contract: the behaviour every store adapter must show, written once.

The core's use cases are unit-tested against MemoryJobStore; they are only right on a
real backend if that backend behaves the same. So each adapter runs THIS suite, by
subclassing `StoreContract` in a module named `test_<backend>_store.py` and providing
a `store` fixture. Nothing else is needed:

    import pytest
    from core.adapters.clock import ManualClock
    from tests.contract.store_contract import StoreContract

    class TestDynamoDbStore(StoreContract):
        sweeps_expired = False  # native TTL: delete_expired may return 0

        @pytest.fixture
        def store(self, clock: ManualClock):
            store = DynamoDbJobStore(table=fresh_table(), clock=clock)
            yield store
            store.close()

and, for the tests of records no reader can decode, a `plant_raw` method that writes a job
row with a given document straight to the backend (its SDK or SQL, never the adapter).

What the fixture must give:
- A fresh, EMPTY store per test. `list_pending` spans every tenant, so leftovers from
  another test would show up (use a new table / collection / key prefix per test).
- A store that judges expiry for `get` / `list_*` / `get_batch` / `compare_and_set` /
  `create` with the `clock` fixture (a ManualClock the tests wind forward, and back).

Class attributes let a slow (networked) backend run fewer operations without weakening
what is checked: `race_threads`, `cas_threads`, `cas_increments`, `forward_rounds`.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from typing import Any, ClassVar, TypeVar

import pytest

from core.adapters.clock import ManualClock
from core.adapters.stores._records import dump_job
from core.domain.job import Job, JobError, JobSource, JobStatus, advance
from core.ports import Batch, BlobStore, BulkJobStore, JobStore, UnreadableRecordError
from tests.contract.budget_contract import BudgetContract
from tests.contract.racing import race
from tests.support.blobs import MemoryBlobs
from tests.support.unreadable import SECRET, UNREADABLE_DOCS, job_record, unreadable_doc

T = TypeVar("T")

_ids = itertools.count()


def _new_id(prefix: str) -> str:
    return f"{prefix}-{next(_ids):06d}"


def cas_retry(store: JobStore, job_id: str, change: Callable[[Job], Job | None]) -> Job:
    """Read, change, compare-and-set until it sticks: the loop the service layer runs.
    `change` returning None means there is nothing to write (stale news)."""
    for _ in range(10_000):
        current = store.get(job_id)
        assert current is not None
        time.sleep(0.0002)  # yield between read and write, or the GIL may serialise the racers
        new = change(current)
        if new is None:
            return current
        saved = store.compare_and_set(new)
        if saved is not None:
            return saved
    raise AssertionError("compare_and_set never succeeded")


class StoreContract(BudgetContract):
    race_threads: ClassVar[int] = 32
    cas_threads: ClassVar[int] = 8
    cas_increments: ClassVar[int] = 25  # per thread
    forward_rounds: ClassVar[int] = 20
    sweeps_expired: ClassVar[bool] = True  # False: native TTL, delete_expired may do nothing

    # ------------------------------------------------------------------ fixtures
    @pytest.fixture
    def clock(self) -> ManualClock:
        return ManualClock(start=1_700_000_000.0)

    @pytest.fixture
    def store(self, clock: ManualClock) -> JobStore:
        raise NotImplementedError("subclasses provide the store under test")

    def plant_raw(
        self,
        store: JobStore,
        *,
        job_id: str,
        tenant: str,
        raw: str,
        created_at: float,
        updated_at: float,
        status: str,
        expires_at: float | None,
    ) -> None:
        """Write a job whose stored document is `raw`, with index fields (tenant, status,
        times, expiry) as given, straight to the backend: as corrupt data, or data written
        by buggy or newer code, would sit there."""
        raise NotImplementedError("subclasses plant raw rows in their backend")

    # ------------------------------------------------------------------ helpers
    @staticmethod
    def make_job(clock: ManualClock, **changes: Any) -> Job:
        now = clock.now()
        fields: dict[str, Any] = {
            "id": _new_id("job"),
            "tenant": "tenant-a",
            "pattern_id": "pat_invoice",
            "source": JobSource(kind="url", url="https://img.example/a.png"),
            "created_at": now,
            "updated_at": now,
        }
        fields.update(changes)
        return Job(**fields)

    def make_batch(self, clock: ManualClock, **changes: Any) -> Batch:
        fields: dict[str, Any] = {
            "id": _new_id("batch"),
            "tenant": "tenant-a",
            "pattern_id": "pat_invoice",
            "job_ids": [_new_id("job"), None, _new_id("job")],
            "item_errors": {1: {"code": "invalid_url", "message": "not an http(s) URL"}},
            "created_at": clock.now(),
        }
        fields.update(changes)
        return Batch(**fields)

    @staticmethod
    def all_pages(
        store: JobStore, tenant: str, *, limit: int, cursor: str | None = None, **kw: Any
    ) -> list[list[Job]]:
        """Follow next_cursor to the end. A backend may end on an empty page (DynamoDB
        cannot always tell that nothing follows), so that is allowed here."""
        pages: list[list[Job]] = []
        for _ in range(1000):
            page = store.list_jobs(tenant, limit=limit, cursor=cursor, **kw)
            assert len(page.items) <= limit
            pages.append(page.items)
            cursor = page.next_cursor
            if cursor is None:
                return pages
        raise AssertionError("pagination never ended")

    # ------------------------------------------------------------------ create / get
    def test_get_missing_returns_none(self, store: JobStore) -> None:
        assert store.get("no-such-job") is None

    @pytest.mark.parametrize("given_version", [0, 7])
    def test_create_stores_version_1(
        self, store: JobStore, clock: ManualClock, given_version: int
    ) -> None:
        job = self.make_job(clock, version=given_version)
        stored, created = store.create(job)
        assert created is True
        assert stored == job.replace(version=1)
        assert store.get(job.id) == stored

    def test_second_create_returns_the_existing_job(
        self, store: JobStore, clock: ManualClock
    ) -> None:
        first = self.make_job(clock, extras={"who": "first"})
        store.create(first)
        clock.advance(1)
        second = first.replace(extras={"who": "second"}, updated_at=clock.now())
        stored, created = store.create(second)
        assert created is False
        assert stored == first.replace(version=1)
        assert store.get(first.id) == first.replace(version=1)

    def test_round_trip_preserves_every_field(self, store: JobStore, clock: ManualClock) -> None:
        now = clock.now()
        job = Job(
            id=_new_id("job"),
            tenant="tenant-ü",
            pattern_id="pat_receipt",
            source=JobSource(
                kind="upload",
                blob_key="uploads/tenant/abc.png",
                content_type="image/png",
                filename="scan 1.png",
                size=123_456,
            ),
            created_at=now + 0.123456789,
            updated_at=now + 1.5,
            status=JobStatus.FAILED,
            version=0,
            imggo_job_id="imggo-42",
            manifest={
                "vendor": {"name": "ACME", "address": {"lines": ["1 Road", None], "zip": "123"}},
                "total": 12.5,
                "items": [{"sku": "a", "qty": 2, "ok": True}],
                "unicode": "naïve ✓",
            },
            error=JobError(code="imggo_failed", message="could not read the image"),
            attempts=3,
            idempotency_key="idem-1",
            fingerprint="f" * 64,
            content_sha256="c" * 64,
            extras={"customer": {"ref": 7}, "tags": ["x", "y"]},
            batch_id="batch-9",
            dedupe_of="job-earlier",
            refreshed_at=now + 2,
            completed_at=now + 3,
            expires_at=now + 86_400,
        )
        stored, _ = store.create(job)
        assert stored == job.replace(version=1)
        assert store.get(job.id) == job.replace(version=1)
        changed = job.replace(version=1, attempts=4, manifest={"n": [1, {"m": None}]})
        saved = store.compare_and_set(changed)
        assert saved == changed.replace(version=2)
        assert store.get(job.id) == changed.replace(version=2)

    def test_url_source_round_trip_keeps_nones(self, store: JobStore, clock: ManualClock) -> None:
        job = self.make_job(clock)  # url source, no manifest, error, expiry...
        store.create(job)
        assert store.get(job.id) == job.replace(version=1)

    def test_returned_jobs_do_not_alias_stored_state(
        self, store: JobStore, clock: ManualClock
    ) -> None:
        job = self.make_job(clock, extras={"k": "v"}, manifest={"a": {"b": 1}})
        stored, _ = store.create(job)
        job.extras["k"] = "mutated input"
        stored.extras["k"] = "mutated output"
        fetched = store.get(job.id)
        assert fetched is not None
        assert fetched.manifest is not None
        fetched.manifest["a"]["b"] = 2
        again = store.get(job.id)
        assert again is not None
        assert again.extras == {"k": "v"}
        assert again.manifest == {"a": {"b": 1}}

    def test_racing_creates_have_exactly_one_winner(
        self, store: JobStore, clock: ManualClock
    ) -> None:
        job_id = _new_id("job")
        n = self.race_threads

        def create(i: int) -> tuple[Job, bool]:
            return store.create(self.make_job(clock, id=job_id, extras={"racer": i}))

        results = race(n, create, warmup=store.ping)
        winners = [i for i, (_, created) in enumerate(results) if created]
        assert len(winners) == 1
        # Losers are handed the winner's job, not their own.
        assert {job.extras["racer"] for job, _ in results} == {winners[0]}
        assert {job.version for job, _ in results} == {1}
        stored = store.get(job_id)
        assert stored is not None
        assert stored.extras == {"racer": winners[0]}

    # ------------------------------------------------------------------ compare-and-set
    def test_cas_success_bumps_version(self, store: JobStore, clock: ManualClock) -> None:
        stored, _ = store.create(self.make_job(clock))
        clock.advance(5)
        saved = store.compare_and_set(stored.replace(attempts=1, updated_at=clock.now()))
        assert saved is not None
        assert saved.version == 2
        assert saved.attempts == 1
        assert store.get(stored.id) == saved
        again = store.compare_and_set(saved.replace(attempts=2))
        assert again is not None
        assert again.version == 3

    def test_cas_with_stale_version_writes_nothing(
        self, store: JobStore, clock: ManualClock
    ) -> None:
        stored, _ = store.create(self.make_job(clock))
        fresh = store.compare_and_set(stored.replace(attempts=1))
        assert fresh is not None
        assert store.compare_and_set(stored.replace(attempts=99, extras={"x": 1})) is None
        assert store.compare_and_set(stored.replace(version=5, attempts=99)) is None
        assert store.get(stored.id) == fresh

    def test_cas_on_missing_job_returns_none(self, store: JobStore, clock: ManualClock) -> None:
        assert store.compare_and_set(self.make_job(clock, version=1)) is None
        assert store.compare_and_set(self.make_job(clock, version=0)) is None

    def test_concurrent_cas_loses_no_update(self, store: JobStore, clock: ManualClock) -> None:
        stored, _ = store.create(self.make_job(clock))

        def bump(job: Job) -> Job:
            return job.replace(attempts=job.attempts + 1)

        def increment(_: int) -> None:
            for _ in range(self.cas_increments):
                cas_retry(store, stored.id, bump)

        race(self.cas_threads, increment, warmup=store.ping)
        final = store.get(stored.id)
        total = self.cas_threads * self.cas_increments
        assert final is not None
        assert final.attempts == total
        assert final.version == 1 + total

    def test_racing_forward_updates_end_at_the_furthest_state(
        self, store: JobStore, clock: ManualClock
    ) -> None:
        # Forward-only is the caller's rule (advance); the store's CAS is what lets the
        # caller keep it when a webhook (succeeded) and a poll (running) race.
        manifest = {"total": 42}
        for round_ in range(self.forward_rounds):
            stored, _ = store.create(self.make_job(clock, status=JobStatus.QUEUED))
            # Swap which thread carries which news each round: the thread that reaches the
            # barrier last tends to go first, and both orders must be exercised.
            news = [JobStatus.SUCCEEDED, JobStatus.RUNNING][:: 1 if round_ % 2 else -1]

            def apply(i: int, job_id: str = stored.id, news: list[JobStatus] = news) -> Job:
                return cas_retry(
                    store,
                    job_id,
                    lambda j: advance(j, news[i], now=clock.now(), manifest=manifest),
                )

            race(2, apply, warmup=store.ping)
            final = store.get(stored.id)
            assert final is not None
            assert final.status is JobStatus.SUCCEEDED
            assert final.manifest == manifest

    # ------------------------------------------------------------------ list_jobs
    def test_list_is_newest_first_with_id_breaking_ties(
        self, store: JobStore, clock: ManualClock
    ) -> None:
        base = clock.now()
        specs = [
            (base + 1, "b"),
            (base + 3, "a"),
            (base + 1, "c"),
            (base + 2, "z"),
            (base + 3, "d"),
        ]
        for created_at, suffix in specs:
            store.create(self.make_job(clock, id=f"job-{suffix}", created_at=created_at))
        page = store.list_jobs("tenant-a", limit=50)
        assert [j.id for j in page.items] == ["job-d", "job-a", "job-z", "job-c", "job-b"]
        assert page.next_cursor is None
        assert all(j.version == 1 for j in page.items)

    def test_list_never_shows_another_tenants_jobs(
        self, store: JobStore, clock: ManualClock
    ) -> None:
        mine = {store.create(self.make_job(clock, tenant="t-mine"))[0].id for _ in range(3)}
        for _ in range(3):
            store.create(self.make_job(clock, tenant="t-other"))
        store.create(self.make_job(clock, tenant="t-mine-but-longer"))
        listed = [j for page in self.all_pages(store, "t-mine", limit=2) for j in page]
        assert {j.id for j in listed} == mine
        assert all(j.tenant == "t-mine" for j in listed)
        assert store.list_jobs("t-nobody").items == []
        assert store.list_jobs("t-nobody").next_cursor is None

    def test_list_filters_by_current_status(self, store: JobStore, clock: ManualClock) -> None:
        queued = [store.create(self.make_job(clock, status=JobStatus.QUEUED))[0] for _ in range(3)]
        store.create(self.make_job(clock, status=JobStatus.ACCEPTED))
        store.create(self.make_job(clock, tenant="tenant-b", status=JobStatus.QUEUED))
        moved = advance(queued[0], JobStatus.SUCCEEDED, now=clock.now(), manifest={})
        assert moved is not None
        assert store.compare_and_set(moved) is not None

        listed = store.list_jobs("tenant-a", status=JobStatus.QUEUED).items
        assert {j.id for j in listed} == {queued[1].id, queued[2].id}
        done = store.list_jobs("tenant-a", status=JobStatus.SUCCEEDED).items
        assert [j.id for j in done] == [queued[0].id]
        assert done[0].version == 2
        assert store.list_jobs("tenant-a", status=JobStatus.FAILED).items == []

    @pytest.mark.parametrize("limit", [1, 3, 4, 50])
    def test_pagination_covers_every_job_exactly_once(
        self, store: JobStore, clock: ManualClock, limit: int
    ) -> None:
        # 12 jobs over 4 timestamps: pages must break inside runs of equal created_at.
        base = clock.now()
        jobs = [store.create(self.make_job(clock, created_at=base + (i % 4)))[0] for i in range(12)]
        store.create(self.make_job(clock, tenant="tenant-b"))
        pages = self.all_pages(store, "tenant-a", limit=limit)
        seen = [j.id for page in pages for j in page]
        expected = [j.id for j in sorted(jobs, key=lambda j: (j.created_at, j.id), reverse=True)]
        assert seen == expected
        assert all(len(page) == limit for page in pages[:-1] if page)

    def test_pagination_by_status(self, store: JobStore, clock: ManualClock) -> None:
        base = clock.now()
        running = []
        for i in range(9):
            status = JobStatus.RUNNING if i % 3 else JobStatus.QUEUED
            job, _ = store.create(self.make_job(clock, created_at=base + i // 2, status=status))
            if status is JobStatus.RUNNING:
                running.append(job)
        pages = self.all_pages(store, "tenant-a", limit=2, status=JobStatus.RUNNING)
        seen = [j.id for page in pages for j in page]
        expected = sorted(running, key=lambda j: (j.created_at, j.id), reverse=True)
        assert seen == [j.id for j in expected]

    def test_cursor_is_stable_when_newer_jobs_arrive(
        self, store: JobStore, clock: ManualClock
    ) -> None:
        old = [store.create(self.make_job(clock))[0] for _ in range(4)]
        first = store.list_jobs("tenant-a", limit=2)
        assert first.next_cursor is not None
        clock.advance(10)
        for _ in range(3):
            store.create(self.make_job(clock))
        rest = self.all_pages(store, "tenant-a", limit=2, cursor=first.next_cursor)
        seen = [j.id for j in first.items] + [j.id for page in rest for j in page]
        assert sorted(seen) == sorted(j.id for j in old)
        assert len(seen) == len(set(seen))

    @pytest.mark.parametrize(
        "cursor",
        [
            "",
            "garbage",
            "!!!",
            "eyJub3QiOiJhIGN1cnNvciJ9",  # base64 of {"not":"a cursor"}
            "WzEsIm5vdC1hLXRpbWUiLCJqb2ItMSJd",  # [1,"not-a-time","job-1"]
            "WzksMS4wLCJqb2ItMSJd",  # [9,1.0,"job-1"]: unknown format
            "W1tbW1tbW1tbW1tbW1tbW1td",  # nested arrays
            "ü-not-ascii",
            "A" * 5000,
        ],
    )
    def test_garbage_cursor_raises_value_error(self, store: JobStore, cursor: str) -> None:
        with pytest.raises(ValueError):
            store.list_jobs("tenant-a", cursor=cursor)

    def test_cursor_from_one_status_filter_can_be_reused_safely(
        self, store: JobStore, clock: ManualClock
    ) -> None:
        # A cursor only says where to resume; it must never widen what the caller sees.
        for _ in range(3):
            store.create(self.make_job(clock))
        store.create(self.make_job(clock, tenant="tenant-b"))
        cursor = store.list_jobs("tenant-a", limit=1).next_cursor
        assert cursor is not None
        other = store.list_jobs("tenant-b", cursor=cursor).items
        assert all(j.tenant == "tenant-b" for j in other)

    # ------------------------------------------------------------------ list_pending
    def test_list_pending_oldest_first_across_tenants(
        self, store: JobStore, clock: ManualClock
    ) -> None:
        t0 = clock.now()
        statuses = [
            (JobStatus.RUNNING, "tenant-a", 5),
            (JobStatus.ACCEPTED, "tenant-b", 1),
            (JobStatus.SUCCEEDED, "tenant-a", 0),
            (JobStatus.QUEUED, "tenant-c", 3),
            (JobStatus.FAILED, "tenant-b", 2),
            (JobStatus.REJECTED, "tenant-c", 2),
            (JobStatus.QUEUED, "tenant-a", 3),
            (JobStatus.RUNNING, "tenant-b", 50),  # too recent
            (JobStatus.ACCEPTED, "tenant-a", 10),  # exactly at the bound: not before it
        ]
        jobs = [
            store.create(self.make_job(clock, status=s, tenant=t, updated_at=t0 + age))[0]
            for s, t, age in statuses
        ]
        pending = store.list_pending(updated_before=t0 + 10, limit=100).items
        expected = sorted(
            (j for j in jobs if not j.terminal and j.updated_at < t0 + 10),
            key=lambda j: (j.updated_at, j.id),
        )
        assert [j.id for j in pending] == [j.id for j in expected]
        assert [j.status for j in pending][:1] == [JobStatus.ACCEPTED]
        assert len(pending) == 4
        assert store.list_pending(updated_before=t0 + 10, limit=2).items == pending[:2]

    def test_list_pending_drops_jobs_once_terminal(
        self, store: JobStore, clock: ManualClock
    ) -> None:
        job, _ = store.create(self.make_job(clock, status=JobStatus.RUNNING))
        later = clock.now() + 1
        assert [j.id for j in store.list_pending(updated_before=later, limit=10).items] == [job.id]
        done = advance(job, JobStatus.FAILED, now=job.updated_at, error=JobError("x", "y"))
        assert done is not None
        assert store.compare_and_set(done) is not None
        assert store.list_pending(updated_before=later, limit=10).items == []

    # ------------------------------------------------------------------ lookup keys
    def test_claim_key_first_claim_wins(self, store: JobStore, clock: ManualClock) -> None:
        now = clock.now()
        assert store.lookup_key("k", now=now) is None
        assert store.claim_key("k", "job-1", expires_at=now + 60, now=now) == "job-1"
        assert store.claim_key("k", "job-2", expires_at=now + 60, now=now) == "job-1"
        assert store.claim_key("k", "job-1", expires_at=now + 60, now=now) == "job-1"
        assert store.lookup_key("k", now=now) == "job-1"
        assert store.lookup_key("other", now=now) is None

    def test_racing_claims_agree_on_one_winner(self, store: JobStore, clock: ManualClock) -> None:
        now = clock.now()
        n = self.race_threads
        results = race(
            n,
            lambda i: store.claim_key("hot", f"job-{i}", expires_at=now + 60, now=now),
            warmup=store.ping,
        )
        assert len(set(results)) == 1
        assert results[0] in {f"job-{i}" for i in range(n)}
        assert store.lookup_key("hot", now=now) == results[0]

    def test_expired_key_can_be_reclaimed(self, store: JobStore, clock: ManualClock) -> None:
        now = clock.now()
        store.claim_key("k", "job-1", expires_at=now + 60, now=now)
        assert store.lookup_key("k", now=now + 59.9) == "job-1"
        assert store.lookup_key("k", now=now + 60) is None  # expired at the instant
        assert store.claim_key("k", "job-2", expires_at=now + 120, now=now + 60) == "job-2"
        assert store.lookup_key("k", now=now + 61) == "job-2"
        assert store.claim_key("k", "job-3", expires_at=None, now=now + 61) == "job-2"

    def test_key_without_expiry_never_expires(self, store: JobStore, clock: ManualClock) -> None:
        now = clock.now()
        store.claim_key("forever", "job-1", expires_at=None, now=now)
        far = now + 100 * 365 * 86_400
        assert store.lookup_key("forever", now=far) == "job-1"
        assert store.claim_key("forever", "job-2", expires_at=None, now=far) == "job-1"

    def test_release_key_only_by_its_holder(self, store: JobStore, clock: ManualClock) -> None:
        now = clock.now()
        store.claim_key("k", "job-1", expires_at=now + 60, now=now)
        store.release_key("k", "job-2")
        assert store.lookup_key("k", now=now) == "job-1"
        store.release_key("k", "job-1")
        assert store.lookup_key("k", now=now) is None
        assert store.claim_key("k", "job-2", expires_at=now + 60, now=now) == "job-2"
        store.release_key("k", "job-1")  # a late release by the old holder changes nothing
        assert store.lookup_key("k", now=now) == "job-2"
        store.release_key("never-claimed", "job-1")

    # ------------------------------------------------------------------ batches
    def test_batch_round_trip(self, store: JobStore, clock: ManualClock) -> None:
        batch = self.make_batch(
            clock,
            item_errors={
                1: {"code": "invalid_url", "message": "not an http(s) URL"},
                4: {"code": "too_large", "message": "ü"},
            },
            job_ids=["j-0", None, "j-2", "j-3", None],
            expires_at=clock.now() + 3600,
        )
        stored, created = store.create_batch(batch)
        assert created is True
        assert stored == batch
        assert store.get_batch(batch.id) == batch
        assert store.get_batch("no-such-batch") is None

    def test_second_batch_create_returns_the_existing_one(
        self, store: JobStore, clock: ManualClock
    ) -> None:
        batch = self.make_batch(clock)
        store.create_batch(batch)
        stored, created = store.create_batch(
            Batch(batch.id, "tenant-a", "pat_other", ["x"], {}, clock.now() + 5)
        )
        assert created is False
        assert stored == batch

    # ------------------------------------------------------------------ expiry
    def test_expired_job_is_invisible_before_any_sweep(
        self, store: JobStore, clock: ManualClock
    ) -> None:
        now = clock.now()
        job, _ = store.create(self.make_job(clock, expires_at=now + 100, status=JobStatus.RUNNING))
        keeper, _ = store.create(self.make_job(clock, expires_at=None))
        clock.advance(99.5)
        assert store.get(job.id) == job
        clock.advance(0.5)  # the instant it expires
        assert store.get(job.id) is None
        assert [j.id for j in store.list_jobs("tenant-a").items] == [keeper.id]
        assert store.list_jobs("tenant-a", status=JobStatus.RUNNING).items == []
        assert store.list_pending(updated_before=clock.now() + 1, limit=10).items == [keeper]
        assert store.compare_and_set(job.replace(attempts=1)) is None

    def test_expired_job_counts_as_absent_for_create(
        self, store: JobStore, clock: ManualClock
    ) -> None:
        # Job ids derived from an idempotency key must be reusable once the old job is gone.
        old, _ = store.create(self.make_job(clock, expires_at=clock.now() + 10, extras={"n": 1}))
        clock.advance(10)
        fresh = old.replace(version=0, extras={"n": 2}, expires_at=clock.now() + 10)
        stored, created = store.create(fresh)
        assert created is True
        assert stored == fresh.replace(version=1)
        assert store.get(old.id) == stored

    def test_expired_batch_is_invisible(self, store: JobStore, clock: ManualClock) -> None:
        batch = self.make_batch(clock, expires_at=clock.now() + 10)
        store.create_batch(batch)
        clock.advance(10)
        assert store.get_batch(batch.id) is None
        replacement = self.make_batch(clock, id=batch.id, pattern_id="pat_new")
        assert store.create_batch(replacement) == (replacement, True)

    def test_delete_expired_removes_only_what_expired(
        self, store: JobStore, clock: ManualClock
    ) -> None:
        start = clock.now()
        gone, _ = store.create(self.make_job(clock, expires_at=start + 10))
        kept, _ = store.create(self.make_job(clock, expires_at=start + 1000))
        forever, _ = store.create(self.make_job(clock))
        store.claim_key("gone-key", gone.id, expires_at=start + 10, now=start)
        store.claim_key("kept-key", kept.id, expires_at=start + 1000, now=start)
        old_batch = self.make_batch(clock, expires_at=start + 10)
        new_batch = self.make_batch(clock, expires_at=None)
        store.create_batch(old_batch)
        store.create_batch(new_batch)

        clock.advance(20)
        sweep = store.delete_expired(now=clock.now())
        assert sweep.skipped == 0
        if self.sweeps_expired:
            assert sweep.removed == 3
        assert store.get(kept.id) == kept
        assert store.get(forever.id) == forever
        assert store.lookup_key("kept-key", now=clock.now()) == kept.id
        assert store.get_batch(new_batch.id) == new_batch
        if not self.sweeps_expired:
            return
        # Wind the clock back: rows merely hidden by the expiry filter would reappear.
        clock.advance(-20)
        assert store.get(gone.id) is None
        assert store.lookup_key("gone-key", now=clock.now()) is None
        assert store.get_batch(old_batch.id) is None
        assert store.delete_expired(now=start + 20).removed == 0

    # ------------------------------------------------------------------ unreadable records
    # A stored job no reader can decode is contained: reads of it say so by its id, scans
    # step over it and name it, the sweep still removes it once expired, and the store
    # can fail it in place. Nothing of its content ever leaves the store.
    def plant_unreadable(
        self,
        store: JobStore,
        clock: ManualClock,
        *,
        kind: str = "lone_surrogate",
        tenant: str = "tenant-a",
        created_at: float | None = None,
        updated_at: float | None = None,
        status: str = "running",
        expires_at: float | None = None,
    ) -> str:
        job_id = _new_id("bad")
        times = {
            "created_at": clock.now() if created_at is None else created_at,
            "updated_at": clock.now() if updated_at is None else updated_at,
        }
        record = job_record(job_id, tenant, status=status, expires_at=expires_at, **times)
        self.plant_raw(
            store,
            job_id=job_id,
            tenant=tenant,
            raw=unreadable_doc(kind, record),
            status=status,
            expires_at=expires_at,
            **times,
        )
        return job_id

    @pytest.mark.parametrize("kind", sorted(UNREADABLE_DOCS))
    def test_get_of_an_unreadable_job_names_it_and_nothing_else(
        self, store: JobStore, clock: ManualClock, kind: str
    ) -> None:
        bad = self.plant_unreadable(store, clock, kind=kind)
        with pytest.raises(UnreadableRecordError) as caught:
            store.get(bad)
        assert (caught.value.kind, caught.value.record_id) == ("job", bad)
        assert caught.value.__cause__ is None and caught.value.__suppress_context__
        assert SECRET not in str(caught.value) and "ud800" not in str(caught.value)

    def test_listing_steps_over_an_unreadable_job_and_names_it(
        self, store: JobStore, clock: ManualClock
    ) -> None:
        base = clock.now()
        older, _ = store.create(self.make_job(clock, created_at=base, status=JobStatus.RUNNING))
        newer, _ = store.create(self.make_job(clock, created_at=base + 2))
        bad = self.plant_unreadable(store, clock, created_at=base + 1)
        self.plant_unreadable(store, clock, tenant="tenant-b", created_at=base + 1)
        page = store.list_jobs("tenant-a")
        assert [j.id for j in page.items] == [newer.id, older.id]
        assert page.unreadable == (bad,)
        assert page.next_cursor is None
        running = store.list_jobs("tenant-a", status=JobStatus.RUNNING)
        assert ([j.id for j in running.items], running.unreadable) == ([older.id], (bad,))
        assert store.list_jobs("tenant-a", status=JobStatus.QUEUED).unreadable == ()
        assert store.list_jobs("tenant-c").unreadable == ()

    @pytest.mark.parametrize("limit", [1, 2, 3])
    def test_pages_around_unreadable_jobs_still_cover_every_job_once(
        self, store: JobStore, clock: ManualClock, limit: int
    ) -> None:
        # An unreadable row takes its place in the page (the cursor may stop on it), so it
        # is named exactly once and no readable job is skipped or repeated.
        base = clock.now()
        goods = [store.create(self.make_job(clock, created_at=base + i))[0] for i in (0, 1, 3, 5)]
        bads = [self.plant_unreadable(store, clock, created_at=base + i) for i in (2, 4, 6)]
        seen: list[str] = []
        named: list[str] = []
        cursor: str | None = None
        for _ in range(100):
            page = store.list_jobs("tenant-a", limit=limit, cursor=cursor)
            assert len(page.items) + len(page.unreadable) <= limit
            seen += [j.id for j in page.items]
            named += page.unreadable
            cursor = page.next_cursor
            if cursor is None:
                break
        assert seen == [j.id for j in reversed(goods)]
        assert named == list(reversed(bads))

    def test_pending_scan_steps_over_an_unreadable_job_and_names_it(
        self, store: JobStore, clock: ManualClock
    ) -> None:
        t0 = clock.now()
        first, _ = store.create(
            self.make_job(clock, tenant="tenant-b", status=JobStatus.RUNNING, updated_at=t0)
        )
        bad = self.plant_unreadable(store, clock, updated_at=t0 + 1)
        last, _ = store.create(self.make_job(clock, status=JobStatus.QUEUED, updated_at=t0 + 2))
        self.plant_unreadable(store, clock, updated_at=t0 + 1, status="succeeded")  # not pending
        scan = store.list_pending(updated_before=t0 + 10, limit=10)
        assert [j.id for j in scan.items] == [first.id, last.id]
        assert scan.unreadable == (bad,)
        assert store.list_pending(updated_before=t0 + 1, limit=10).unreadable == ()

    def test_fail_unreadable_fails_the_job_in_place(
        self, store: JobStore, clock: ManualClock
    ) -> None:
        created_at, expires_at = clock.now(), clock.now() + 500
        bad = self.plant_unreadable(store, clock, created_at=created_at, expires_at=expires_at)
        clock.advance(5)
        now = clock.now()
        failed = store.fail_unreadable(bad, now=now)
        assert failed is not None
        assert failed.status is JobStatus.FAILED
        assert failed.error is not None and failed.error.code == "unreadable_record"
        assert (failed.id, failed.tenant, failed.created_at) == (bad, "tenant-a", created_at)
        assert (failed.updated_at, failed.completed_at, failed.expires_at) == (
            now,
            now,
            expires_at,
        )
        assert SECRET not in repr(failed)
        assert store.get(bad) == failed
        page = store.list_jobs("tenant-a")
        assert (page.items, page.unreadable) == ([failed], ())
        assert store.list_jobs("tenant-a", status=JobStatus.FAILED).items == [failed]
        assert store.list_jobs("tenant-a", status=JobStatus.RUNNING).items == []
        scan = store.list_pending(updated_before=now + 100, limit=10)
        assert (scan.items, scan.unreadable) == ([], ())
        assert store.fail_unreadable(bad, now=now) is None  # it reads fine now
        # From here on it is a job like any other: compare-and-set works on it.
        saved = store.compare_and_set(failed.replace(attempts=1))
        assert saved is not None and saved.version == failed.version + 1

    def test_fail_unreadable_leaves_readable_missing_and_expired_jobs_alone(
        self, store: JobStore, clock: ManualClock
    ) -> None:
        good, _ = store.create(self.make_job(clock, status=JobStatus.RUNNING))
        assert store.fail_unreadable(good.id, now=clock.now()) is None
        assert store.get(good.id) == good
        assert store.fail_unreadable("no-such-job", now=clock.now()) is None
        assert store.get("no-such-job") is None
        lapsed = self.plant_unreadable(store, clock, expires_at=clock.now() + 1)
        clock.advance(1)
        assert store.fail_unreadable(lapsed, now=clock.now()) is None
        assert store.get(lapsed) is None  # still merely expired, not rewritten

    def test_sweep_removes_expired_unreadable_jobs(
        self, store: JobStore, clock: ManualClock
    ) -> None:
        start = clock.now()
        gone = self.plant_unreadable(store, clock, expires_at=start + 10)
        kept = self.plant_unreadable(store, clock, expires_at=start + 1000)
        clock.advance(20)
        sweep = store.delete_expired(now=clock.now())
        assert sweep.skipped == 0
        assert store.get(gone) is None
        assert store.list_jobs("tenant-a").unreadable == (kept,)
        with pytest.raises(UnreadableRecordError):
            store.get(kept)
        if not self.sweeps_expired:
            return
        assert sweep.removed == 1
        clock.advance(-20)
        assert store.get(gone) is None  # deleted, not hidden: a hidden one would raise

    # ------------------------------------------------------------------ large manifests
    # A manifest too large for the backend's item (`max_doc_bytes`, the longest document
    # the store keeps inline; None: any length) is kept in the blob store behind its job.
    # Every read gives it back as if it were inline, and no blob outlives the job version
    # that referenced it: not a replaced one, not an expired one, not a lost race's.
    @pytest.fixture
    def blobs(self) -> BlobStore:
        """The blob store the store under test keeps large manifests in."""
        return MemoryBlobs()

    def blob_keys(self, blobs: BlobStore) -> set[str]:
        """Every key `blobs` holds right now."""
        assert isinstance(blobs, MemoryBlobs)
        return blobs.stored_keys()

    @staticmethod
    def big_manifest(size: int, tag: str = "a") -> dict[str, Any]:
        """A manifest of a little more than `size` bytes of JSON, told apart by `tag`."""
        text = (tag * 1000)[:1000]
        return {"tag": tag, "pages": [{"n": i, "text": text} for i in range(size // 1000 + 1)]}

    def job_with_doc_of(self, clock: ManualClock, size: int, **changes: Any) -> Job:
        """A job whose stored document is exactly `size` bytes long."""
        job = self.make_job(clock, manifest={"text": ""}, **changes)
        pad = size - len(dump_job(job))
        assert pad >= 0
        return job.replace(manifest={"text": "x" * pad})

    @staticmethod
    def item_limit(store: JobStore) -> int:
        limit: int | None = getattr(store, "max_doc_bytes")  # noqa: B009 - not in the port
        if limit is None:
            pytest.skip("this store keeps a document of any length inline")
        return limit

    def test_a_2_mib_manifest_comes_back_from_every_read(
        self, store: JobStore, clock: ManualClock, blobs: BlobStore
    ) -> None:
        manifest = self.big_manifest(2 * 1024 * 1024)
        job = self.make_job(clock, status=JobStatus.SUCCEEDED, manifest=manifest)
        stored, created = store.create(job)
        assert created is True
        assert stored == job.replace(version=1)
        assert store.get(job.id) == stored
        assert store.list_jobs("tenant-a").items == [stored]
        assert store.list_jobs("tenant-a", status=JobStatus.SUCCEEDED).items == [stored]
        assert store.create(job.replace(extras={"again": True})) == (stored, False)
        saved = store.compare_and_set(stored.replace(attempts=1))
        assert saved == stored.replace(attempts=1, version=2)
        assert store.get(job.id) == saved
        running, _ = store.create(self.make_job(clock, status=JobStatus.RUNNING, manifest=manifest))
        assert store.list_pending(updated_before=clock.now() + 1, limit=10).items == [running]
        offloaded = getattr(store, "max_doc_bytes") is not None  # noqa: B009
        # One blob per job (the current version's) where the item could not hold it.
        assert len(self.blob_keys(blobs)) == (2 if offloaded else 0)

    def test_a_document_just_over_the_item_limit_keeps_its_manifest_in_the_blob_store(
        self, store: JobStore, clock: ManualClock, blobs: BlobStore
    ) -> None:
        limit = self.item_limit(store)
        at_limit = self.job_with_doc_of(clock, limit, status=JobStatus.SUCCEEDED)
        over = self.job_with_doc_of(clock, limit + 1, status=JobStatus.SUCCEEDED)
        # At the limit the backend itself must take the item: the declared limit is real.
        assert store.create(at_limit) == (at_limit.replace(version=1), True)
        assert self.blob_keys(blobs) == set()
        assert store.create(over) == (over.replace(version=1), True)
        (key,) = self.blob_keys(blobs)
        assert over.id not in key and over.tenant not in key  # blob names say nothing
        assert store.get(at_limit.id) == at_limit.replace(version=1)
        assert store.get(over.id) == over.replace(version=1)
        listed = store.list_jobs("tenant-a").items
        assert sorted(listed, key=lambda j: j.id) == sorted(
            [at_limit.replace(version=1), over.replace(version=1)], key=lambda j: j.id
        )

    def test_replacing_a_large_manifest_leaves_no_blob_behind(
        self, store: JobStore, clock: ManualClock, blobs: BlobStore
    ) -> None:
        limit = self.item_limit(store)
        job, _ = store.create(self.make_job(clock, manifest=self.big_manifest(limit, "a")))
        first = self.blob_keys(blobs)
        assert len(first) == 1
        second = store.compare_and_set(job.replace(manifest=self.big_manifest(limit, "b")))
        assert second is not None and store.get(job.id) == second
        assert len(self.blob_keys(blobs)) == 1 and self.blob_keys(blobs) != first
        small = store.compare_and_set(second.replace(manifest={"small": True}))
        assert small is not None and store.get(job.id) == small
        assert self.blob_keys(blobs) == set()
        # A stale writer changes nothing, and leaves nothing either.
        assert store.compare_and_set(second.replace(manifest=self.big_manifest(limit, "c"))) is None
        assert store.get(job.id) == small
        assert self.blob_keys(blobs) == set()

    def test_expiry_takes_the_manifest_blob_with_its_job(
        self, store: JobStore, clock: ManualClock, blobs: BlobStore
    ) -> None:
        limit = self.item_limit(store)
        start = clock.now()
        gone, _ = store.create(
            self.make_job(clock, manifest=self.big_manifest(limit, "g"), expires_at=start + 10)
        )
        kept, _ = store.create(
            self.make_job(clock, manifest=self.big_manifest(limit, "k"), expires_at=start + 1000)
        )
        forever, _ = store.create(self.make_job(clock, manifest=self.big_manifest(limit, "f")))
        held = self.blob_keys(blobs)
        assert len(held) == 3
        clock.advance(20)
        sweep = store.delete_expired(now=clock.now())
        assert sweep.skipped == 0
        # The manifest counts as removed; so does the job where the store sweeps itself.
        assert sweep.removed == (2 if self.sweeps_expired else 1)
        left = self.blob_keys(blobs)
        assert len(left) == 2 and left < held
        assert store.get(gone.id) is None
        assert (store.get(kept.id), store.get(forever.id)) == (kept, forever)
        assert store.delete_expired(now=clock.now()).removed == 0

    def test_racing_writers_of_large_manifests_leave_only_the_winners_blob(
        self, store: JobStore, clock: ManualClock, blobs: BlobStore
    ) -> None:
        limit = self.item_limit(store)
        job_id = _new_id("job")

        def create(i: int) -> tuple[Job, bool]:
            job = self.make_job(clock, id=job_id, manifest=self.big_manifest(limit, f"c{i}"))
            return store.create(job)

        created = race(4, create, warmup=store.ping)
        (winner,) = [job for job, won in created if won]
        assert store.get(job_id) == winner
        assert len(self.blob_keys(blobs)) == 1

        def update(i: int) -> Job | None:
            return store.compare_and_set(winner.replace(manifest=self.big_manifest(limit, f"u{i}")))

        (saved,) = [job for job in race(4, update, warmup=store.ping) if job is not None]
        assert store.get(job_id) == saved
        assert len(self.blob_keys(blobs)) == 1

    @pytest.mark.parametrize("damage", ["deleted", "altered"])
    def test_a_job_whose_manifest_blob_is_damaged_is_contained_like_any_unreadable_job(
        self, store: JobStore, clock: ManualClock, blobs: BlobStore, damage: str
    ) -> None:
        limit = self.item_limit(store)
        good, _ = store.create(self.make_job(clock, status=JobStatus.SUCCEEDED))
        job, _ = store.create(
            self.make_job(clock, status=JobStatus.RUNNING, manifest=self.big_manifest(limit))
        )
        (key,) = self.blob_keys(blobs)
        if damage == "deleted":
            getattr(blobs, "delete")(key)  # noqa: B009 - not in this branch's blob port
        else:
            blobs.put(key, b'{"tag": "not the stored manifest"}', "application/json")
        with pytest.raises(UnreadableRecordError) as caught:
            store.get(job.id)
        assert (caught.value.kind, caught.value.record_id) == ("job", job.id)
        page = store.list_jobs("tenant-a")
        assert (page.items, page.unreadable) == ([good], (job.id,))
        scan = store.list_pending(updated_before=clock.now() + 1, limit=10)
        assert (scan.items, scan.unreadable) == ([], (job.id,))
        failed = store.fail_unreadable(job.id, now=clock.now())
        assert failed is not None and failed.error is not None
        assert failed.error.code == "unreadable_record"
        assert store.get(job.id) == failed
        assert self.blob_keys(blobs) == set()

    # ------------------------------------------------------------------ readiness
    def test_ping(self, store: JobStore) -> None:
        store.ping()


class BulkStoreContract(StoreContract):
    """The StoreContract plus the optional BulkJobStore methods, for stores offering
    them: a bulk call must mean exactly what the single calls mean."""

    @staticmethod
    def bulk(store: JobStore) -> BulkJobStore:
        assert isinstance(store, BulkJobStore), "this store does not offer the bulk calls"
        return store

    def test_create_many_is_create_for_each(self, store: JobStore, clock: ManualClock) -> None:
        earlier = self.make_job(clock, extras={"who": "earlier"})
        store.create(earlier)
        clock.advance(1)
        fresh = [self.make_job(clock) for _ in range(3)]
        repeat = earlier.replace(extras={"who": "again"}, updated_at=clock.now())
        results = self.bulk(store).create_many([fresh[0], repeat, fresh[1], fresh[2], fresh[1]])
        assert results == [
            (fresh[0].replace(version=1), True),
            (earlier.replace(version=1), False),
            (fresh[1].replace(version=1), True),
            (fresh[2].replace(version=1), True),
            (fresh[1].replace(version=1), False),  # a duplicate within the call
        ]
        assert [store.get(job.id) for job in fresh] == [job.replace(version=1) for job in fresh]

    def test_claim_many_is_claim_key_for_each(self, store: JobStore, clock: ManualClock) -> None:
        now = clock.now()
        store.claim_key("held", "first", expires_at=now + 60, now=now)
        store.claim_key("lapsed", "old", expires_at=now - 1, now=now)
        holders = self.bulk(store).claim_many(
            [
                ("held", "j1", now + 60),
                ("free", "j2", None),
                ("lapsed", "j3", now + 60),
                ("free", "j4", None),
            ],
            now=now,
        )
        assert holders == ["first", "j2", "j3", "j2"]
        assert [store.lookup_key(k, now=now) for k in ("held", "free", "lapsed")] == [
            "first",
            "j2",
            "j3",
        ]
