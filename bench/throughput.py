"""Plan-limited throughput: what a user's batch gets out of an ImgGo plan.

N images as batches through W worker processes (`imggo-fn serve`, each with its local
queue) sharing one SQLite store, against the simulator in its own process at the plan's
limit (requests a minute, per key, as ImgGo counts them) with the processing latency a
real ImgGo has. Results come back by signed webhook (every worker's URL is registered,
as a deployment's is), so each job needs exactly one call: its ingest. What the plan
allows is then `limit` jobs a minute; the figure is the share of that the run reached,
from the first submission to the last job finished.

The same run, with the same images, workers and plan, without the shared budget
(IMGGO_FN_RATE_BUDGET=0: each call only backs off on ImgGo's 429s) is printed beside it.
Also per run: calls ImgGo answered and their share of 429s (from the simulator's
`/_sim/stats`), jobs lost (not finished when the run gave up) and duplicated (ImgGo
jobs created beyond one per job).

    python -m bench.throughput [--images 1000] [--workers 4] [--limit 600] [--latency 0.5-2]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import secrets
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, ExitStack, contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx

from bench.images import distinct_pngs
from bench.simproc import listening_process, simulator_process
from core.adapters.stores import open_store
from core.domain.job import JobStatus
from imggo_simulator import DEMO_API_KEY

PATTERN = "image-facts"
API_KEY = "bench-throughput-key"
CALLS_PER_JOB = 1  # the ingest; the result arrives by webhook


@dataclass(frozen=True)
class Run:
    label: str
    images: int
    succeeded: int
    failed: int
    lost: int  # still pending when the run gave up
    duplicated: int  # ImgGo jobs created beyond one per job
    wall_s: float
    requests: int
    rate_limited: int
    limit: int

    @property
    def per_minute(self) -> float:
        return self.succeeded / self.wall_s * 60 if self.wall_s else 0.0

    @property
    def share_of_plan(self) -> float:
        return self.per_minute / (self.limit / CALLS_PER_JOB)

    @property
    def share_429(self) -> float:
        return self.rate_limited / self.requests if self.requests else 0.0


@contextmanager
def _image_server(images: Sequence[bytes]) -> Iterator[str]:
    """The images by URL on loopback, as a user's bucket would serve them to ImgGo."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            found = re.fullmatch(r"/img/(\d+)\.png", self.path)
            if found is None or int(found.group(1)) >= len(images):
                self.send_error(404)
                return
            body = images[int(found.group(1))]
            self.send_response(200)
            self.send_header("Content-Type", "image/png")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def _worker(env: dict[str, str]) -> AbstractContextManager[str]:
    """One worker: `imggo-fn serve` on a free port, with its local queue."""
    argv = [sys.executable, "-m", "imggo_cli.main", "serve", "--port", "0", "--grace", "1"]
    return listening_process(argv, env, quiet=True)


