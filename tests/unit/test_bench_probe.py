"""The cold-start benchmarks' instrument (bench/probe/callprobe.py) counts what a child
sends on the wire, and their table says when a floor did not do the same work."""

from __future__ import annotations

import sys
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest

from bench.cold_start import Child, Comparison, Instructions, Sample, child_path, table
from tests.support.loopback import base_url, serve_on_loopback, stop

ROOT = Path(__file__).resolve().parents[2]


class _Answer(BaseHTTPRequestHandler):
    def _reply(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    do_GET = do_POST = do_PUT = _reply

    def log_message(self, *args: Any) -> None:
        pass


# Imports after start(): the hooks must patch modules the child imports itself.
CHILD = """import callprobe; callprobe.start()
import os, asyncio
import httpx, urllib3
url = os.environ["URL"]
with httpx.Client() as client:
    client.post(url + "/api/patterns/p/ingest", json={})
    client.get(url + "/api/jobs/1?x=2")
async def main():
    async with httpx.AsyncClient() as client:
        await client.post(url + "/api/patterns/p/ingest", json={})
asyncio.run(main())
pool = urllib3.PoolManager()
pool.request("PUT", url + "/acct/jobs(PartitionKey='j|1',RowKey='')")
pool.request("POST", url + "/", headers={"X-Amz-Target": "DynamoDB_20120810.PutItem"})
pool.request("POST", url + "/", headers={"X-Amz-Target": "AmazonSSM.GetParameters"})
callprobe.done(202, note="hi")
"""


def test_a_child_counts_each_call_by_name_and_the_tls_contexts_built() -> None:
    httpd = serve_on_loopback(_Answer)
    try:
        env = {"PYTHONPATH": child_path(ROOT), "URL": base_url(httpd)}
        sample = Child(CHILD, [sys.executable, "-s"], env, ROOT, timeout_s=30).run()
    finally:
        stop(httpd)
    assert sample.calls == {
        "GET /api/jobs/1": 1,
        "POST /api/patterns/p/ingest": 2,
        "PUT /acct/jobs(key)": 1,
        "dynamodb PutItem": 1,
        "ssm GetParameters": 1,
    }
    assert sample.tls_contexts >= 2  # each httpx client builds one, verify=True
    assert {"httpx", "urllib3", "asyncio"} <= sample.modules
    assert "encodings" not in sample.modules  # the interpreter's own, before start()
    assert sample.extra == {"status": 202, "note": "hi"}
    assert sample.startup_ms is not None and sample.startup_ms > 0
    assert 0 < sample.ms < 30_000 and sample.cpu_ms > 0


def _sample(
    calls: dict[str, int], ms: float = 100.0, modules: frozenset[str] = frozenset()
) -> Sample:
    return Sample(
        ms=ms, cpu_ms=ms / 2, startup_ms=20.0, calls=calls, tls_contexts=1, modules=modules
    )


def test_the_table_prints_both_sides_calls_and_flags_a_floor_that_did_less() -> None:
    ours = {"firestore Commit": 3, "POST /ingest": 1}
    imported = frozenset({"httpx", "core", "core.api", "anyio", "anyio.abc"})
    fair = Comparison(
        "gcp", "f", "g", [_sample(ours, 120, imported)], [_sample(ours, 100, frozenset({"httpx"}))]
    )
    unfair = Comparison(
        "aws", "f", "g", [_sample(ours, 130)], [_sample({"firestore Commit": 1}, 100)]
    )
    lines = table([fair, unfair])
    text = "\n".join(lines)
    gcp_row = next(line for line in lines if line.startswith("gcp "))
    aws_row = next(line for line in lines if line.startswith("aws "))
    assert gcp_row.split()[-1] == "yes" and "meets" in gcp_row and "1.20x" in gcp_row
    assert aws_row.split()[-1] == "NO" and "MISSES" in aws_row and "1.30x" in aws_row
    assert "calls, each side: POST /ingest x1, firestore Commit x3" in text
    assert "calls, floor:     firestore Commit x1" in text
    assert "modules only the function imported: 4 (anyio 2, core 2)" in text
    assert "modules only the floor imported: none" in text
    assert "instr ratio" in lines[1] and gcp_row.split()[-2] == "n/a"
    assert "instructions: not counted (valgrind is not installed)" in text


def test_instructions_are_compared_without_the_interpreters_start_up() -> None:
    side = [_sample({"a": 1})]
    counted = Instructions(function=1_230_000_000, floor=1_030_000_000, start_up=30_000_000)
    lines = table([Comparison("aws", "f", "g", side, side, counted)])
    assert counted.ratio == pytest.approx(1.2)
    assert next(line for line in lines if line.startswith("aws ")).split()[-2] == "1.20x"
    assert "less the interpreter's start-up, 30 M): function 1200 M, floor 1000 M" in "\n".join(
        lines
    )


def test_calls_that_differ_between_runs_are_not_reported_as_the_same() -> None:
    side = [_sample({"a": 1}), _sample({"a": 2})]
    comparison = Comparison("azure", "f", "g", side, side)
    assert comparison.function_calls is None
    assert not comparison.same_calls
    assert "(differed between runs)" in "\n".join(table([comparison]))
