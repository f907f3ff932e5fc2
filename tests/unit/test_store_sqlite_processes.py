"""SqliteJobStore across processes: what threads in one process cannot prove.

`serve` workers, the CLI and a reconciler may all open the same file, so create-if-absent
and compare-and-set must hold between processes too (SQLite file locks, not our
threading.Lock). Spawned, not forked: each child opens the store from scratch, the way
a separate program would, and both race to create the schema of a new file as well.
"""

from __future__ import annotations

import multiprocessing
import queue
import traceback
from multiprocessing.context import SpawnContext
from multiprocessing.synchronize import Barrier
from pathlib import Path
from typing import Any

import pytest

from core.adapters.stores.sqlite import SqliteJobStore
from core.domain.job import Job, JobSource

PROCESSES = 2
ROUNDS = 25
INCREMENTS = 100  # per process


def _job(job_id: str, **changes: Any) -> Job:
    return Job(
        id=job_id,
        tenant="tenant-a",
        pattern_id="pat_invoice",
        source=JobSource(kind="url", url="https://img.example/a.png"),
        created_at=1_700_000_000.0,
        updated_at=1_700_000_000.0,
        **changes,
    )


def _race_creates(index: int, path: str, barrier: Barrier, results: Any) -> None:
    try:
        barrier.wait()  # open the brand-new file together: the schema is raced too
        store = SqliteJobStore(path)
        for round_ in range(ROUNDS):
            barrier.wait()
            stored, created = store.create(_job(f"job-{round_}", extras={"proc": index}))
            results.put(("ok", round_, index, created, stored.extras["proc"], stored.version))
        store.close()
    except BaseException:
        results.put(("error", traceback.format_exc()))


def _race_increments(index: int, path: str, barrier: Barrier, results: Any) -> None:
    try:
        store = SqliteJobStore(path)
        retries = 0
        barrier.wait()
        for _ in range(INCREMENTS):
            while True:
                current = store.get("counter")
                assert current is not None
                if store.compare_and_set(current.replace(attempts=current.attempts + 1)):
                    break
                retries += 1
        store.close()
        results.put(("ok", index, retries))
    except BaseException:
        results.put(("error", traceback.format_exc()))


def _run(ctx: SpawnContext, target: Any, path: Path, expected_messages: int) -> list[Any]:
    barrier = ctx.Barrier(PROCESSES, timeout=60)
    results = ctx.Queue()
    procs = [
        ctx.Process(target=target, args=(i, str(path), barrier, results), daemon=True)
        for i in range(PROCESSES)
    ]
    for proc in procs:
        proc.start()
    messages: list[Any] = []
    finished = False
    try:
        while len(messages) < expected_messages:
            try:
                message = results.get(timeout=60)
            except queue.Empty:
                pytest.fail("a worker process went silent")
            if message[0] == "error":
                pytest.fail(f"worker failed:\n{message[1]}")
            messages.append(message[1:])
        finished = True
    finally:
        for proc in procs:
            # After a failure the others may wait at the barrier for ever: stop them now.
            proc.join(timeout=30 if finished else 0)
            if proc.is_alive():
                proc.terminate()
                proc.join()
    assert all(proc.exitcode == 0 for proc in procs)
    return messages


@pytest.fixture
def spawn() -> SpawnContext:
    return multiprocessing.get_context("spawn")


def test_processes_racing_create_have_one_winner_per_job(
    spawn: SpawnContext, tmp_path: Path
) -> None:
    path = tmp_path / "nested" / "jobs.db"
    messages = _run(spawn, _race_creates, path, PROCESSES * ROUNDS)
    for round_ in range(ROUNDS):
        answers = [m for m in messages if m[0] == round_]
        assert len(answers) == PROCESSES
        winners = [proc for _, proc, created, _, _ in answers if created]
        assert len(winners) == 1, f"round {round_}: winners {winners}"
        assert {seen for *_, seen, _ in answers} == {winners[0]}
        assert {version for *_, version in answers} == {1}

    store = SqliteJobStore(path)
    stored = store.get("job-0")
    assert stored is not None
    assert stored.version == 1
    store.close()


def test_processes_racing_cas_lose_no_update(spawn: SpawnContext, tmp_path: Path) -> None:
    path = tmp_path / "jobs.db"
    store = SqliteJobStore(path)
    store.create(_job("counter"))
    messages = _run(spawn, _race_increments, path, PROCESSES)

    final = store.get("counter")
    assert final is not None
    assert final.attempts == PROCESSES * INCREMENTS
    assert final.version == 1 + PROCESSES * INCREMENTS
    assert len(messages) == PROCESSES
    store.close()