def run_once(
    label: str,
    *,
    images: int,
    workers: int,
    limit: int,
    latency: str,
    budget: bool,
    give_up_s: float,
) -> Run:
    pngs = distinct_pngs(images)
    secret = secrets.token_urlsafe(24)
    with ExitStack() as stack:
        data_dir = stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-tp-"))
        sim = stack.enter_context(
            simulator_process("--rate-limit", str(limit), "--latency", latency, "--seed", "7")
        )
        files = stack.enter_context(_image_server(pngs))
        env = {
            **os.environ,
            "IMGGO_FN_DATA_DIR": data_dir,
            "IMGGO_BASE_URL": sim,
            "IMGGO_API_KEY": DEMO_API_KEY,
            "IMGGO_WEBHOOK_SECRET": secret,
            "IMGGO_FN_API_KEYS": "bench=" + hashlib.sha256(API_KEY.encode()).hexdigest(),
            "IMGGO_FN_SSRF_ALLOW": "127.0.0.1",
            "IMGGO_FN_RESOLVE_NAMES": "0",
            "IMGGO_FN_RATE_BUDGET": "1" if budget else "0",
            "IMGGO_FN_BATCH_MAX_ITEMS": str(images),
        }
        urls = [stack.enter_context(_worker(env)) for _ in range(workers)]
        for url in urls:  # as a deployment registers its webhook URL at ImgGo
            httpx.post(
                f"{sim}/api/webhooks",
                headers={"Authorization": f"Bearer {DEMO_API_KEY}"},
                json={
                    "url": f"{url}/v1/webhooks/imggo",
                    "events": ["job.succeeded"],
                    "secret": secret,
                },
                timeout=5,
            ).raise_for_status()
        store = open_store(f"sqlite:///{data_dir}/imggo-fn.db")
        job_ids: list[str] = []
        started = time.monotonic()
        per_worker = -(-images // workers)
        for w, url in enumerate(urls):
            items = [
                {"image_url": f"{files}/img/{i}.png"}
                for i in range(w * per_worker, min(images, (w + 1) * per_worker))
            ]
            answer = httpx.post(
                f"{url}/v1/batches",
                headers={"Authorization": f"Bearer {API_KEY}"},
                json={"pattern_id": PATTERN, "items": items},
                timeout=60,
            )
            answer.raise_for_status()
            job_ids += [item["job_id"] for item in answer.json()["items"]]
        finished_at = started
        statuses: dict[str, JobStatus] = {}
        while time.monotonic() - started < give_up_s:
            for job_id in job_ids:
                if job_id in statuses:
                    continue
                job = store.get(job_id)
                if job is not None and job.terminal:
                    statuses[job_id] = job.status
                    finished_at = time.monotonic()
            if len(statuses) == len(job_ids):
                break
            time.sleep(0.25)
        stats = httpx.get(f"{sim}/_sim/stats", timeout=5).json()["totals"]
        store.close()
    succeeded = sum(1 for s in statuses.values() if s is JobStatus.SUCCEEDED)
    return Run(
        label=label,
        images=images,
        succeeded=succeeded,
        failed=len(statuses) - succeeded,
        lost=len(job_ids) - len(statuses),
        duplicated=max(0, int(stats["jobs_created"]) - len(job_ids)),
        wall_s=finished_at - started,
        requests=int(stats["requests"]),
        rate_limited=int(stats["rate_limited"]),
        limit=limit,
    )


def table(runs: Sequence[Run]) -> list[str]:
    lines = [
        f"{'run':<24} {'ok':>5} {'lost':>5} {'dup':>4} {'wall':>7} {'jobs/min':>9} "
        f"{'of plan':>8} {'calls':>6} {'429s':>6}"
    ]
    for r in runs:
        lines.append(
            f"{r.label:<24} {r.succeeded:>5} {r.lost:>5} {r.duplicated:>4} {r.wall_s:>6.1f}s "
            f"{r.per_minute:>9.0f} {r.share_of_plan:>7.1%} {r.requests:>6} {r.share_429:>6.1%}"
        )
    return lines


def run(
    *, images: int = 1000, workers: int = 4, limit: int = 600, latency: str = "0.5-2"
) -> list[Run]:
    # Long enough for the plan's minimum several times over; a run that has not finished
    # by then reports what it left as lost.
    give_up_s = max(60.0, 3 * 60 * images * CALLS_PER_JOB / limit + 30)
    common = {"images": images, "workers": workers, "limit": limit, "latency": latency}
    return [
        run_once("shared budget", budget=True, give_up_s=give_up_s, **common),
        run_once("no budget (429 backoff)", budget=False, give_up_s=give_up_s, **common),
    ]


def describe(images: int, workers: int, limit: int, latency: str) -> str:
    minimum = 60 * images * CALLS_PER_JOB / limit
    return (
        f"{images} images as batches through {workers} `imggo-fn serve` workers sharing one "
        f"SQLite store; the simulator at {limit} requests/min per key, {latency} s per job; "
        f"results by webhook, so {CALLS_PER_JOB} call per job: the plan allows "
        f"{limit} jobs/min ({minimum:.0f} s for them all). Goals: >= 95 % of plan, "
        f"<= 1 % 429s, 0 lost or duplicated."
    )


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.throughput")
    parser.add_argument("--images", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--limit", type=int, default=600)
    parser.add_argument("--latency", default="0.5-2")
    args = parser.parse_args(argv)
    print(describe(args.images, args.workers, args.limit, args.latency))
    for line in table(
        run(images=args.images, workers=args.workers, limit=args.limit, latency=args.latency)
    ):
        print(line)


if __name__ == "__main__":
    main()
