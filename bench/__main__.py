"""`make bench`: the figures the issues ask for, each against a baseline measured in the
same run that does the same work, and what work both sides did. Sections:

0. Plan-limited throughput (bench.throughput): 1000 images through 4 worker processes
   sharing one store, against the simulator at 600 requests/min per key with 0.5-2 s
   processing, with the shared rate budget and without it: the share of the plan
   reached, the share of calls answered 429, jobs lost or duplicated. Then three
   `imggo-fn ingest` processes of 60 images each on one data dir against the
   simulator's --rate-limit 120 (bench.shared_ingest), against the plan's minimum.
1. Cold start, every cloud (bench.cold_start_aws, _gcp, _azure; the method is in
   bench.cold_start): each HTTP function's import + first POST /v1/jobs in a fresh
   process against a floor making the same calls by hand, with the calls counted.
   Then the import cost of the core alone, in fresh processes.
2. Warm: the AWS function's GET /v1/jobs/{id} against a bare Powertools resolver doing
   the same key check and store read (bench.warm_aws); the core's GET through HttpApp
   against the same store read and rendering done directly; the same GET over loopback
   through `imggo-fn serve` against HttpApp in-process.
3. Unthrottled stress, a secondary figure: a batch of N images through the simulator
   (its own process, a fixed latency added to every ingest) at C calls in flight,
   against the same images one at a time, with no plan limit (the real ImgGo allows
   5-200 requests a minute per key: this is not a throughput figure).

    python -m bench [--only throughput|shared-ingest|cold|warm|stress] [--runs 7]
                    [--calls 2000] [--count 1000]
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
from dataclasses import dataclass, replace
from pathlib import Path

from bench.images import distinct_pngs
from bench.simproc import simulator_process
from core.api.app import HttpApp
from core.api.auth import Authenticator, hash_key
from core.api.http import Headers, Request, Response
from core.api.views import job_view
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


def bench_imports(runs: int = 7) -> list[tuple[str, str]]:
    core_ms = _import_ms("core.api.app, core.bootstrap", runs)
    httpx_ms = _import_ms("httpx", runs)
    return [
        ("import the core HTTP surface + bootstrap (fresh process)", f"{core_ms:.0f} ms"),
        # Not a floor (not the same work): a known import, for scale.
        ("  for scale, not the same work: import httpx alone", f"{httpx_ms:.0f} ms"),
    ]


def _per_call_us(fn: Callable[[], object], repeat: int, rounds: int = 5) -> float:
    best = []
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(repeat):
            fn()
        best.append((time.perf_counter() - start) / repeat * 1e6)
    return statistics.median(best)


def bench_get(tmp: Path, calls: int = 2000) -> list[tuple[str, str]]:
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

    def surface() -> Response:
        response = app.handle(request)
        assert response.status == 200
        return response

    keys = Authenticator(settings.api_key_hashes)

    def floor() -> bytes:
        tenant = keys.tenant_for("Bearer k")
        stored = services.store.get("job-1")
        assert stored is not None and stored.tenant == tenant
        return json.dumps(job_view(stored), separators=(",", ":"), ensure_ascii=False).encode()

    body = surface().body
    if floor() != body:
        raise RuntimeError("HttpApp and its floor answered different bodies")
    surface_us = _per_call_us(surface, calls)
    floor_us = _per_call_us(floor, calls)
    services.close()
    return [
        ("core: GET /v1/jobs/{id} through HttpApp (warm, SQLite)", f"{surface_us:.1f} us"),
        ("  floor: key check, store.get, job_view + json.dumps, by hand", f"{floor_us:.1f} us"),
        ("  ratio HttpApp / floor", f"{surface_us / floor_us:.2f}x"),
        (f"  work, each side: 1 SQLite read, the same {len(body)}-byte JSON body", ""),
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


def bench_stress(
    tmp: Path, count: int, latency_s: float, concurrency: int
) -> list[tuple[str, str]]:
    """An unthrottled stress figure, not a throughput one: no plan limit applies (the
    real ImgGo allows 5-200 requests a minute per key), so it says how the batch path
    behaves under load, not how fast a deployment ingests."""
    images = distinct_pngs(count * 2)
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
    return [
        (
            f"batch of {count} uploads, {latency_s * 1000:.0f} ms ImgGo latency, "
            f"{concurrency} in flight, no plan limit",
            f"{batch_s:.2f} s",
        ),
        ("  baseline: the same work one image at a time (sequential loop)", f"{seq_s:.2f} s"),
        ("  speed-up vs sequential", f"{seq_s / batch_s:.1f}x"),
        ("  the same batch on the in-memory store", f"{memory_s:.2f} s"),
        ("  the same ingests through the ImgGo client alone", f"{client_s:.2f} s"),
        (
            "  stress figure only: N x latency / concurrency over the batch's time",
            f"{ideal_s / batch_s * 100:.0f} %",
        ),
    ]


@dataclass(frozen=True)
class Options:
    runs: int  # fresh processes per side, for the cold starts
    calls: int  # calls per round, for the warm figures
    count: int  # images in the stress batch
    latency_s: float
    concurrency: int


def section_cold_start(options: Options, tmp: Path) -> list[str]:
    from bench import cold_start_aws, cold_start_azure, cold_start_gcp
    from bench.cold_start import table

    with cold_start_aws.artifact_layout() as layout:
        aws = cold_start_aws.run(options.runs, layout=layout)
    gcp = cold_start_gcp.run(options.runs)
    azure = cold_start_azure.run(options.runs)
    return [*table([aws, gcp, azure]), "", *_lines(bench_imports(options.runs))]


def section_warm(options: Options, tmp: Path) -> list[str]:
    from bench import warm_aws

    return _lines(
        warm_aws.run(options.calls)
        + bench_get(tmp, options.calls)
        + bench_loopback_get(tmp, options.calls)
    )


def section_stress(options: Options, tmp: Path) -> list[str]:
    return _lines(bench_stress(tmp, options.count, options.latency_s, options.concurrency))


def section_shared_ingest(options: Options, tmp: Path) -> list[str]:
    from bench.shared_ingest import bench_shared_ingest

    return _lines(bench_shared_ingest(tmp))


def section_throughput(options: Options, tmp: Path) -> list[str]:
    from bench import throughput

    return [throughput.describe(1000, 4, 600, "0.5-2"), *throughput.table(throughput.run())]


# Each section: (name for --only, title, what it prints).
SECTIONS: list[tuple[str, str, Callable[[Options, Path], list[str]]]] = [
    ("throughput", "Plan-limited throughput (ImgGo's per-key limit)", section_throughput),
    (
        "shared-ingest",
        "Three `imggo-fn ingest` processes sharing one data dir and one plan",
        section_shared_ingest,
    ),
    ("cold", "Cold start, every cloud", section_cold_start),
    ("warm", "Warm: per-request overhead", section_warm),
    (
        "stress",
        "Unthrottled stress (secondary: no plan limit, not a throughput figure)",
        section_stress,
    ),
]


def _lines(rows: list[tuple[str, str]]) -> list[str]:
    width = max(len(name) for name, _ in rows)
    return [f"{name.ljust(width)}  {value}".rstrip() for name, value in rows]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench")
    names = [name for name, _, _ in SECTIONS]
    parser.add_argument("--only", action="append", choices=names, help="run only these sections")
    parser.add_argument("--runs", type=int, default=7, help="fresh processes a side")
    parser.add_argument("--calls", type=int, default=2000, help="warm figures: calls a round")
    parser.add_argument("--count", type=int, default=1000, help="stress: images in the batch")
    parser.add_argument("--latency", type=float, default=0.020, help="stress: ImgGo latency, s")
    parser.add_argument("--concurrency", type=int, default=16, help="stress: calls in flight")
    args = parser.parse_args(argv)
    options = Options(args.runs, args.calls, args.count, args.latency, args.concurrency)
    with tempfile.TemporaryDirectory() as tmp:
        for name, title, section in SECTIONS:
            if args.only and name not in args.only:
                continue
            print(f"== {title}")
            print("\n".join(section(options, Path(tmp))), flush=True)
            print()
    rss_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS of the bench process: {rss_mib:.0f} MiB")


if __name__ == "__main__":
    main()
