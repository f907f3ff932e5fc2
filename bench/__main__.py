"""`make bench`: the figures the issues ask for, printed as a table.

1. Warm cost of GET /v1/jobs/{id} through the HTTP surface (HttpApp over SQLite) against
   a floor doing the bare minimum a handler must do (store.get + json.dumps); and the
   same GET over loopback through the real `imggo-fn serve` server (p50/p99, one
   keep-alive connection) against that same HttpApp.handle call made in-process.
2. Batch ingest of N images through the simulator (in its own process, 20 ms added to
   every ingest) at concurrency 16 (calls in flight to ImgGo), on the embedded stores
   (SQLite jobs and blobs), against the ideal N x latency / concurrency and against a
   sequential one-at-a-time loop; then the same batch on in-memory stores and the same
   ingests through the ImgGo client alone, to show where the rest of the time goes.
3. Peak RSS of this process.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from bench.images import distinct_pngs
from bench.shared_ingest import bench_shared_ingest
from bench.simproc import simulator_process
from core.api.app import HttpApp
from core.api.auth import hash_key
from core.api.http import Headers, Request
from core.bootstrap import build_services
from core.config import Settings
from core.domain.job import Job, JobSource, JobStatus
from core.ports import ImageUpload
from core.service.batch import BatchItem, run_batch


def _import_ms(modules: str, runs: int = 7) -> float:
    """Median time to import `modules` in a fresh interpreter (measured inside it)."""
    code = (
        "import time; t = time.perf_counter(); import "
        + modules
        + "; print((time.perf_counter() - t) * 1000)"
    )
    samples = [
        float(
            subprocess.run(
                [sys.executable, "-c", code], capture_output=True, text=True, check=True
            ).stdout
        )
        for _ in range(runs)
    ]
    return statistics.median(samples)


def bench_imports() -> list[tuple[str, str]]:
    core_ms = _import_ms("core.api.app, core.bootstrap")
    httpx_ms = _import_ms("httpx")
    return [
        ("import the core HTTP surface + bootstrap (fresh process)", f"{core_ms:.0f} ms"),
        ("baseline: import httpx alone", f"{httpx_ms:.0f} ms"),
        ("ratio core / httpx", f"{core_ms / httpx_ms:.2f} x"),
    ]


def _per_call_us(fn: Callable[[], object], repeat: int, rounds: int = 5) -> float:
    best = []
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(repeat):
            fn()
        best.append((time.perf_counter() - start) / repeat * 1e6)
    return statistics.median(best)


def bench_get(tmp: Path) -> list[tuple[str, str]]:
    settings = Settings(
        store_url=f"sqlite:///{tmp}/get.db",
        data_dir=str(tmp),
        imggo_api_key="unused",
        api_key_hashes={hash_key("k"): "t"},
    )
    services = build_services(settings)
    now = time.time()
    job = Job(
        id="job-1",
        tenant="t",
        pattern_id="invoice",
        source=JobSource("url", url="https://x/a.png"),
        created_at=now,
        updated_at=now,
        status=JobStatus.SUCCEEDED,
        manifest={"total": 12.5, "lines": [{"sku": "A", "qty": 2}] * 5},
    )
    services.store.create(job)
    app = HttpApp(services)
    request = Request("GET", "/v1/jobs/job-1", Headers({"Authorization": "Bearer k"}))

    def surface() -> object:
        response = app.handle(request)
        assert response.status == 200
        return response

    def floor() -> object:
        stored = services.store.get("job-1")
        assert stored is not None
        return json.dumps(stored.to_record()).encode()

    surface(), floor()  # warm
    surface_us = _per_call_us(surface, 2000)
    floor_us = _per_call_us(floor, 2000)
    services.close()
    return [
        ("GET /v1/jobs/{id} through HttpApp (warm, SQLite)", f"{surface_us:.1f} us"),
        ("floor: store.get + json.dumps", f"{floor_us:.1f} us"),
        ("ratio surface / floor", f"{surface_us / floor_us:.2f} x"),
    ]


def _percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def bench_loopback_get(tmp: Path, requests: int = 2000) -> list[tuple[str, str]]:
    """GET /v1/jobs/{id} through `imggo-fn serve`'s server on loopback, per request,
    against the same HttpApp.handle call in-process (what the server adds: the socket
    round trip, HTTP parsing, the WSGI translation)."""
    import http.client

    from imggo_cli.server import LocalServer

    settings = Settings(
        store_url=f"sqlite:///{tmp}/loopback.db",
        data_dir=str(tmp),
        imggo_api_key="unused",
        api_key_hashes={hash_key("k"): "t"},
    )
    services = build_services(settings)
    now = time.time()
    services.store.create(
        Job(
            id="job-1",
            tenant="t",
            pattern_id="invoice",
            source=JobSource("url", url="https://x/a.png"),
            created_at=now,
            updated_at=now,
            status=JobStatus.SUCCEEDED,
            manifest={"total": 12.5, "lines": [{"sku": "A", "qty": 2}] * 5},
        )
    )
    app = HttpApp(services)
    server = LocalServer(app).start()
    host, port = server.url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port))
    headers = {"Authorization": "Bearer k"}

    def over_http() -> None:
        conn.request("GET", "/v1/jobs/job-1", headers=headers)
        response = conn.getresponse()
        response.read()
        assert response.status == 200

    def in_process() -> None:
        request = Request("GET", "/v1/jobs/job-1", Headers(headers))
        assert app.handle(request).status == 200

    def timed(fn: Callable[[], None]) -> list[float]:
        for _ in range(50):  # warm
            fn()
        samples = []
        for _ in range(requests):
            start = time.perf_counter()
            fn()
            samples.append((time.perf_counter() - start) * 1000)
        return samples

    try:
        http_ms = timed(over_http)
        local_ms = timed(in_process)
    finally:
        conn.close()
        server.stop()
        services.close()
    p50, p99 = _percentile(http_ms, 0.5), _percentile(http_ms, 0.99)
    b50, b99 = _percentile(local_ms, 0.5), _percentile(local_ms, 0.99)
    return [
        (
            f"loopback GET /v1/jobs/{{id}} via serve ({requests} on one keep-alive connection)",
            f"p50 {p50:.2f} ms, p99 {p99:.2f} ms",
        ),
        ("  work: socket round trip + waitress + WSGI translation + HttpApp.handle", ""),
        (
            "baseline: HttpApp.handle in-process, same request and job",
            f"p50 {b50:.3f} ms, p99 {b99:.3f} ms",
        ),
        ("  work: auth, route, SQLite read, JSON - no socket, no HTTP parsing", ""),
        ("ratio serve / in-process (p50)", f"{p50 / b50:.1f} x"),
    ]


def _client_only(url: str, images: list[bytes], concurrency: int) -> float:
    from concurrent.futures import ThreadPoolExecutor

    from core.adapters.imggo.client import ImggoClient
    from core.ports import Submission

    client = ImggoClient(url, "imggo_test_simulator")
    client.ping()
    run = time.time_ns()

    def one(i: int) -> None:
        upload = ImageUpload(images[i], f"{i}.png", "image/png")
        client.submit(Submission("image-facts", f"client-{run}-{i}", upload=upload))

    start = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(one, range(len(images))))
    elapsed = time.perf_counter() - start
    client.close()
    return elapsed


def bench_batch(tmp: Path, count: int, latency_s: float, concurrency: int) -> list[tuple[str, str]]:
    images = distinct_pngs(count * 2)
    rows: list[tuple[str, str]] = []
    # Jobs finish after the run: ImgGo's workers are not its API servers, and in the
    # simulator they would share a GIL with the API threads being measured.
    with simulator_process("--ingest-latency-s", str(latency_s), "--processing-s", "120") as url:
        base = Settings(
            store_url=f"sqlite:///{tmp}/batch.db",
            data_dir=str(tmp),
            imggo_base_url=url,
            imggo_api_key="imggo_test_simulator",
            batch_max_items=count,
        )
        services = build_services(base)
        services.imggo.ping()
        items = [
            BatchItem(upload=ImageUpload(d, f"{i}.png", "image/png"))
            for i, d in enumerate(images[:count])
        ]
        start = time.perf_counter()
        result = run_batch(services, "bench", "image-facts", items, concurrency=concurrency)
        batch_s = time.perf_counter() - start
        assert all(o.ok for o in result.items), [o.error for o in result.items if not o.ok][:3]

        # Where the time goes: the same batch on the in-memory store (no SQLite, no
        # files), and the same ingests through the ImgGo client alone (no store at all).
        memory = build_services(replace(base, store_url="memory://", blob_url="memory://"))
        start = time.perf_counter()
        run_batch(memory, "bench-memory", "image-facts", items, concurrency=concurrency)
        memory_s = time.perf_counter() - start
        memory.close()
        client_s = _client_only(url, images[:count], concurrency)

        seq_items = [
            BatchItem(upload=ImageUpload(d, f"{i}.png", "image/png"))
            for i, d in enumerate(images[count:])
        ]
        start = time.perf_counter()
        for item in seq_items:
            run_batch(services, "bench", "image-facts", [item], concurrency=1)
        seq_s = time.perf_counter() - start
        services.close()
    ideal_s = count * latency_s / concurrency
    rows += [
        (
            f"batch of {count}, {latency_s * 1000:.0f} ms latency, concurrency {concurrency}",
            f"{batch_s:.2f} s ({count / batch_s:.0f} images/s)",
        ),
        ("ideal N x latency / concurrency", f"{ideal_s:.2f} s"),
        ("efficiency vs ideal", f"{ideal_s / batch_s * 100:.0f} %"),
        ("  same batch on the in-memory store", f"{memory_s:.2f} s ({ideal_s / memory_s:.0%})"),
        ("  same ingests, ImgGo client alone", f"{client_s:.2f} s ({ideal_s / client_s:.0%})"),
        ("sequential one-at-a-time loop", f"{seq_s:.2f} s"),
        ("speed-up vs sequential", f"{seq_s / batch_s:.1f} x"),
    ]
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--latency", type=float, default=0.020)
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()
    rows: list[tuple[str, str]] = []
    with tempfile.TemporaryDirectory() as tmp:
        rows += bench_imports()
        rows += bench_get(Path(tmp))
        rows += bench_loopback_get(Path(tmp))
        rows += bench_batch(Path(tmp), args.count, args.latency, args.concurrency)
        # Three CLI ingests sharing one data dir and one plan (bench/shared_ingest.py).
        rows += bench_shared_ingest(Path(tmp))
    rss_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    rows.append(("peak RSS of the bench process", f"{rss_mib:.0f} MiB"))
    width = max(len(name) for name, _ in rows)
    print(f"{'measure'.ljust(width)}  value")
    for name, value in rows:
        print(f"{name.ljust(width)}  {value}")


if __name__ == "__main__":
    main()
