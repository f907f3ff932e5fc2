"""Several `imggo-fn ingest` processes at once on one data dir, against one ImgGo plan.

What issue #12 asks of the CLI, tried as a user would: one simulator process with a
plan limit (`--rate-limit 120`, each job taking 0.5-2 s), three ingest processes
started together, sharing one data dir (one SQLite store, so one rate budget), 60
distinct images each. It reports how the jobs ended, the calls ImgGo saw (from its
GET /_sim/stats) and how many it answered 429, and the wall time against the least
the plan allows: every image needs an ingest and a poll, and every process checks the
patterns once, so at `limit` calls a minute no run can be shorter than
calls needed / limit.

`python -m bench.shared_ingest [--processes 3] [--images 60] [--limit 120]`; `make bench`
runs it with those defaults.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import httpx

from bench.images import distinct_pngs
from bench.simproc import simulator_process
from core.adapters.stores import open_store
from core.config import sqlite_store_url
from imggo_simulator import DEMO_API_KEY, key_id

WAIT_S = 900  # how long the bench waits for each ingest: far more than the plan needs
ROOT = Path(__file__).resolve().parents[1]


def _env(url: str, data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("IMGGO_", "XDG_"))}
    return env | {
        "IMGGO_API_KEY": DEMO_API_KEY,
        "IMGGO_BASE_URL": url,
        "IMGGO_FN_DATA_DIR": str(data_dir),
    }


def _images(folder: Path, processes: int, per_process: int) -> list[list[str]]:
    folder.mkdir()
    pngs = distinct_pngs(processes * per_process)
    groups: list[list[str]] = []
    for p in range(processes):
        group = []
        for i in range(per_process):
            path = folder / f"p{p}-{i:03d}.png"
            path.write_bytes(pngs[p * per_process + i])
            group.append(str(path))
        groups.append(group)
    return groups


def _job_statuses(data_dir: Path) -> Counter[str]:
    store = open_store(sqlite_store_url(str(data_dir)))
    statuses: Counter[str] = Counter()
    cursor = None
    while True:
        page = store.list_jobs("local", limit=200, cursor=cursor)
        statuses.update(job.status.value for job in page.items)
        if page.next_cursor is None:
            return statuses
        cursor = page.next_cursor


def bench_shared_ingest(
    tmp: Path, *, processes: int = 3, per_process: int = 60, limit: int = 120
) -> list[tuple[str, str]]:
    data_dir = tmp / "shared-data"
    groups = _images(tmp / "shared-images", processes, per_process)
    sim_args = ("--rate-limit", str(limit), "--latency", "0.5-2", "--seed", "1")
    with simulator_process(*sim_args) as url:
        env = _env(url, data_dir)
        options = ["-p", "image-facts"]  # as a new user would run it: no --wait
        logs = [(tmp / f"ingest-{p}.out").open("w") for p in range(processes)]
        started = time.perf_counter()
        procs = [
            subprocess.Popen(
                [sys.executable, "-m", "imggo_cli.main", "ingest", *group, *options],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=ROOT,
            )
            for group, log in zip(groups, logs, strict=True)
        ]
        codes = [proc.wait(timeout=WAIT_S + 60) for proc in procs]
        wall_s = time.perf_counter() - started
        for log in logs:
            log.close()
        # The key's own counts: what its plan was charged with (health checks are not).
        counts = httpx.get(f"{url}/_sim/stats", trust_env=False).json()["keys"]
        stats = counts[key_id(DEMO_API_KEY)]
    statuses = _job_statuses(data_dir)
    jobs = processes * per_process
    needed = 2 * jobs + processes  # an ingest and a poll per image, a pattern check each
    plan_s = needed / limit * 60
    calls, limited = stats["requests"], stats["rate_limited"]
    left = jobs - statuses["succeeded"] - statuses["failed"] - statuses["rejected"]
    return [
        (
            f"{processes} x `imggo-fn ingest` of {per_process} images, one data dir, "
            f"--rate-limit {limit}, jobs 0.5-2 s",
            f"exit codes {' '.join(map(str, codes))}",
        ),
        (
            "  jobs succeeded / failed / left unfinished",
            f"{statuses['succeeded']} / {statuses['failed'] + statuses['rejected']} / {left}"
            f" (accepted: {statuses['accepted']})",
        ),
        (
            "  calls ImgGo saw (ingests + polls + pattern checks)",
            f"{calls} ({stats['ingests']} + {stats['polls']} + "
            f"{calls - stats['ingests'] - stats['polls']}); {calls / jobs:.2f} a job",
        ),
        ("  answered 429", f"{limited} ({limited / max(calls, 1):.1%})"),
        ("  wall time", f"{wall_s:.1f} s"),
        (f"  plan's minimum: {needed} calls at {limit}/min", f"{plan_s:.1f} s"),
        ("  ratio wall / minimum", f"{wall_s / plan_s:.3f}"),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.shared_ingest")
    parser.add_argument("--processes", type=int, default=3)
    parser.add_argument("--images", type=int, default=60, help="per process")
    parser.add_argument("--limit", type=int, default=120, help="the plan: calls a minute")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        rows = bench_shared_ingest(
            Path(tmp), processes=args.processes, per_process=args.images, limit=args.limit
        )
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        print(f"{name.ljust(width)}  {value}")


if __name__ == "__main__":
    main()
